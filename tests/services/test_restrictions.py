"""Listings Restrictions over real HTTP to the emulator: allowed, approval required, not eligible, unknown, the seller id."""

from __future__ import annotations

from services.restrictions import listing_restrictions
from services.spapi import CallCount
from tests.helpers.emulator_log import operation_calls
from utils.marketplaces import MARKETPLACES
from utils.sandbox import SELLER_ID

US = MARKETPLACES["US"]
# Emulator items (emulator/restrictions.py): of no gated brand, of a gated brand, drawn not eligible.
ALLOWED_ASIN, GATED_ASIN, NOT_ELIGIBLE_ASIN = "B0TEST0001", "B0TEST0003", "B0TEST0035"


def test_an_item_without_restrictions_is_allowed(spapi, emulator):
    count = CallCount()
    answer = listing_restrictions(spapi, US, ALLOWED_ASIN, SELLER_ID, count)
    assert {k: v for k, v in answer.items() if k not in ("fetched_at", "cached")} == {
        "status": "ALLOWED",
        "condition": "new_new",
        "reasons": [],
    }
    assert answer["fetched_at"].endswith("Z") and count.sent == 1
    (call,) = operation_calls(emulator, "getListingsRestrictions")
    assert (call["asins"], call["marketplace_id"], call["status"]) == ([ALLOWED_ASIN], US.marketplace_id, 200)


def test_a_gated_brand_needs_approval_with_its_link(spapi):
    answer = listing_restrictions(spapi, US, GATED_ASIN, SELLER_ID)
    assert answer["status"] == "APPROVAL_REQUIRED"
    (reason,) = answer["reasons"]
    assert reason["code"] == "APPROVAL_REQUIRED" and "approval" in reason["message"]
    assert reason["approval_url"] == (
        f"https://sellercentral.amazon.com/hz/approvalrequest/restrictions/approve?asin={GATED_ASIN}&itemcondition=new"
    )


def test_an_item_the_seller_may_not_list_is_not_eligible_without_a_link(spapi):
    answer = listing_restrictions(spapi, US, NOT_ELIGIBLE_ASIN, SELLER_ID)
    assert answer["status"] == "NOT_ELIGIBLE"
    assert answer["reasons"] == [
        {"code": "NOT_ELIGIBLE", "message": "You are not eligible to list this product in this marketplace.", "approval_url": None}
    ]


def test_an_unknown_asin_is_asin_not_found(spapi):
    answer = listing_restrictions(spapi, US, "NF00000001", SELLER_ID)
    assert answer["status"] == "ASIN_NOT_FOUND"
    assert [r["code"] for r in answer["reasons"]] == ["ASIN_NOT_FOUND"]


def test_the_seller_id_is_sent_as_seller_id(spapi, emulator):
    """The emulator checks sellerId is a merchant token: a wrong one is refused with its value named."""
    answer = listing_restrictions(spapi, US, ALLOWED_ASIN, "not-a-token")
    assert answer["error"]["code"] == "UPSTREAM_REJECTED" and "'not-a-token' for parameter 'sellerId'" in answer["error"]["message"]
    assert answer["fetched_at"].endswith("Z")
    assert [c["status"] for c in operation_calls(emulator, "getListingsRestrictions")] == [400]


def test_without_a_seller_id_the_dataset_fails_on_its_own_and_nothing_is_sent(spapi, emulator):
    answer = listing_restrictions(spapi, US, ALLOWED_ASIN, "")
    assert answer["error"]["code"] == "SELLER_ID_MISSING" and "SELLER_ID" in answer["error"]["message"]
    assert answer["fetched_at"] is None
    assert operation_calls(emulator, "getListingsRestrictions") == []


def test_a_failed_call_is_the_datasets_error(spapi, emulator):
    emulator.configure(fault_rate=1.0)
    answer = listing_restrictions(spapi, US, ALLOWED_ASIN, SELLER_ID)
    assert set(answer) == {"error", "cached", "fetched_at"} and answer["error"]["code"] == "UPSTREAM_ERROR"
