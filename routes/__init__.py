"""Flask blueprints, one per resource, and the JSON error handlers."""

from __future__ import annotations

from flask import current_app

from services.asin_service import AsinService
from services.jobs import JobService


def asin_service() -> AsinService:
    """The AsinService built by the app factory."""
    return current_app.extensions["asin_service"]


def job_service() -> JobService:
    """The JobService built by the app factory."""
    return current_app.extensions["jobs"]
