"""Listings Restrictions 2021-08-01: getListingsRestrictions, from the item's catalog listing.

Per marketplace asked, an item is one of (emulator/README.md has the rules and shares):

* not in the catalog there: one restriction, reason `ASIN_NOT_FOUND`;
* not eligible (about 3% of items, drawn per ASIN and marketplace): reason `NOT_ELIGIBLE`, no link;
* of a gated brand (about 15% of brands, by brand name, so every item of a brand agrees): reason
  `APPROVAL_REQUIRED` with the model's "Request Approval via Seller Central." link on the
  marketplace's Seller Central domain;
* a beauty item asked for in a condition other than new: reason `NOT_ELIGIBLE` ("You cannot list
  the product in this condition.", Amazon sells no used topicals);
* otherwise allowed: no restriction at all.

B0000ASIN1 (the model's example ASIN) in the US answers the model's sandbox example.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from flask import Flask, Response, request

from emulator import catalog
from emulator.calls import Call, answer_call
from emulator.catalog import Listing
from emulator.examples import load_fixture
from emulator.options import EmulatorOptions
from emulator.params import InvalidInput, asin_param, csv_param, enum_param, marketplace_ids_param
from emulator.plans import GET_LISTINGS_RESTRICTIONS
from emulator.products import MARKETPLACE_INFO
from emulator.state import EmulatorState

# The conditionType enum of the model, in its order.
CONDITION_TYPES: tuple[str, ...] = (
    "new_new",
    "new_open_box",
    "new_oem",
    "refurbished_refurbished",
    "used_like_new",
    "used_very_good",
    "used_good",
    "used_acceptable",
    "collectible_like_new",
    "collectible_very_good",
    "collectible_good",
    "collectible_acceptable",
    "club_club",
)
# A merchant token: "A" and then upper-case letters and digits (Amazon's are 13 or 14 characters long).
_SELLER_ID = re.compile(r"A[0-9A-Z]{9,19}")

GATED_BRAND_SHARE = 0.15  # of brands, by a hash of the brand's name
NOT_ELIGIBLE_SHARE = 0.03  # of items, per ASIN and marketplace
# Categories where only new items may be listed.
NEW_ONLY_CATEGORIES = frozenset({"beauty"})

APPROVAL_TITLE = "Request Approval via Seller Central."  # the model's link title


def brand_is_gated(brand: str) -> bool:
    """True when listing the brand needs approval: the same answer for every item, in every marketplace."""
    digest = hashlib.sha256(("gated|" + brand.strip().lower()).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < GATED_BRAND_SHARE


def seller_central(marketplace_id: str) -> str:
    """The marketplace's Seller Central host, e.g. sellercentral.amazon.com or sellercentral.amazon.co.jp."""
    return "sellercentral." + MARKETPLACE_INFO[marketplace_id].domain


def _approval_link(asin: str, marketplace_id: str, condition_type: str | None) -> dict[str, str]:
    condition = (condition_type or "new_new").split("_")[0]
    return {
        "resource": f"https://{seller_central(marketplace_id)}/hz/approvalrequest/restrictions/approve?asin={asin}&itemcondition={condition}",
        "verb": "GET",
        "title": APPROVAL_TITLE,
        "type": "text/html",
    }


def restriction_reasons(listing: Listing, condition_type: str | None) -> list[dict[str, Any]]:
    """Why this seller may not list the item in this condition (empty: allowed)."""
    if listing.draws.unit("not_eligible") < NOT_ELIGIBLE_SHARE:
        return [{"message": "You are not eligible to list this product in this marketplace.", "reasonCode": "NOT_ELIGIBLE"}]
    reasons: list[dict[str, Any]] = []
    if brand_is_gated(listing.brand):
        reasons.append(
            {
                "message": f"You need approval to list products of the brand {listing.brand}.",
                "reasonCode": "APPROVAL_REQUIRED",
                "links": [_approval_link(listing.asin, listing.marketplace_id, condition_type)],
            }
        )
    if listing.category in NEW_ONLY_CATEGORIES and condition_type is not None and not condition_type.startswith("new_"):
        reasons.append({"message": "You cannot list the product in this condition.", "reasonCode": "NOT_ELIGIBLE"})
    return reasons


def restrictions_for(options: EmulatorOptions, asin: str, marketplace_id: str, condition_type: str | None) -> list[dict[str, Any]]:
    """The restrictions of one marketplace: none, or one restriction with its reasons."""
    sandbox = sandbox_example()
    if asin == sandbox["asin"] and marketplace_id == sandbox["marketplaceId"]:
        # The model's example is a restriction on one condition: asked for another, there is none.
        return [r for r in sandbox["response"]["restrictions"] if condition_type in (None, r.get("conditionType"))]
    listing = catalog.listing(asin, marketplace_id, options.not_found_prefix)
    if listing is None:
        message = f"The ASIN {asin} was not found in marketplace {marketplace_id}."
        reasons = [{"message": message, "reasonCode": "ASIN_NOT_FOUND"}]
    else:
        reasons = restriction_reasons(listing, condition_type)
    if not reasons:
        return []
    restriction: dict[str, Any] = {"marketplaceId": marketplace_id}
    if condition_type is not None:
        restriction["conditionType"] = condition_type
    restriction["reasons"] = reasons
    return [restriction]


def sandbox_example() -> dict[str, Any]:
    """The model's sandbox example: {"asin", "marketplaceId", "response"}."""
    return load_fixture("sandbox_restrictions.json")


def _answer(options: EmulatorOptions) -> tuple[int, dict[str, Any]]:
    args = request.args
    asin = asin_param(args.get("asin"), "asin")
    seller_id = (args.get("sellerId") or "").strip()
    if not seller_id:
        raise InvalidInput("Missing required parameter 'sellerId'.")
    if not _SELLER_ID.fullmatch(seller_id):
        raise InvalidInput(f"Invalid value '{seller_id}' for parameter 'sellerId': not a merchant token.")
    marketplace_ids = marketplace_ids_param(args)
    condition_type = enum_param(args.get("conditionType"), "conditionType", CONDITION_TYPES)
    # reasonLocale and productType are accepted; messages are in English (the model's fallback, en_US).
    restrictions = [r for marketplace_id in marketplace_ids for r in restrictions_for(options, asin, marketplace_id, condition_type)]
    return 200, {"restrictions": restrictions}


def register(app: Flask, state: EmulatorState) -> None:
    """Add Listings Restrictions 2021-08-01's getListingsRestrictions to the emulator's app."""

    @app.get("/listings/2021-08-01/restrictions")
    def get_listings_restrictions() -> Response:
        """getListingsRestrictions: what keeps the seller from listing an ASIN, per marketplace."""
        asin = (request.args.get("asin") or "").strip()
        marketplace_id = ",".join(csv_param(request.args, "marketplaceIds") or []) or None
        call = Call(GET_LISTINGS_RESTRICTIONS, [asin] if asin else [], marketplace_id)
        return answer_call(state, call, lambda: _answer(state.options))
