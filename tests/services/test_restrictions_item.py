"""services/restrictions_item.py on the Listings Restrictions 2021-08-01 model's sandbox example and on lists shaped by it."""

from __future__ import annotations

from services.restrictions_item import restrictions_facts
from tests.helpers.sp_api_models import load_model, sandbox_response, schema_errors

MODEL = load_model("listingsRestrictions_2021-08-01.json")
US = "ATVPDKIKX0DER"
SANDBOX = sandbox_response(MODEL, "getListingsRestrictions")


def test_the_sandbox_restriction_applies_to_its_own_condition_only():
    link = "https://sellercentral.amazon.com/hz/approvalrequest/restrictions/approve?asin=B0000ASIN1"
    assert restrictions_facts(SANDBOX, US, "used_acceptable") == {
        "status": "APPROVAL_REQUIRED",  # no reasonCode, but a path-forward link: what the model says of APPROVAL_REQUIRED
        "condition": "used_acceptable",
        "reasons": [{"code": None, "message": "You cannot list the product in this condition.", "approval_url": link}],
    }
    assert restrictions_facts(SANDBOX, US) == {"status": "ALLOWED", "condition": "new_new", "reasons": []}
    assert restrictions_facts(SANDBOX, "A1F83G8C2ARO7P", "used_acceptable")["status"] == "ALLOWED"  # another marketplace's


def test_the_strongest_reason_decides_the_status():
    def restricted(*codes: str) -> dict:
        reasons = [{"message": code.lower(), "reasonCode": code} for code in codes]
        listing = {"restrictions": [{"marketplaceId": US, "conditionType": "new_new", "reasons": reasons}]}
        assert schema_errors(MODEL, "RestrictionList", listing) == []
        return restrictions_facts(listing, US)

    assert restricted("APPROVAL_REQUIRED")["status"] == "APPROVAL_REQUIRED"
    assert restricted("APPROVAL_REQUIRED", "NOT_ELIGIBLE")["status"] == "NOT_ELIGIBLE"
    assert restricted("NOT_ELIGIBLE", "ASIN_NOT_FOUND")["status"] == "ASIN_NOT_FOUND"
    assert restricted()["status"] == "NOT_ELIGIBLE"  # restricted, no reason given
    assert [r["code"] for r in restricted("APPROVAL_REQUIRED", "NOT_ELIGIBLE")["reasons"]] == ["APPROVAL_REQUIRED", "NOT_ELIGIBLE"]
    assert restrictions_facts({"restrictions": []}, US)["status"] == "ALLOWED"
