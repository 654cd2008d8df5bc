"""Operational endpoints: /health for probes, /config for the effective settings."""

from __future__ import annotations

import time

from flask import Blueprint, Response, current_app, jsonify

bp = Blueprint("system", __name__)


@bp.get("/health")
def get_health() -> Response:
    """ok or degraded, mode, version, uptime, the last SP-API success and failure, the limiter's pace, the cache, the jobs."""
    settings = current_app.config["SETTINGS"]
    upstream = current_app.extensions["upstream_health"].snapshot()
    circuits = current_app.extensions["spapi"].circuits
    started = current_app.extensions["started_at"]
    return jsonify(
        {
            "status": "degraded" if circuits.any_open() else upstream["status"],
            "mode": settings.mode,
            "version": current_app.config["VERSION"],
            "uptime_seconds": round(time.monotonic() - started, 1),
            "sp_api": {
                "endpoint": settings.endpoint_label,
                "last_success": upstream["last_success"],
                "last_failure": upstream["last_failure"],
                "circuits": circuits.snapshot(),
            },
            "rate_limiter": current_app.extensions["limiter"].snapshot(),
            "cache": current_app.extensions["asin_service"].cache.stats(),
            "jobs": current_app.extensions["jobs"].health(),
        }
    )


@bp.get("/config")
def get_config() -> Response:
    """Every effective setting; secrets only as set / not set."""
    settings = current_app.config["SETTINGS"]
    return jsonify({"mode": settings.mode, "sp_api_endpoint": settings.endpoint_label, "settings": settings.public_view()})
