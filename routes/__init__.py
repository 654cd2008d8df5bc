"""Flask blueprints, one per resource, and the JSON error handlers; the accessors and request parsing they share.

(Codes are imported by name here: the `routes.errors` submodule, once imported, is this package's `errors`.)
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from flask import current_app, request

from services.asin_service import AsinService
from services.dataset_fetch import DatasetRequest
from services.datasets import parse_include
from services.errors import INVALID_REQUEST, UNSUPPORTED_MEDIA_TYPE, ServiceError
from services.jobs import JobService
from services.scan import Scanner
from utils.asins import InvalidAsin, normalize_asin


def asin_service() -> AsinService:
    """The AsinService built by the app factory."""
    return current_app.extensions["asin_service"]


def scanner() -> Scanner:
    """The Scanner built by the app factory."""
    return current_app.extensions["scanner"]


def job_service() -> JobService:
    """The JobService built by the app factory."""
    return current_app.extensions["jobs"]


# Request parsing shared by the blueprints.

_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no", "")
# The highest price fees are estimated at: far above any listing on Amazon.
MAX_PRICE = 1_000_000


def json_object() -> dict[str, Any]:
    """The request body as a JSON object, or a 400 naming the problem."""
    if not request.is_json:
        raise ServiceError(UNSUPPORTED_MEDIA_TYPE, "Send the body as JSON, with Content-Type: application/json")
    body = request.get_json(silent=True)
    if body is None:
        raise ServiceError(INVALID_REQUEST, "The body is not valid JSON")
    if not isinstance(body, dict):
        raise ServiceError(INVALID_REQUEST, "The body must be a JSON object")
    return body


def refresh_requested(body: dict[str, Any] | None = None) -> bool:
    """`refresh` from the JSON body (a boolean) or the query string (true/false): skip the cache."""
    if body is not None and "refresh" in body:
        value = body["refresh"]
        if not isinstance(value, bool):
            raise ServiceError(INVALID_REQUEST, "'refresh' must be true or false")
        return value
    text = request.args.get("refresh", "").strip().lower()
    if text not in _TRUE + _FALSE:
        raise ServiceError(INVALID_REQUEST, "?refresh= must be true or false")
    return text in _TRUE


def include_requested(body: dict[str, Any] | None = None) -> tuple[str, ...]:
    """The datasets named by `include` in the JSON body (a list), else ?include= (a comma list)."""
    if body is not None and "include" in body:
        if not isinstance(body["include"], list):
            raise ServiceError(INVALID_REQUEST, '\'include\' must be a list of dataset names, e.g. ["pricing", "fees"]')
        return parse_include(body["include"])
    return parse_include(request.args.get("include"))


def _price(value: object, where: str) -> float:
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ServiceError(INVALID_REQUEST, f"{where} must be a price, e.g. 19.99") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or not 0 < value <= MAX_PRICE:
        raise ServiceError(INVALID_REQUEST, f"{where} must be a price above 0 and at most {MAX_PRICE:,.0f}, e.g. 19.99")
    return float(value)


def dataset_request(body: dict[str, Any] | None, asins: list[Any], *, single: bool = False) -> DatasetRequest:
    """include, the fees' price(s) and fulfillment of a lookup of `asins`, from the JSON body or else the query string.

    Any bad one is a 400 naming it. A single lookup takes `price` (?price= or the body's), a batch of
    ASINs a `prices` map by ASIN; either needs `fees` in include.
    """
    source: dict[str, Any] = body if body is not None else dict(request.args)
    include = include_requested(body)
    prices: dict[str, float] = {}
    if single and source.get("price") is not None:
        price = _price(source["price"], "'price'" if body is not None else "?price=")
        prices = dict.fromkeys(_valid_asins(asins), price)
    elif not single and source.get("prices") is not None:
        prices = _prices(source["prices"], asins)
    if prices and "fees" not in include:
        raise ServiceError(INVALID_REQUEST, "A price is what fees are estimated at: add fees to include")
    fulfillment = source.get("fulfillment", "FBA")
    if not isinstance(fulfillment, str) or fulfillment.strip().upper() not in ("FBA", "FBM"):
        raise ServiceError(INVALID_REQUEST, "'fulfillment' must be FBA or FBM")
    return DatasetRequest(
        include=include, prices=prices, fulfilled_by_amazon=fulfillment.strip().upper() == "FBA", refresh=refresh_requested(body)
    )


def _valid_asins(values: Iterable[object]) -> set[str]:
    listed: set[str] = set()
    for raw in values:
        try:
            listed.add(normalize_asin(raw))
        except InvalidAsin:
            continue
    return listed


def _prices(value: object, asins: Iterable[object]) -> dict[str, float]:
    if not isinstance(value, dict):
        raise ServiceError(INVALID_REQUEST, "'prices' must be an object of ASIN to price, e.g. {\"B07N4M94X4\": 19.99}")
    listed = _valid_asins(asins)
    prices: dict[str, float] = {}
    for key, price in value.items():
        try:
            asin = normalize_asin(key)
        except InvalidAsin as exc:
            raise ServiceError(INVALID_REQUEST, f"'prices' has a key that is not an ASIN: {exc}") from None
        if asin not in listed:
            raise ServiceError(INVALID_REQUEST, f"'prices' names {asin}, which is not in 'asins'")
        prices[asin] = _price(price, f"'prices' of {asin}")
    return prices
