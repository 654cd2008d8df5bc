"""ASIN lookups: one by GET or POST, many by POST to /asin/batch/<country>."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from routes import asin_service
from routes.errors import ApiError, lookup_failure_response
from services.errors import LookupFailure

bp = Blueprint("asin", __name__)


def _json_object() -> dict[str, Any]:
    """The request body as a JSON object, or a 400 naming the problem."""
    body = request.get_json(silent=True)
    if body is None:
        raise ApiError(400, "INVALID_REQUEST", "The body must be JSON (Content-Type: application/json)")
    if not isinstance(body, dict):
        raise ApiError(400, "INVALID_REQUEST", "The body must be a JSON object")
    return body


def _single(asin: object, country: object) -> Response | tuple[Response, int]:
    service = asin_service()
    try:
        return jsonify(service.lookup(asin, country))
    except LookupFailure as failure:
        return lookup_failure_response(service.failure_entry(asin, country, failure), failure)


@bp.get("/asin/<path:asin>")
def get_asin(asin: str) -> Response | tuple[Response, int]:
    """Facts for one ASIN; the marketplace from ?country= (default DEFAULT_COUNTRY)."""
    country = request.args.get("country") or current_app.config["SETTINGS"].default_country
    return _single(asin, country)


@bp.post("/asin/<country>")
def post_asin(country: str) -> Response | tuple[Response, int]:
    """Facts for the ASIN in `{"asin": "..."}` in `country`."""
    body = _json_object()
    if "asin" not in body:
        raise ApiError(400, "INVALID_REQUEST", 'The body needs an \'asin\' field, e.g. {"asin": "B07N4M94X4"}')
    return _single(body["asin"], country)


@bp.post("/asin/batch/<country>")
def post_batch(country: str) -> Response | tuple[Response, int]:
    """Facts for every ASIN in `{"asins": [...]}`, in request order."""
    body = _json_object()
    asins = body.get("asins")
    if not isinstance(asins, list):
        raise ApiError(400, "INVALID_REQUEST", 'The body needs an \'asins\' list, e.g. {"asins": ["B07N4M94X4"]}')
    if not asins:
        raise ApiError(400, "INVALID_REQUEST", "'asins' is empty: send at least one ASIN")
    limit = current_app.config["SETTINGS"].max_batch_size
    if len(asins) > limit:
        raise ApiError(400, "BATCH_TOO_LARGE", f"'asins' has {len(asins)} entries; MAX_BATCH_SIZE is {limit}")
    try:
        return jsonify(asin_service().batch_lookup(asins, country))
    except LookupFailure as failure:
        raise ApiError(failure.status, failure.code, failure.message) from None
