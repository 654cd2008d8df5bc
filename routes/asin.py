"""ASIN lookups: one by GET or POST, many (ASINs, or UPC/EAN/GTIN/ISBN/JAN codes) by POST to /asin/batch/<country>."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request
from werkzeug.routing import PathConverter

from routes import asin_service, dataset_request, json_object
from routes.errors import entry_response
from services import errors
from services.errors import ServiceError
from utils.identifiers import IDENTIFIER_TYPES

bp = Blueprint("asin", __name__)


class AnyPathConverter(PathConverter):
    """Werkzeug's path converter, matching newlines too: any text after /asin/ is an ASIN to judge (400), never a 405."""

    regex = "(?s:[^/].*?)"


bp.record_once(lambda state: state.app.url_map.converters.setdefault("anypath", AnyPathConverter))


def _single(asin: object, country: object, body: dict[str, Any] | None) -> Response | tuple[Response, int]:
    g.asin_count = 1
    wanted = dataset_request(body, [asin], single=True)
    service = asin_service()
    try:
        entry = service.lookup(asin, country, refresh=wanted.refresh, datasets=wanted)
    except ServiceError as failure:
        entry = service.failure_entry(asin, country, failure)
    return entry_response(entry)


@bp.get("/asin/<anypath:asin>")
def get_asin(asin: str) -> Response | tuple[Response, int]:
    """Facts for one ASIN; the marketplace from ?country= (default DEFAULT_COUNTRY); ?refresh=true skips the cache.

    ?include=pricing,offers,fees,restrictions,eligibility adds those datasets; ?price= and ?fulfillment= are for fees.
    """
    country = request.args.get("country") or current_app.config["SETTINGS"].default_country
    return _single(asin, country, None)


@bp.post("/asin/<country>")
def post_asin(country: str) -> Response | tuple[Response, int]:
    """Facts for the ASIN in `{"asin": "...", "refresh": false, "include": [...], "price": 19.99}` in `country`."""
    body = json_object()
    if "asin" not in body:
        raise ServiceError(errors.INVALID_REQUEST, 'The body needs an \'asin\' field, e.g. {"asin": "B07N4M94X4"}')
    return _single(body["asin"], country, body)


def _batch_items(body: dict[str, Any]) -> tuple[str, list[Any]]:
    """Which list the batch body sends ("asins" or "identifiers") and the list; a 400 unless exactly one, non-empty."""
    if "asins" in body and "identifiers" in body:
        raise ServiceError(errors.INVALID_REQUEST, "Send either 'asins' or 'identifiers' (with 'identifier_type'), not both")
    field = "identifiers" if "identifiers" in body else "asins"
    items = body.get(field)
    if not isinstance(items, list):
        raise ServiceError(
            errors.INVALID_REQUEST,
            'The body needs an \'asins\' list, e.g. {"asins": ["B07N4M94X4"]}, '
            'or an \'identifiers\' list with \'identifier_type\', e.g. {"identifiers": ["887276302195"], "identifier_type": "UPC"}',
        )
    if not items:
        raise ServiceError(errors.INVALID_REQUEST, f"'{field}' is empty: send at least one {'ASIN' if field == 'asins' else 'code'}")
    if field == "identifiers" and "identifier_type" not in body:
        raise ServiceError(errors.INVALID_REQUEST, f"'identifiers' needs an 'identifier_type': one of {', '.join(IDENTIFIER_TYPES)}")
    g.asin_count = len(items)
    limit = current_app.config["SETTINGS"].max_batch_size
    if len(items) > limit:
        raise ServiceError(errors.BATCH_TOO_LARGE, f"'{field}' has {len(items)} entries; MAX_BATCH_SIZE is {limit}")
    return field, items


@bp.post("/asin/batch/<country>")
def post_batch(country: str) -> Response | tuple[Response, int]:
    """Facts for every ASIN in `{"asins": [...]}`, or every code in `{"identifiers": [...], "identifier_type": "UPC"}`, in order."""
    body = json_object()
    field, items = _batch_items(body)
    if field == "identifiers" and "prices" in body:
        raise ServiceError(errors.INVALID_REQUEST, "'prices' is by ASIN: send it with 'asins', not 'identifiers'")
    wanted = dataset_request(body, items)
    service = asin_service()
    if field == "identifiers":
        return jsonify(service.batch_lookup_identifiers(items, body["identifier_type"], country, refresh=wanted.refresh, datasets=wanted))
    return jsonify(service.batch_lookup(items, country, refresh=wanted.refresh, datasets=wanted))
