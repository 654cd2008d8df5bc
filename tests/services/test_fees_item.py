"""services/fees_item.py on the Product Fees v0 model's sandbox examples and on results shaped by the model."""

from __future__ import annotations

import copy

from services.fees_item import fees_facts
from tests.helpers.sp_api_models import load_model, sandbox_response, schema_errors

MODEL = load_model("productFeesV0.json")


def _money(amount: float, currency: str = "USD") -> dict:
    return {"CurrencyCode": currency, "Amount": amount}


def _fee(fee_type: str, amount: float, promotion: float = 0.0) -> dict:
    return {"FeeType": fee_type, "FeeAmount": _money(amount), "FeePromotion": _money(promotion), "FinalFee": _money(amount - promotion)}


def test_the_sandbox_estimate_for_an_asin():
    result = sandbox_response(MODEL, "getMyFeesEstimateForASIN")["payload"]["FeesEstimateResult"]
    assert fees_facts(result) == {
        "price": 10.0,
        "fulfilled_by_amazon": False,
        "referral_fee": None,
        "fba_fee": None,
        "closing_fee": None,
        "other_fees": None,
        "total_fees": 3.0,
        "currency": "USD",
    }


def test_the_sandbox_batch_in_each_marketplaces_currency():
    results = sandbox_response(MODEL, "getMyFeesEstimates")
    assert [(fees_facts(r)["total_fees"], fees_facts(r)["currency"]) for r in results] == [(3.0, "USD"), (3.0, "MXN")]


def test_fee_types_are_named_final_fees_summed_and_the_rest_is_other():
    result = copy.deepcopy(sandbox_response(MODEL, "getMyFeesEstimateForASIN")["payload"]["FeesEstimateResult"])
    result["FeesEstimateIdentifier"]["IsAmazonFulfilled"] = True
    result["FeesEstimate"]["FeeDetailList"] = [
        _fee("ReferralFee", 3.0, promotion=0.5),
        _fee("VariableClosingFee", 1.8),
        _fee("PerItemFee", 0.99),
        _fee("FBAFees", 4.24),
        _fee("FBAStorageFee", 0.11),
    ]
    result["FeesEstimate"]["TotalFeesEstimate"] = _money(10.64)
    assert schema_errors(MODEL, "FeesEstimateResult", result) == []
    facts = fees_facts(result)
    assert (facts["referral_fee"], facts["closing_fee"], facts["fba_fee"]) == (2.5, 1.8, 4.24)  # FinalFee, after the promotion
    assert facts["other_fees"] == 1.1  # PerItemFee + FBAStorageFee, without float noise
    assert (facts["total_fees"], facts["fulfilled_by_amazon"]) == (10.64, True)


def test_a_result_without_an_estimate_has_null_facts():
    assert fees_facts({"Status": "Success"}) == dict.fromkeys(
        ("price", "fulfilled_by_amazon", "referral_fee", "fba_fee", "closing_fee", "other_fees", "total_fees", "currency")
    )
