"""One JSON shape for every error: ours, Werkzeug's (404, 405, 413, ...) and unexpected ones."""

from __future__ import annotations

import logging
import math
from typing import Any

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES

from services.errors import STATUS_BY_CODE

log = logging.getLogger(__name__)


class ApiError(Exception):
    """A request the API refuses: HTTP status, error code and a message for the client."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


# Werkzeug's names, where a shorter, more usual code reads better (RFC 9110 names 414 "URI Too Long").
_HTTP_CODES = {413: "PAYLOAD_TOO_LARGE", 414: "URI_TOO_LONG"}
# An unexpected failure, whether in the app or in gunicorn.
INTERNAL_ERROR_CODE = "INTERNAL_ERROR"
INTERNAL_ERROR_MESSAGE = "The service failed to answer this request; it has been logged."


def http_error_code(status: int) -> str:
    """The error code of an HTTP status: Werkzeug's name in upper case (400 BAD_REQUEST), or a shorter usual one."""
    return _HTTP_CODES.get(status) or HTTP_STATUS_CODES.get(status, "Unknown Error").upper().replace(" ", "_").replace("'", "")


def error_body(code: str, message: str) -> dict[str, Any]:
    """The one error shape: `{"success": false, "error": {"code", "message"}}`."""
    return {"success": False, "error": {"code": code, "message": message}}


def error_response(status: int, code: str, message: str) -> tuple[Response, int]:
    """The error body of `code` and `message` as JSON, with `status`."""
    return jsonify(error_body(code, message)), status


def entry_response(entry: dict[str, Any]) -> Response | tuple[Response, int]:
    """A single-ASIN answer: 200 for a success, else the status of its error code, with Retry-After when throttled."""
    response = jsonify(entry)
    if entry["success"]:
        return response
    error = entry["error"]
    if error.get("retry_after_seconds") is not None:
        response.headers["Retry-After"] = str(max(1, math.ceil(error["retry_after_seconds"])))
    return response, STATUS_BY_CODE.get(error["code"], 502)


def register_error_handlers(app: Flask) -> None:
    """Answer ApiError, HTTPException and anything unexpected as JSON."""

    @app.errorhandler(ApiError)
    def handle_api_error(exc: ApiError) -> tuple[Response, int]:
        return error_response(exc.status, exc.code, exc.message)

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
