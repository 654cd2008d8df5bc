"""The emulator's Flask app: LWA, Catalog Items 2022-04-01, the pricing, fees, restrictions and eligibility families, /_emulator/."""

from __future__ import annotations

import logging
import socket
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from emulator import eligibility, fees, pricing, restrictions
from emulator.calls import DROP_KEY, Call, answer_call, error_list
from emulator.catalog import build_item, merge_items
from emulator.options import EmulatorOptions, OptionError
from emulator.params import csv_param, parse_item_request, parse_search_request
from emulator.search import search
from emulator.state import GET_CATALOG_ITEM, LWA_TOKEN, SEARCH_CATALOG_ITEMS, EmulatorState

log = logging.getLogger(__name__)

EXTENSION_KEY = "sp_api_emulator"


def _lwa_error(error: str, description: str) -> dict[str, str]:
    return {"error": error, "error_description": description}


class _DropMiddleware:
    """Turns a request flagged for dropping into a closed connection with no HTTP response at all.

    werkzeug's dev server treats a ConnectionError raised by the app as a dropped connection and
    writes nothing; shutting the socket down first makes the client see EOF instead of waiting
    (the threaded server speaks HTTP/1.1 and would otherwise read the socket for a next request).
    """

    def __init__(self, wsgi_app: Callable[..., Iterable[bytes]]) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        result = self.wsgi_app(environ, start_response)
        if not environ.get(DROP_KEY):
            return result
        close = getattr(result, "close", None)
        if close is not None:
            close()
        sock = environ.get("werkzeug.socket")
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError as exc:  # the client hung up first: the connection is gone either way
                log.debug("dropping a connection the client already closed: %s", exc)
        raise ConnectionAbortedError("SP-API emulator dropped the connection (drop_rate)")


def create_emulator_app(options: EmulatorOptions | None = None, *, clock: Callable[[], float] = time.monotonic) -> Flask:
    """A Flask app emulating LWA and Catalog Items 2022-04-01; `clock` (seconds) times the buckets and token expiry."""
    state = EmulatorState(options or EmulatorOptions(), clock)
    app = Flask("emulator")
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep the model's key order
    app.extensions[EXTENSION_KEY] = state
    app.wsgi_app = _DropMiddleware(app.wsgi_app)  # type: ignore[method-assign]
    _add_lwa_route(app, state)
    _add_catalog_routes(app, state)
    pricing.register(app, state)
    fees.register(app, state)
    restrictions.register(app, state)
    eligibility.register(app, state)
    _add_control_routes(app, state)
    _add_error_handlers(app)
    return app


def emulator_state(app: Flask) -> EmulatorState:
    """The EmulatorState behind an app made by create_emulator_app."""
    return app.extensions[EXTENSION_KEY]


# --------------------------------------------------------------------------- LWA


def _add_lwa_route(app: Flask, state: EmulatorState) -> None:
    @app.post("/auth/o2/token")
    def lwa_token() -> Response:
        arrived = time.time()
        request_id = str(uuid.uuid4())
        options = state.options
        params: dict[str, Any] = dict(request.form.items())
        if not params and request.is_json:
            body = request.get_json(silent=True)
            params = body if isinstance(body, dict) else {}
        if options.token_fault_rate > 0 and state.draw_token_fault():
            status, body = 500, _lwa_error("server_error", "The authorization server encountered an unexpected error")
        else:
            status, body = _grant(state, options, params)
        # Logged before the delay so the log shows calls whose clients gave up waiting.
        state.record(arrived=arrived, operation=LWA_TOKEN, status=status, asins=[], marketplace_id=None, request_id=request_id)
        if options.token_delay > 0:
            time.sleep(options.token_delay)
        response = jsonify(body)
        response.status_code = status
        response.headers["x-amzn-RequestId"] = request_id
        response.headers["Cache-Control"] = "no-cache, no-store, must-revalidate"
        return response


def _grant(state: EmulatorState, options: EmulatorOptions, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """LWA's answer to a token request: (status, body) with LWA's own error format."""
    grant_type = params.get("grant_type")
    if not grant_type:
        return 400, _lwa_error("invalid_request", "The request is missing a required parameter : grant_type")
    if grant_type != "refresh_token":
        return 400, _lwa_error("unsupported_grant_type", "The authorization grant type is not supported by the authorization server")
    for name in ("client_id", "client_secret", "refresh_token"):
        if not params.get(name):
            return 400, _lwa_error("invalid_request", f"The request is missing a required parameter : {name}")
    if params["client_id"] != options.client_id or params["client_secret"] != options.client_secret:
        return 401, _lwa_error("invalid_client", "Client authentication failed")
    if params["refresh_token"] != options.refresh_token:
        return 400, _lwa_error("invalid_grant", "The request has an invalid grant parameter : refresh_token")
    token, ttl = state.issue_token()
    return 200, {"access_token": token, "refresh_token": params["refresh_token"], "token_type": "bearer", "expires_in": ttl}


# --------------------------------------------------------------------------- Catalog Items


def _add_catalog_routes(app: Flask, state: EmulatorState) -> None:
    @app.get("/catalog/2022-04-01/items/<path:asin>")
    def get_catalog_item(asin: str) -> Response:
        return _catalog_call(state, GET_CATALOG_ITEM, asin)

    @app.get("/catalog/2022-04-01/items/")
    def get_catalog_item_without_asin() -> Response:
        # The model's sandbox 400 case: an empty ASIN.
        return _catalog_call(state, GET_CATALOG_ITEM, "")

    @app.get("/catalog/2022-04-01/items")
    def search_catalog_items() -> Response:
        return _catalog_call(state, SEARCH_CATALOG_ITEMS, None)


def _catalog_call(state: EmulatorState, operation: str, asin: str | None) -> Response:
    """getCatalogItem (`asin`) or searchCatalogItems (None) through the common call pipeline."""
    options = state.options
    asked = [asin] if asin is not None else (csv_param(request.args, "identifiers") or [])
    marketplace_id = ",".join(csv_param(request.args, "marketplaceIds") or []) or None
    identifiers_type = None if asin is not None else ((request.args.get("identifiersType") or "").strip() or None)
    call = Call(operation, asked, marketplace_id, identifiers_type)
    if operation == GET_CATALOG_ITEM:
        assert asin is not None
        return answer_call(state, call, lambda: _get_catalog_item(state, options, asin))
    return answer_call(state, call, lambda: _search_catalog_items(state, options))


def _get_catalog_item(state: EmulatorState, options: EmulatorOptions, asin: str) -> tuple[int, dict[str, Any]]:
    req = parse_item_request(asin, request.args)
    items = [build_item(req.asin, mp, req.included_data, options.not_found_prefix) for mp in req.marketplace_ids]
    found = [item for item in items if item is not None]
    if not found:
        message = f"Requested item '{req.asin}' not found in marketplace {req.marketplace_ids[0]}."
        return 404, error_list("NOT_FOUND", message)
    state.identifiers.remember(req.asin)
    return 200, found[0] if len(found) == 1 else merge_items(found)


def _search_catalog_items(state: EmulatorState, options: EmulatorOptions) -> tuple[int, dict[str, Any]]:
    req = parse_search_request(request.args)
    body, page = search(req, options.page_size_cap, options.not_found_prefix, state.identifiers)
    for asin in page:
        state.identifiers.remember(asin)
    return 200, body


# --------------------------------------------------------------------------- control endpoints


def _add_control_routes(app: Flask, state: EmulatorState) -> None:
    @app.get("/_emulator/health")
    def health() -> Response:
        return jsonify({"status": "ok"})

    @app.get("/_emulator/calls")
    def calls() -> Response:
        return jsonify(state.calls())

    @app.post("/_emulator/reset")
    def reset() -> Response:
        state.reset()
        return jsonify({"status": "ok"})

    @app.get("/_emulator/config")
    def get_config() -> Response:
        return jsonify(state.options.to_dict())

    @app.post("/_emulator/config")
    def post_config() -> tuple[Response, int] | Response:
        changes = request.get_json(silent=True)
        if not isinstance(changes, dict):
            return jsonify({"error": "send a JSON object of option changes"}), 400
        try:
            options = state.configure(**changes)
        except OptionError as exc:
            return jsonify({"error": str(exc)}), 400
        return jsonify(options.to_dict())


def _add_error_handlers(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[Response, int]:
        # Unknown paths and wrong methods answer in SP-API's ErrorList format, not werkzeug's HTML.
        code = exc.code or 500
        name = (exc.name or "Error").replace(" ", "")
        response = jsonify(error_list(name, exc.description or name))
        response.headers["x-amzn-RequestId"] = str(uuid.uuid4())
        return response, code
