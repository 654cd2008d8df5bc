"""What every request goes through: its id, the API key and its quota, security headers, CORS and a log line."""

from __future__ import annotations

import logging
import re
import time
import uuid

from flask import Flask, Response, g, request
from flask_cors import CORS

from config import Settings
from routes.errors import failure_response
from services import errors
from services.errors import ServiceError
from utils.api_keys import ApiKeys
from utils.logs import REQUEST_ID

log = logging.getLogger("fba_backend.requests")

# Endpoints anyone may call: probes and the API's own description.
OPEN_ENDPOINTS = frozenset({"system.get_health", "openapi.get_spec", "openapi.get_docs", "static"})
_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}


def presented_key() -> str | None:
    """The key in `Authorization: Bearer <key>` or `X-API-Key: <key>`."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.headers.get("X-API-Key") or None


def install(app: Flask, settings: Settings, keys: ApiKeys) -> None:
    """Register the request hooks on `app` (the API keys' quota is the factory's `key_quota`, shared by every worker)."""
    app.config["MAX_CONTENT_LENGTH"] = settings.max_content_length
    quota = app.extensions.get("key_quota")
    request_log_level = logging.INFO if settings.log_format == "json" else logging.DEBUG
    if settings.cors_origins:
        CORS(app, origins=list(settings.cors_origins), expose_headers=["X-Request-ID", "Retry-After"], max_age=600)

    @app.before_request
    def begin() -> tuple[Response, int] | None:
        g.started = time.perf_counter()
        client_id = request.headers.get("X-Request-ID", "")
        g.request_id = client_id if _CLIENT_REQUEST_ID.match(client_id) else uuid.uuid4().hex
        g.token = REQUEST_ID.set(g.request_id)
        if request.method == "OPTIONS" or request.endpoint in OPEN_ENDPOINTS or not keys.enabled:
            return None
        key_id = keys.identify(presented_key())
        if key_id is None:
            message = "Send a valid API key: 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
            response, status = failure_response(ServiceError(errors.UNAUTHORIZED, message))
            response.headers["WWW-Authenticate"] = 'Bearer realm="fba-backend"'
            return response, status
        g.api_key_id = key_id
        wait = quota.retry_after(key_id) if quota else None
        if wait is not None:
            message = f"This API key may make {settings.api_key_rate:g} requests a second"
            return failure_response(ServiceError(errors.TOO_MANY_REQUESTS, message, retry_after=wait))
        return None

    @app.after_request
    def finish(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        request_id = g.get("request_id")
        if request_id:
            response.headers["X-Request-ID"] = request_id
        duration_ms = (time.perf_counter() - g.started) * 1000 if "started" in g else 0.0
        route = request.url_rule.rule if request.url_rule else "unmatched"
        asin_count = g.get("asin_count", 0)
        # gunicorn's access log already has a line per request; the structured one is for LOG_FORMAT=json.
        log.log(
            request_log_level,
            "%s %s -> %d in %.1f ms (%d ASINs)",
            request.method,
            route,
            response.status_code,
            duration_ms,
            asin_count,
            extra={
                "method": request.method,
                "route": route,
                "status": response.status_code,
                "duration_ms": round(duration_ms, 1),
                "asin_count": asin_count,
                "api_key_id": g.get("api_key_id"),
            },
        )
        return response

    @app.teardown_request
    def forget(_: BaseException | None) -> None:
        token = g.pop("token", None)
        if token is not None:
            REQUEST_ID.reset(token)
