"""Operational endpoints: /health for probes, /config for the effective settings."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

bp = Blueprint("system", __name__)


@bp.get("/health")
def get_health() -> Response:
    """ok or degraded, mode, version, uptime, the last SP-API success and failure, the limiter's pace, the cache, the jobs."""
    return jsonify(current_app.extensions["status"].snapshot())


@bp.get("/config")
def get_config() -> Response:
    """Every effective setting; secrets only as set / not set."""
    settings = current_app.config["SETTINGS"]
    return jsonify({"mode": settings.mode, "sp_api_endpoint": settings.endpoint_label, "settings": settings.public_view()})
