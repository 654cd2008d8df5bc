"""One JSON shape for every error: ours, Werkzeug's (404, 405, 413, ...) and unexpected ones."""

from __future__ import annotations

import logging
import math
from typing import Any

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from services.errors import STATUS_BY_CODE

log = logging.getLogger(__name__)


class ApiError(Exception):
    """A request the API refuses: HTTP status, error code and a message for the client."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


# Werkzeug's names, where a shorter, more usual code reads better.
_HTTP_CODES = {413: "PAYLOAD_TOO_LARGE"}


def error_response(status: int, code: str, message: str) -> tuple[Response, int]:
    """`{"success": false, "error": {"code", "message"}}` with `status`."""
    return jsonify({"success": False, "error": {"code": code, "message": message}}), status


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
        code = _HTTP_CODES.get(exc.code or 500) or (exc.name or "error").upper().replace(" ", "_").replace("'", "")
        response, status = error_response(exc.code or 500, code, exc.description or exc.name)
        # Keep Werkzeug's headers (Allow on 405, ...) but with our JSON body.
        for name, value in exc.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response, status

    @app.errorhandler(Exception)
    def handle_unexpected(exc: Exception) -> tuple[Response, int]:
        log.exception("unhandled error: %s", type(exc).__name__)
        return error_response(500, "INTERNAL_ERROR", "The service failed to answer this request; it has been logged.")
