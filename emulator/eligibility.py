"""FBA Inbound Eligibility v1: getItemEligibilityPreview, from the item's catalog listing.

INBOUND (can the item be sent to Amazon's fulfilment centres in that marketplace?): about 12% of
items are not eligible, drawn per ASIN and marketplace; dangerous goods (hazmat) reasons are the
most common, the review reason depending on what the item is (batteries for electronics, a safety
data sheet for beauty products). COMMINGLING (may the manufacturer barcode track the inventory?):
an item whose UPC another ASIN shares (a base item and its multipack bundle) never may, and about
5% of the others may not. An ASIN the catalog does not have there is not eligible either, with the
model's reason for that (FBA_INB_0017). The reason codes and their descriptions are the model's
(shared/reference/fbaInbound.json); emulator/README.md has the table.

The model's sandbox ASINs (TEST_CASE_200, TEST_CASE_400, ...) answer the model's static examples.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, request

from emulator import catalog
from emulator.calls import Call, answer_call
from emulator.catalog import Listing
from emulator.defaults import MARKETPLACES
from emulator.examples import load_fixture
from emulator.identifiers import bundle_asin, bundle_base
from emulator.options import EmulatorOptions
from emulator.params import InvalidInput, asin_param, csv_param, enum_param, marketplace_ids_param
from emulator.plans import GET_ITEM_ELIGIBILITY_PREVIEW
from emulator.state import EmulatorState

INBOUND, COMMINGLING = "INBOUND", "COMMINGLING"
PROGRAMS = (INBOUND, COMMINGLING)
# COMMINGLING previews asked without a marketplace draw from the item's US listing.
_COMMINGLING_DEFAULT_MARKETPLACE = MARKETPLACES["US"]

NOT_IN_CATALOG = "FBA_INB_0017"  # "This product does not exist in the destination marketplace catalog."
SHARED_BARCODE = "FBA_INB_0095"  # "The barcode (UPC/EAN/JAN/ISBN) ... is associated with more than one product"

INBOUND_INELIGIBLE_SHARE = 0.12
# Why an item is not eligible for INBOUND: (cumulative share of the ineligible items, reason).
# "hazmat review" stands for the dangerous-goods review reason that fits the item (HAZMAT_REVIEW).
INBOUND_REASONS: tuple[tuple[float, str], ...] = (
    (0.55, "hazmat review"),
    (0.70, "FBA_INB_0016"),  # a fulfillable dangerous good: needs the FBA hazmat programme
    (0.75, "FBA_INB_0097"),  # a fully regulated dangerous good
    (0.85, "FBA_INB_0197"),  # needs safety and compliance documentation
    (0.95, "FBA_INB_0051"),  # blocked by FBA
    (1.00, "FBA_INB_0053"),  # no shipping option in the marketplace, or too large or heavy
)
HAZMAT_REVIEW: dict[str, str] = {
    "electronics": "FBA_INB_0008",  # under review: detailed battery information needed
    "beauty": "FBA_INB_0009",  # under review: a safety data sheet (SDS) needed
}
HAZMAT_REVIEW_DEFAULT = "FBA_INB_0014"  # under review: identified as possible dangerous goods

# Why an item with a barcode of its own may not be commingled: (cumulative share of all items, reason).
COMMINGLING_REASONS: tuple[tuple[float, str], ...] = (
    (0.03, "FBA_INB_0465"),  # the seller is not the brand's representative in Brand Registry
    (0.05, "FBA_INB_0034"),  # cannot be stickerless, commingled
)


def inbound_reasons(listing: Listing) -> list[str]:
    """Why the item cannot be sent to FBA in its marketplace (empty: eligible)."""
    draws = listing.draws
    if draws.unit("inbound") >= INBOUND_INELIGIBLE_SHARE:
        return []
    roll = draws.unit("inbound_reason")
    reason = next(code for limit, code in INBOUND_REASONS if roll < limit)
    if reason == "hazmat review":
        reason = HAZMAT_REVIEW.get(listing.category, HAZMAT_REVIEW_DEFAULT)
    return [reason]


def commingling_reasons(listing: Listing) -> list[str]:
    """Why the item's manufacturer barcode cannot track its FBA inventory (empty: eligible)."""
    if bundle_asin(listing.asin) is not None or bundle_base(listing.asin) is not None:
        return [SHARED_BARCODE]
    roll = listing.draws.unit("commingling")
    return [code for limit, code in COMMINGLING_REASONS if roll < limit][:1]


def preview(options: EmulatorOptions, asin: str, program: str, marketplace_id: str | None) -> dict[str, Any]:
    """The ItemEligibilityPreview of an ASIN for a program (marketplace_id None: COMMINGLING asked without one)."""
    listing = catalog.listing(asin, marketplace_id or _COMMINGLING_DEFAULT_MARKETPLACE, options.not_found_prefix)
    if listing is None:
        reasons = [NOT_IN_CATALOG]
    else:
        reasons = inbound_reasons(listing) if program == INBOUND else commingling_reasons(listing)
    payload: dict[str, Any] = {"asin": asin}
    if marketplace_id is not None:
        payload["marketplaceId"] = marketplace_id
    payload["program"] = program
    payload["isEligibleForProgram"] = not reasons
    if reasons:
        payload["ineligibilityReasonList"] = reasons
    return payload


def sandbox_examples() -> dict[str, Any]:
    """The model's static sandbox examples: {asin: {"status", "body"}} (TEST_CASE_200, TEST_CASE_400, ...)."""
    return load_fixture("sandbox_eligibility.json")


def _answer(options: EmulatorOptions) -> tuple[int, dict[str, Any]]:
    args = request.args
    example = sandbox_examples().get((args.get("asin") or "").strip())
    if example is not None:
        return example["status"], example["body"]
    asin = asin_param(args.get("asin"), "asin")
    program = enum_param(args.get("program"), "program", PROGRAMS)
    if program is None:
        raise InvalidInput("Missing required parameter 'program'.")
    marketplace_id: str | None = None
    if csv_param(args, "marketplaceIds") or program == INBOUND:
        if not csv_param(args, "marketplaceIds"):
            raise InvalidInput("Missing required parameter 'marketplaceIds': it is required when 'program' is INBOUND.")
        marketplace_id = marketplace_ids_param(args, 1)[0]  # the model: maxItems 1
    return 200, {"payload": preview(options, asin, program, marketplace_id)}


def register(app: Flask, state: EmulatorState) -> None:
    """Add FBA Inbound Eligibility v1's getItemEligibilityPreview to the emulator's app."""

    @app.get("/fba/inbound/v1/eligibility/itemPreview")
    def get_item_eligibility_preview() -> Response:
        """getItemEligibilityPreview: may the item go to FBA (INBOUND), or be tracked by its barcode (COMMINGLING)?"""
        asin = (request.args.get("asin") or "").strip()
        marketplace_id = ",".join(csv_param(request.args, "marketplaceIds") or []) or None
        call = Call(GET_ITEM_ELIGIBILITY_PREVIEW, [asin] if asin else [], marketplace_id)
        return answer_call(state, call, lambda: _answer(state.options))
