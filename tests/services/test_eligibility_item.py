"""services/eligibility_item.py on the FBA Inbound Eligibility model's sandbox example and its reason codes."""

from __future__ import annotations

from services.eligibility_item import REASON_MESSAGES, eligibility_facts, reason_message
from tests.helpers.sp_api_models import load_model, sandbox_response

MODEL = load_model("fbaInbound.json")
REASONS = MODEL["definitions"]["ItemEligibilityPreview"]["properties"]["ineligibilityReasonList"]["items"]


def test_the_sandbox_preview_is_eligible_for_inbound():
    preview = sandbox_response(MODEL, "getItemEligibilityPreview")["payload"]
    assert eligibility_facts(preview) == {"program": "INBOUND", "eligible": True, "reasons": []}


def test_every_reason_code_of_the_model_has_a_readable_message_in_the_table():
    assert set(REASON_MESSAGES) == set(REASONS["enum"])
    described = {row["value"]: row["description"] for row in REASONS["x-docgen-enum-table-extension"]}
    assert REASON_MESSAGES["FBA_INB_0017"] in described["FBA_INB_0017"]  # the table's messages come from the model's
    assert all(message and len(message) <= 120 for message in REASON_MESSAGES.values())


def test_ineligible_items_carry_each_reason_with_its_message():
    preview = {"asin": "B0TEST0036", "program": "INBOUND", "isEligibleForProgram": False, "ineligibilityReasonList": ["FBA_INB_0008"]}
    assert eligibility_facts(preview)["reasons"] == [{"code": "FBA_INB_0008", "message": REASON_MESSAGES["FBA_INB_0008"]}]
    assert eligibility_facts(preview)["eligible"] is False
    assert reason_message("FBA_INB_9999") == "Unknown ineligibility reason. (FBA_INB_9999)"
