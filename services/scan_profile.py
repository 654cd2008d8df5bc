"""A scan's profile: the gates a supplier row must pass to be worth buying, and the costs besides the supplier's.

Defaults come from settings (SCAN_*); a request overrides any key. An unknown key or a bad value is a
ServiceError(INVALID_REQUEST) naming it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from services import errors
from services.errors import ServiceError

FULFILLMENTS = ("FBA", "FBM")
# The largest amount (or percentage) a profile takes: far beyond any real one, and within float and JSON.
MAX_AMOUNT = 10**9
# Where the sale price comes from: the New Buy Box (else the lowest FBA offer, else the lowest offer),
# the lowest FBA offer (else the lowest offer), or the lowest offer.
PRICE_SOURCES = ("buy_box", "lowest_fba", "lowest_offer")


@dataclass(frozen=True)
class Profile:
    """What a row must meet to be a BUY (money in the marketplace's currency, per unit Amazon sells)."""

    min_roi_percent: Decimal = Decimal(30)
    min_profit: Decimal = Decimal("3.00")
    max_sales_rank: int | None = None
    skip_amazon_on_listing: bool = True
    skip_restricted: bool = True
    skip_hazmat: bool = True
    prep_cost: Decimal = Decimal(0)
    inbound_per_pound: Decimal = Decimal(0)
    fulfillment: str = "FBA"
    price_source: str = "buy_box"

    def as_json(self) -> dict[str, Any]:
        """The profile as JSON numbers, booleans and strings (what a job stores and shows)."""
        return {
            field.name: float(value) if isinstance(value, Decimal) else value
            for field in dataclasses.fields(self)
            for value in [getattr(self, field.name)]
        }

    def with_overrides(self, overrides: object) -> Profile:
        """This profile with `overrides` (a JSON object of its keys) applied; a 400 naming any unknown key or bad value."""
        if overrides is None:
            return self
        if not isinstance(overrides, dict):
            raise ServiceError(errors.INVALID_REQUEST, "'scan' must be an object of profile settings, e.g. {\"min_roi_percent\": 40}")
        known = {field.name for field in dataclasses.fields(self)}
        changes: dict[str, Any] = {}
        for key, value in overrides.items():
            if key not in known:
                raise ServiceError(errors.INVALID_REQUEST, f"Unknown scan setting {key!r}: the settings are {', '.join(sorted(known))}")
            changes[key] = _parse(key, value)
        return dataclasses.replace(self, **changes)


def _bad(key: str, expected: str, value: object) -> ServiceError:
    return ServiceError(errors.INVALID_REQUEST, f"Scan setting {key!r} must be {expected}, not {value!r}")


def _money(key: str, value: object, *, minimum: Decimal) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _bad(key, "a number", value)
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise _bad(key, "a number", value) from None
    if not amount.is_finite() or not minimum <= amount <= MAX_AMOUNT:
        raise _bad(key, f"a number from {minimum} to {MAX_AMOUNT:,}", value)
    return amount


def _parse(key: str, value: object) -> Any:
    if key in ("skip_amazon_on_listing", "skip_restricted", "skip_hazmat"):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise _bad(key, "true or false", value)
    if key == "max_sales_rank":
        if value is None or value == "":
            return None
        if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip().isdigit() or int(value) < 1:
            raise _bad(key, "a whole number >= 1 (or null: no limit)", value)
        return int(value)
    if key == "fulfillment":
        if not isinstance(value, str) or value.strip().upper() not in FULFILLMENTS:
            raise _bad(key, "FBA or FBM", value)
        return value.strip().upper()
    if key == "price_source":
        if not isinstance(value, str) or value.strip().lower() not in PRICE_SOURCES:
            raise _bad(key, "one of " + ", ".join(PRICE_SOURCES), value)
        return value.strip().lower()
    # min_roi_percent may be negative down to -100 (a seller who accepts a loss leader); the other amounts may not.
    return _money(key, value, minimum=Decimal(-100) if key == "min_roi_percent" else Decimal(0))


# Every key a profile takes (a request's `scan` object, or a CSV scan's query string).
PROFILE_KEYS = frozenset(field.name for field in dataclasses.fields(Profile))
