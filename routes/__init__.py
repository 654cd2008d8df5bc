"""Flask blueprints, one per resource, and the JSON error handlers; the accessors and request parsing they share.

(Codes are imported by name here: the `routes.errors` submodule, once imported, is this package's `errors`.)
"""

from __future__ import annotations

from typing import Any

from flask import current_app, request

from services.asin_service import AsinService
from services.errors import INVALID_REQUEST, UNSUPPORTED_MEDIA_TYPE, ServiceError
from services.jobs import JobService


def asin_service() -> AsinService:
    """The AsinService built by the app factory."""
    return current_app.extensions["asin_service"]


def job_service() -> JobService:
    """The JobService built by the app factory."""
    return current_app.extensions["jobs"]


# Request parsing shared by the blueprints.

_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no", "")


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
