"""FBA Inbound Eligibility over real HTTP to the emulator: eligible, a hazmat reason with its message, unknown ASINs."""

from __future__ import annotations

from services.eligibility import inbound_eligibility
from services.eligibility_item import REASON_MESSAGES
from services.spapi import CallCount
from tests.helpers.emulator_log import operation_calls
from utils.marketplaces import MARKETPLACES

US = MARKETPLACES["US"]
# Emulator items (emulator/eligibility.py): eligible, and an electronics item under hazmat review (batteries).
ELIGIBLE_ASIN, HAZMAT_ASIN = "B0TEST0001", "B0TEST0036"


def test_an_eligible_item(spapi, emulator):
    count = CallCount()
    answer = inbound_eligibility(spapi, US, ELIGIBLE_ASIN, count)
    assert {k: v for k, v in answer.items() if k not in ("fetched_at", "cached")} == {"program": "INBOUND", "eligible": True, "reasons": []}
    assert answer["fetched_at"].endswith("Z") and count.sent == 1
    (call,) = operation_calls(emulator, "getItemEligibilityPreview")
    assert (call["asins"], call["marketplace_id"], call["status"]) == ([ELIGIBLE_ASIN], US.marketplace_id, 200)


def test_a_hazmat_reason_comes_with_its_readable_message(spapi):
    answer = inbound_eligibility(spapi, US, HAZMAT_ASIN)
    assert answer["eligible"] is False
    assert answer["reasons"] == [{"code": "FBA_INB_0008", "message": REASON_MESSAGES["FBA_INB_0008"]}]
    assert "battery" in answer["reasons"][0]["message"]


def test_an_asin_not_in_the_catalog_is_not_eligible_with_the_models_reason(spapi):
    answer = inbound_eligibility(spapi, US, "NF00000001")
    assert answer["eligible"] is False
    assert answer["reasons"] == [{"code": "FBA_INB_0017", "message": "This product does not exist in the destination marketplace catalog."}]


def test_sp_apis_404_is_the_datasets_not_found(spapi):
    answer = inbound_eligibility(spapi, US, "TEST_CASE_404")  # the model's sandbox case
    assert answer["error"] == {"code": "NOT_FOUND", "message": "The requested resource doesn't exist."}
    assert answer["fetched_at"].endswith("Z")
