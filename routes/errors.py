"""One JSON shape for every error: the service's (ServiceError), Werkzeug's (404, 405, 413, ...) and unexpected ones.

This module alone turns an error code into an HTTP status.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES

from services import errors
from services.entries import LookupEntry
from services.errors import ServiceError

log = logging.getLogger(__name__)

# HTTP status of a request refused with each code, and of a single-ASIN answer that failed with it.
STATUS_BY_CODE = {
    errors.INVALID_ASIN: 400,
    errors.INVALID_COUNTRY: 400,
    errors.INVALID_IDENTIFIER: 400,
    errors.NOT_FOUND: 404,
    errors.THROTTLED: 503,
    errors.TIMEOUT: 504,
    errors.UPSTREAM_ERROR: 502,
    errors.UPSTREAM_REJECTED: 502,
    errors.UPSTREAM_UNAVAILABLE: 503,
    errors.AUTH_FAILED: 502,
    errors.INVALID_REQUEST: 400,
    errors.BATCH_TOO_LARGE: 400,
    errors.UNSUPPORTED_MEDIA_TYPE: 415,
    errors.UNAUTHORIZED: 401,
    errors.TOO_MANY_REQUESTS: 429,
    errors.INVALID_CSV: 400,
    errors.EMPTY_JOB: 400,
    errors.JOB_TOO_LARGE: 413,
    errors.JOB_NOT_FOUND: 404,
    errors.JOB_FINISHED: 409,
    errors.JOBS_UNAVAILABLE: 503,
    errors.INTERNAL_ERROR: 500,
}

# Werkzeug's names, where a shorter, more usual code reads better (RFC 9110 names 414 "URI Too Long").
_HTTP_CODES = {413: "PAYLOAD_TOO_LARGE", 414: "URI_TOO_LONG"}
# An unexpected failure, whether in the app or in gunicorn (gunicorn_worker.py).
INTERNAL_ERROR_CODE = errors.INTERNAL_ERROR
INTERNAL_ERROR_MESSAGE = "The service failed to answer this request; it has been logged."


def status_of(code: str) -> int:
    """The HTTP status for an error code (502 for one SP-API failed with in a way not named here)."""
    return STATUS_BY_CODE.get(code, 502)


def http_error_code(status: int) -> str:
    """The error code of an HTTP status: Werkzeug's name in upper case (400 BAD_REQUEST), or a shorter usual one."""
    return _HTTP_CODES.get(status) or HTTP_STATUS_CODES.get(status, "Unknown Error").upper().replace(" ", "_").replace("'", "")


def error_body(code: str, message: str) -> dict[str, Any]:
    """The one error shape: `{"success": false, "error": {"code", "message"}}`."""
    return {"success": False, "error": {"code": code, "message": message}}


def error_response(status: int, code: str, message: str) -> tuple[Response, int]:
    """The error body of `code` and `message` as JSON, with `status`."""
    return jsonify(error_body(code, message)), status


def failure_response(failure: ServiceError) -> tuple[Response, int]:
    """The error response for a ServiceError: its code's status, with Retry-After when asking again later helps."""
    response, status = error_response(status_of(failure.code), failure.code, failure.message)
    _retry_after(response, failure.retry_after)
    return response, status


def entry_response(entry: LookupEntry) -> Response | tuple[Response, int]:
    """A single-ASIN answer: 200 for a success, else the status of its error code, with Retry-After when throttled."""
    response = jsonify(entry)
    if entry["success"]:
        return response
    error = entry["error"]
    _retry_after(response, error.get("retry_after_seconds"))
    return response, status_of(error["code"])


def _retry_after(response: Response, seconds: float | None) -> None:
    if seconds is not None:
        response.headers["Retry-After"] = str(max(1, math.ceil(seconds)))


def register_error_handlers(app: Flask) -> None:
    """Answer ServiceError, HTTPException and anything unexpected as JSON."""

    @app.errorhandler(ServiceError)
    def handle_service_error(exc: ServiceError) -> tuple[Response, int]:
        return failure_response(exc)

    @app.errorhandler(HTTPException)
    def handle_http_exception(exc: HTTPException) -> tuple[Response, int]:
        status = exc.code or 500
        response, status = error_response(status, http_error_code(status), exc.description or exc.name)
        # Keep Werkzeug's headers (Allow on 405, ...) but with our JSON body.
        for name, value in exc.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response, status

    @app.errorhandler(Exception)
    def handle_unexpected(exc: Exception) -> tuple[Response, int]:
        log.exception("unhandled error: %s", type(exc).__name__)
        return error_response(500, INTERNAL_ERROR_CODE, INTERNAL_ERROR_MESSAGE)
