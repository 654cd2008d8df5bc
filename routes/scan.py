"""Scans of a supplier's list: `POST /scan/<country>` answers up to MAX_BATCH_SIZE rows at once (jobs take lists of any size)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify

from routes import json_object, refresh_requested, scanner
from services import errors
from services.asin_service import resolve_marketplace
from services.errors import ServiceError
from services.scan_profile import Profile
from utils.supplier_list import SupplierListError, read_supplier_items

bp = Blueprint("scan", __name__)


def scan_request(body: dict[str, Any]) -> tuple[list[Any], Profile, str | None, str | None]:
    """The items, the profile (the service's defaults with the body's `scan` applied) and the column overrides of a JSON scan body."""
    items = body.get("items")
    if not isinstance(items, list) or not items:
        raise ServiceError(
            errors.INVALID_REQUEST,
            'The body needs an \'items\' list of rows, e.g. {"items": [{"upc": "012345678905", "cost": 3.20, "pack_quantity": 6}]}',
        )
    for name in ("cost_column", "pack_column"):
        if body.get(name) is not None and not isinstance(body[name], str):
            raise ServiceError(errors.INVALID_REQUEST, f"'{name}' must be a column name")
    return items, scanner().defaults.with_overrides(body.get("scan")), body.get("cost_column"), body.get("pack_column")


@bp.post("/scan/<country>")
def post_scan(country: str) -> Response:
    """Profit, ROI and a BUY / REVIEW / SKIP verdict for every item of `{"items": [...], "scan": {profile}}`, in order."""
    body = json_object()
    marketplace = resolve_marketplace(country)
    items, profile, cost_column, pack_column = scan_request(body)
    g.asin_count = len(items)
    limit = current_app.config["SETTINGS"].max_batch_size
    if len(items) > limit:
        raise ServiceError(errors.BATCH_TOO_LARGE, f"'items' has {len(items)} rows; MAX_BATCH_SIZE is {limit}: send a longer list as a job")
    try:
        supplier = read_supplier_items(items, cost_column=cost_column, pack_column=pack_column)
    except SupplierListError as exc:
        raise ServiceError(errors.INVALID_REQUEST, str(exc)) from None
    entries = scanner().scan(list(supplier.rows), marketplace.code, profile, refresh=refresh_requested(body))
    verdicts = [entry["Scan"]["verdict"] for entry in entries]
    return jsonify(
        {
            "country": marketplace.code,
            "marketplace_id": marketplace.marketplace_id,
            "profile": profile.as_json(),
            "results": entries,
            "total": len(entries),
            "verdicts": {verdict: verdicts.count(verdict) for verdict in ("BUY", "REVIEW", "SKIP")},
        }
    )
