"""Prometheus metrics over HTTP: GET /metrics, and the hooks that count and time every request."""

from __future__ import annotations

import time

from flask import Blueprint, Flask, Response, g, request

from utils import metrics

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def get_metrics() -> Response:
    """Every metric in Prometheus text format, summed over all gunicorn workers."""
    body, content_type = metrics.exposition()
    return Response(body, content_type=content_type)


def _start_timer() -> None:
    g.metrics_started_at = time.perf_counter()


def _record_request(response: Response) -> Response:
    # The URL rule, never the raw path: one series per route whatever the ASIN, bounded cardinality.
    rule = request.url_rule
    started = g.pop("metrics_started_at", None)
    metrics.observe_http_request(
        metrics.http_method_label(request.method),
        rule.rule if rule is not None else metrics.UNMATCHED_ROUTE,
        response.status_code,
        time.perf_counter() - started if started is not None else None,
    )
    return response


def init_app(app: Flask) -> None:
    """Count and time every request `app` answers (errors included), by method, route and status."""
    app.before_request(_start_timer)
    app.after_request(_record_request)
