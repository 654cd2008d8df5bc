"""A bench-only app factory: the service's app plus a do-nothing endpoint to compare against.

`gunicorn -c gunicorn.conf.py 'bench.app:create_bench_app()'` serves exactly what
`app:create_app()` serves, plus `GET /_bench/noop`, so wrk can measure the cost of a cached
ASIN lookup beside the cost of Flask and gunicorn alone, in the same server.
"""

from __future__ import annotations

from flask import Flask, Response, jsonify

from app import create_app


def noop() -> Response:
    """A tiny JSON answer that does no work: the server's own ceiling."""
    return jsonify({"ok": True})


def create_bench_app() -> Flask:
    """The production app (settings from the environment) with `GET /_bench/noop` added."""
    app = create_app()
    app.add_url_rule("/_bench/noop", endpoint="bench_noop", view_func=noop, methods=["GET"])
    return app
