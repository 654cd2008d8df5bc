"""Product Fees v0 over HTTP: the rate card, results by Identifier, client and service errors, 400s, plans, the call log."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from emulator import EmulatorServer, catalog, defaults, fees
from emulator.client import EmulatorClient
from emulator.plans import GET_MY_FEES_ESTIMATE_FOR_ASIN, GET_MY_FEES_ESTIMATES
from tests.helpers.fake_clock import FakeClock
from tests.helpers.sp_api_library import FAST_PLANS, library_client
from tests.helpers.sp_api_models import load_model, schema_errors

sp_api = pytest.importorskip("sp_api.api")
sp_api_base = pytest.importorskip("sp_api.base")

US = defaults.MARKETPLACES["US"]
JP = defaults.MARKETPLACES["JP"]
DE = defaults.MARKETPLACES["DE"]
BATCH_PATH = "/products/fees/v0/feesEstimate"


@pytest.fixture(scope="module")
def model() -> dict[str, Any]:
    """The official Product Fees v0 model."""
    return load_model("productFeesV0.json")


def estimate_request(
    price: float,
    *,
    identifier: str = "estimate-1",
    marketplace_id: str = US,
    currency: str = "USD",
    shipping: float | None = None,
    fba: bool = True,
) -> dict[str, Any]:
    """A FeesEstimateRequest as python-amazon-sp-api builds it (absent fields sent as null)."""
    return {
        "Identifier": identifier,
        "PriceToEstimateFees": {
            "ListingPrice": {"Amount": price, "CurrencyCode": currency},
            "Shipping": {"Amount": shipping, "CurrencyCode": currency} if shipping is not None else None,
            "Points": None,
        },
        "IsAmazonFulfilled": fba,
        "OptionalFulfillmentProgram": None,
        "MarketplaceId": marketplace_id,
    }


def by_id(asin: str, price: float, **kwargs: Any) -> dict[str, Any]:
    """A FeesEstimateByIdRequest for an ASIN."""
    return {"FeesEstimateRequest": estimate_request(price, **kwargs), "IdType": "ASIN", "IdValue": asin}


def post_for_asin(emu: EmulatorClient, asin: str, body: Any) -> httpx.Response:
    """getMyFeesEstimateForASIN with a JSON body (or raw bytes)."""
    headers = {"x-amz-access-token": emu.token}
    path = f"/products/fees/v0/items/{asin}/feesEstimate"
    if isinstance(body, bytes):
        return emu.http.post(path, content=body, headers={**headers, "content-type": "application/json"})
    return emu.http.post(path, json=body, headers=headers)


def post_batch(emu: EmulatorClient, body: Any) -> httpx.Response:
    """getMyFeesEstimates with a JSON body (or raw bytes)."""
    headers = {"x-amz-access-token": emu.token}
    if isinstance(body, bytes):
        return emu.http.post(BATCH_PATH, content=body, headers={**headers, "content-type": "application/json"})
    return emu.http.post(BATCH_PATH, json=body, headers=headers)


def result_for(emu: EmulatorClient, asin: str, price: float, **kwargs: Any) -> dict[str, Any]:
    """The FeesEstimateResult of one getMyFeesEstimateForASIN call that must succeed at the HTTP level."""
    response = post_for_asin(emu, asin, {"FeesEstimateRequest": estimate_request(price, **kwargs)})
    assert response.status_code == 200, response.text
    return response.json()["payload"]["FeesEstimateResult"]


def final_fees(result: dict[str, Any]) -> dict[str, float]:
    """FeeType -> FinalFee amount of a Success result."""
    return {detail["FeeType"]: detail["FinalFee"]["Amount"] for detail in result["FeesEstimate"]["FeeDetailList"]}


def total(result: dict[str, Any]) -> float:
    """TotalFeesEstimate's amount."""
    return result["FeesEstimate"]["TotalFeesEstimate"]["Amount"]


def assert_total_is_the_sum(result: dict[str, Any]) -> None:
    """TotalFeesEstimate is exactly the sum of the FinalFees, in the same currency."""
    details = result["FeesEstimate"]["FeeDetailList"]
    currency = result["FeesEstimate"]["TotalFeesEstimate"]["CurrencyCode"]
    assert {d["FinalFee"]["CurrencyCode"] for d in details} == {currency}
    assert Decimal(str(total(result))) == sum(Decimal(str(d["FinalFee"]["Amount"])) for d in details)


# --------------------------------------------------------------------------- shapes


def test_an_estimate_fits_the_model_and_echoes_the_request(emu: EmulatorClient, model: dict[str, Any]) -> None:
    response = post_for_asin(emu, "B000000013", {"FeesEstimateRequest": estimate_request(94.99, identifier="my-ref", shipping=4.5)})
    assert response.status_code == 200
    assert response.headers["x-amzn-RequestId"]
    body = response.json()
    assert schema_errors(model, "GetMyFeesEstimateResponse", body) == []
    result = body["payload"]["FeesEstimateResult"]
    assert result["Status"] == "Success"
    assert "Error" not in result
    assert result["FeesEstimateIdentifier"] == {
        "MarketplaceId": US,
        "IdType": "ASIN",
        "SellerId": defaults.SELLER_ID,
        "SellerInputIdentifier": "my-ref",
        "IsAmazonFulfilled": True,
        "IdValue": "B000000013",
        # As sent, without the null Points.
        "PriceToEstimateFees": {
            "ListingPrice": {"Amount": 94.99, "CurrencyCode": "USD"},
            "Shipping": {"Amount": 4.5, "CurrencyCode": "USD"},
        },
    }
    estimated = datetime.fromisoformat(result["FeesEstimate"]["TimeOfFeesEstimation"])
    assert estimated.utcoffset() is not None and estimated.utcoffset().total_seconds() == 0
    for detail in result["FeesEstimate"]["FeeDetailList"]:
        assert detail["FeePromotion"]["Amount"] == 0
        assert detail["FinalFee"] == detail["FeeAmount"]


def test_a_batch_fits_the_model(emu: EmulatorClient, model: dict[str, Any]) -> None:
    body = [
        by_id("B000000013", 94.99, identifier="a"),
        by_id("NF00000001", 10.0, identifier="b"),
        by_id("B000000002", 9.99, identifier="c"),
    ]
    response = post_batch(emu, body)
    assert response.status_code == 200
    results = response.json()
    assert schema_errors(model, "GetMyFeesEstimatesResponse", results) == []
    assert sorted(r["FeesEstimateIdentifier"]["SellerInputIdentifier"] for r in results) == ["a", "b", "c"]


# --------------------------------------------------------------------------- the rate card


@pytest.mark.parametrize(
    ("asin", "price", "shipping", "expected"),
    [
        # Headphones (electronics, 8%): 3.27 x 4.0 x 4.04 in, 0.18 lb -> large standard (shortest side over 0.75 in);
        # dimensional weight 52.8 / 139 = 0.38 lb -> the 8 oz step, 4.08. Referral 94.99 x 8% = 7.5992 -> 7.60.
        ("B000000013", 94.99, None, {"ReferralFee": 7.60, "VariableClosingFee": 0.0, "PerItemFee": 0.0, "FBAFees": 4.08}),
        # A cable (electronics accessory, 15%): 21.99 x 15% = 3.2985 -> 3.30; large standard, 1.2 lb dimensional -> 1.5 lb step, 5.40.
        ("B000000054", 21.99, None, {"ReferralFee": 3.30, "VariableClosingFee": 0.0, "PerItemFee": 0.0, "FBAFees": 5.40}),
        # A drill (12%): 160.99 x 12% = 19.3188 -> 19.32; large standard, 3.63 lb -> 3 lb + 2 half-pounds: 6.39 + 0.32 = 6.71.
        ("B000000033", 160.99, None, {"ReferralFee": 19.32, "VariableClosingFee": 0.0, "PerItemFee": 0.0, "FBAFees": 6.71}),
        # A stapler (office, 15%) at $1: 0.15 is under the $0.30 minimum; large standard, 0.93 lb -> the 1 lb step, 4.75.
        ("B000000002", 1.00, None, {"ReferralFee": 0.30, "VariableClosingFee": 0.0, "PerItemFee": 0.0, "FBAFees": 4.75}),
        # Dumbbells (sports, 15%), shipping counts: (212.99 + 5) x 15% = 32.6985 -> 32.70;
        # 38.87 lb is over large standard's 20 lb -> large bulky, 39 lb: 9.61 + 0.38 x 38 = 24.05.
        ("B000000001", 212.99, 5.0, {"ReferralFee": 32.70, "VariableClosingFee": 0.0, "PerItemFee": 0.0, "FBAFees": 24.05}),
        # Dumbbells of 62.23 lb (over large bulky's 50 lb) -> extra-large, 63 lb: 44.95 + 0.75 x 13 = 54.70; 76.99 x 15% = 11.5485 -> 11.55.
        ("B000000187", 76.99, None, {"ReferralFee": 11.55, "VariableClosingFee": 0.0, "PerItemFee": 0.0, "FBAFees": 54.70}),
        # The model's TV (electronics, 8%): 80 x 48 x 10.5 in, 137 lb -> extra-large, 290.07 lb dimensional -> 291 lb:
        # 44.95 + 0.75 x 241 = 225.70. Referral 3799.99 x 8% = 303.9992 -> 304.00.
        ("B07N4M94X4", 3799.99, None, {"ReferralFee": 304.00, "VariableClosingFee": 0.0, "PerItemFee": 0.0, "FBAFees": 225.70}),
        # A book (an ISBN-10 ASIN, 15%, closing fee 1.80): 16.03 x 10.33 x 5.34 in, 1.38 lb, 6.36 lb dimensional:
        # large standard, 3 lb + 7 half-pounds: 6.39 + 1.12 = 7.51. Referral 34.99 x 15% = 5.2485 -> 5.25.
        ("0306406152", 34.99, None, {"ReferralFee": 5.25, "VariableClosingFee": 1.80, "PerItemFee": 0.0, "FBAFees": 7.51}),
    ],
)
def test_the_rate_card_prices_each_fee(
    emu: EmulatorClient, asin: str, price: float, shipping: float | None, expected: dict[str, float]
) -> None:
    result = result_for(emu, asin, price, shipping=shipping)
    assert result["Status"] == "Success"
    assert final_fees(result) == expected
    assert_total_is_the_sum(result)
    assert total(result) == pytest.approx(sum(expected.values()), abs=1e-9)
    fba = result["FeesEstimate"]["FeeDetailList"][-1]
    assert [d["FeeType"] for d in fba["IncludedFeeDetailList"]] == ["FBAPerUnitFulfillmentFee"]
    assert fba["IncludedFeeDetailList"][0]["FinalFee"] == fba["FinalFee"]


def test_the_packages_the_card_was_worked_out_on() -> None:
    # The expectations above come from these packages (height, length, width in inches; weight in pounds).
    def dims(asin: str) -> list[float]:
        listing = catalog.listing(asin, US)
        assert listing is not None
        return [round(v, 2) for v in listing.package_dims]

    assert dims("B000000013") == [3.27, 4.0, 4.04, 0.18]
    assert dims("B000000033") == [7.39, 10.15, 4.14, 3.63]
    assert dims("B000000001") == [9.41, 17.14, 9.94, 38.87]
    assert dims("B000000187") == [10.72, 17.02, 9.48, 62.23]
    assert dims("0306406152") == [5.34, 16.03, 10.33, 1.38]


def test_not_fulfilled_by_amazon_has_no_fba_fee(emu: EmulatorClient) -> None:
    merchant = result_for(emu, "0306406152", 34.99, fba=False)
    assert final_fees(merchant) == {"ReferralFee": 5.25, "VariableClosingFee": 1.80, "PerItemFee": 0.0}
    assert total(merchant) == 7.05
    assert merchant["FeesEstimateIdentifier"]["IsAmazonFulfilled"] is False
    # IsAmazonFulfilled is optional: absent means merchant-fulfilled too.
    request = estimate_request(94.99)
    del request["IsAmazonFulfilled"]
    absent = post_for_asin(emu, "B000000013", {"FeesEstimateRequest": request}).json()["payload"]["FeesEstimateResult"]
    assert "FBAFees" not in final_fees(absent) and absent["FeesEstimateIdentifier"]["IsAmazonFulfilled"] is False


def test_fees_are_in_the_marketplace_currency(emu: EmulatorClient) -> None:
    # Yen at 150 to the dollar, whole yen: minimum 0.30 -> 45, closing 1.80 -> 270, FBA 4.75 -> 712.5 -> 713.
    stapler = result_for(emu, "B000000002", 100, marketplace_id=JP, currency="JPY")
    assert final_fees(stapler) == {"ReferralFee": 45.0, "VariableClosingFee": 0.0, "PerItemFee": 0.0, "FBAFees": 713.0}
    assert stapler["FeesEstimate"]["TotalFeesEstimate"] == {"CurrencyCode": "JPY", "Amount": 758.0}
    book = result_for(emu, "0306406152", 2000, marketplace_id=JP, currency="JPY", fba=False)
    assert final_fees(book) == {"ReferralFee": 300.0, "VariableClosingFee": 270.0, "PerItemFee": 0.0}
    # Euros at 0.92: the cable's 1.5 lb step 5.40 -> 4.968 -> 4.97; 15% of 20 = 3.00.
    cable = result_for(emu, "B000000054", 20, marketplace_id=DE, currency="EUR")
    assert final_fees(cable) == {"ReferralFee": 3.0, "VariableClosingFee": 0.0, "PerItemFee": 0.0, "FBAFees": 4.97}
    assert {d["FinalFee"]["CurrencyCode"] for d in cable["FeesEstimate"]["FeeDetailList"]} == {"EUR"}


def test_size_tiers_and_steps_of_the_card() -> None:
    # No catalog package is small standard (all are over 0.75 in thick): the card's first tier, on its own.
    thin = (0.5, 10.0, 8.0, 0.2)
    tier = fees.size_tier(thin)
    assert tier.name == "Small standard"
    # Small standard is charged on the package weight alone (dimensional weight 0.29 lb here is ignored).
    assert fees.shipping_weight(tier, thin) == Decimal("0.2")
    assert fees.fulfilment_fee(tier, Decimal("0.2")) == Decimal("3.22")  # 3.2 oz -> the 4 oz step
    assert fees.fulfilment_fee(tier, Decimal("0.26")) == Decimal("3.40")  # 4.2 oz -> the 8 oz step
    assert fees.fulfilment_fee(tier, Decimal("1")) == Decimal("3.77")
    assert fees.size_tier((0.8, 10.0, 8.0, 0.2)).name == "Large standard"  # a tenth of an inch too thick
    assert fees.size_tier((0.5, 10.0, 8.0, 1.1)).name == "Large standard"  # over a pound
    assert fees.size_tier((9.0, 17.0, 9.0, 20.5)).name == "Large bulky"
    assert fees.size_tier((30.0, 58.0, 30.0, 40.0)).name == "Extra-large"  # length + girth 178 in
    large = fees.SIZE_TIERS[1]
    assert fees.fulfilment_fee(large, Decimal("3")) == Decimal("6.39")
    assert fees.fulfilment_fee(large, Decimal("3.01")) == Decimal("6.55")  # any part of a half-pound counts
    assert fees.fulfilment_fee(fees.SIZE_TIERS[3], Decimal("50")) == Decimal("44.95")
    assert fees.fulfilment_fee(fees.SIZE_TIERS[3], Decimal("50.5")) == Decimal("45.70")


def test_the_same_request_gets_the_same_fees(emu: EmulatorClient) -> None:
    first = result_for(emu, "B0DETERM01", 25.0)
    second = result_for(emu, "B0DETERM01", 25.0)
    assert first["FeesEstimate"]["FeeDetailList"] == second["FeesEstimate"]["FeeDetailList"]
    # A higher price raises the referral fee only.
    dearer = result_for(emu, "B0DETERM01", 50.0)
    assert final_fees(dearer)["ReferralFee"] > final_fees(first)["ReferralFee"]
    assert final_fees(dearer)["FBAFees"] == final_fees(first)["FBAFees"]


# --------------------------------------------------------------------------- the batch


def test_batch_results_are_matched_by_identifier_not_position(emu: EmulatorClient) -> None:
    # Two requests for the same ASIN at the same price, told apart only by their Identifier.
    body = [by_id("B000000013", 94.99, identifier="fba"), by_id("B000000013", 94.99, identifier="merchant", fba=False)]
    results = {r["FeesEstimateIdentifier"]["SellerInputIdentifier"]: r for r in post_batch(emu, body).json()}
    assert set(results) == {"fba", "merchant"}
    assert final_fees(results["fba"])["FBAFees"] == 4.08
    assert "FBAFees" not in final_fees(results["merchant"])
    assert total(results["fba"]) == 11.68 and total(results["merchant"]) == 7.60


def test_batch_order_is_fixed_but_not_the_request_order(emu: EmulatorClient) -> None:
    body = [by_id(f"B0000000{n:02d}", 20.0, identifier=f"id-{n}") for n in range(1, 21)]
    first = [r["FeesEstimateIdentifier"]["SellerInputIdentifier"] for r in post_batch(emu, body).json()]
    assert sorted(first) == sorted(f"id-{n}" for n in range(1, 21))
    assert first != [f"id-{n}" for n in range(1, 21)]
    assert [r["FeesEstimateIdentifier"]["SellerInputIdentifier"] for r in post_batch(emu, body).json()] == first


def test_unknown_asins_wrong_currencies_and_skus_are_client_errors(emu: EmulatorClient, model: dict[str, Any]) -> None:
    body = [
        by_id("B000000013", 94.99, identifier="good"),
        by_id("NF00000001", 10.0, identifier="unknown"),
        by_id("B07N4M94X4", 10.0, identifier="not-in-de", marketplace_id=DE, currency="EUR"),
        by_id("B000000013", 94.99, identifier="euros-in-us", currency="EUR"),
        {"FeesEstimateRequest": estimate_request(10.0, identifier="sku"), "IdType": "SellerSKU", "IdValue": "MY-SKU-1"},
    ]
    response = post_batch(emu, body)
    assert response.status_code == 200
    results = {r["FeesEstimateIdentifier"]["SellerInputIdentifier"]: r for r in response.json()}
    assert schema_errors(model, "GetMyFeesEstimatesResponse", response.json()) == []
    assert results["good"]["Status"] == "Success"
    for identifier in ("unknown", "not-in-de", "euros-in-us", "sku"):
        result = results[identifier]
        assert result["Status"] == "ClientError"
        assert "FeesEstimate" not in result
        assert result["Error"]["Type"] == "Sender" and result["Error"]["Code"] == "InvalidParameterValue"
        assert result["Error"]["Detail"] == []
    assert results["unknown"]["Error"]["Message"] == f"ASIN NF00000001 is not valid for marketplace {US}."
    assert "B07N4M94X4" in results["not-in-de"]["Error"]["Message"]
    assert "EUR" in results["euros-in-us"]["Error"]["Message"] and "USD" in results["euros-in-us"]["Error"]["Message"]
    assert results["sku"]["FeesEstimateIdentifier"]["IdType"] == "SellerSKU"
    # The single-ASIN operation answers the same inside its 200.
    single = result_for(emu, "NF00000001", 10.0)
    assert single["Status"] == "ClientError" and single["Error"]["Code"] == "InvalidParameterValue"


def test_item_faults_are_service_errors_inside_the_batchs_200(make_client: Callable[..., EmulatorClient], model: dict[str, Any]) -> None:
    emu = make_client(plans=FAST_PLANS, item_fault_rate=1.0)
    body = [by_id("B000000013", 94.99, identifier="a"), by_id("B000000002", 9.99, identifier="b")]
    response = post_batch(emu, body)
    assert response.status_code == 200
    results = response.json()
    assert schema_errors(model, "GetMyFeesEstimatesResponse", results) == []
    assert [r["Status"] for r in results] == ["ServiceError", "ServiceError"]
    assert {r["FeesEstimateIdentifier"]["SellerInputIdentifier"] for r in results} == {"a", "b"}
    assert all(r["Error"]["Type"] == "Receiver" and "FeesEstimate" not in r for r in results)
    # Per-item faults belong to batches: the single-ASIN operation answers as usual.
    assert result_for(emu, "B000000013", 94.99)["Status"] == "Success"
    emu.configure(item_fault_rate=0.0)
    assert {r["Status"] for r in post_batch(emu, body).json()} == {"Success"}


def test_a_share_of_items_fault_with_a_lower_rate(make_client: Callable[..., EmulatorClient]) -> None:
    emu = make_client(plans=FAST_PLANS, item_fault_rate=0.3, seed=11)
    body = [by_id(f"B0000000{n:02d}", 20.0, identifier=f"id-{n}") for n in range(1, 21)]
    statuses = [r["Status"] for _ in range(10) for r in post_batch(emu, body).json()]
    assert 30 <= statuses.count("ServiceError") <= 90  # 200 items at 0.3
    assert set(statuses) == {"Success", "ServiceError"}


# --------------------------------------------------------------------------- the models' sandbox


def test_the_models_sandbox_requests_get_its_responses(emu: EmulatorClient, model: dict[str, Any]) -> None:
    one = model["paths"]["/products/fees/v0/items/{Asin}/feesEstimate"]["post"]["responses"]
    example = one["200"]["x-amzn-api-sandbox"]["static"][0]
    asin = example["response"]["payload"]["FeesEstimateResult"]["FeesEstimateIdentifier"]["IdValue"]
    response = post_for_asin(emu, asin, example["request"]["parameters"]["body"]["value"])
    assert (response.status_code, response.json()) == (200, example["response"])
    bad = one["400"]["x-amzn-api-sandbox"]["static"][0]
    response = post_for_asin(emu, asin, bad["request"]["parameters"]["body"]["value"])
    assert (response.status_code, response.json()) == (400, bad["response"])

    batch = model["paths"][BATCH_PATH]["post"]["responses"]
    example = batch["200"]["x-amzn-api-sandbox"]["static"][0]
    response = post_batch(emu, example["request"]["parameters"]["body"]["value"])
    assert (response.status_code, response.json()) == (200, example["response"])
    bad = batch["400"]["x-amzn-api-sandbox"]["static"][0]
    response = post_batch(emu, bad["request"]["parameters"]["body"]["value"])
    assert (response.status_code, response.json()) == (400, bad["response"])


# --------------------------------------------------------------------------- validation


def _assert_invalid(response: httpx.Response, parameter: str) -> None:
    assert response.status_code == 400, response.text
    errors = response.json()["errors"]
    assert len(errors) == 1 and errors[0]["code"] == "InvalidInput"
    assert parameter in errors[0]["message"], errors[0]["message"]
    assert response.headers["x-amzn-RateLimit-Limit"] and response.headers["x-amzn-RequestId"]


def _changed(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    request = estimate_request(10.0)
    change(request)
    return {"FeesEstimateRequest": request}


def _price(request: dict[str, Any]) -> dict[str, Any]:
    return request["PriceToEstimateFees"]


@pytest.mark.parametrize(
    ("asin", "body", "parameter"),
    [
        ("B000000013", b"", "body"),
        ("B000000013", b"{not json", "body"),
        ("B000000013", [], "body"),
        ("B000000013", {}, "FeesEstimateRequest"),
        ("B000000013", {"FeesEstimateRequest": "x"}, "FeesEstimateRequest"),
        ("B000000013", _changed(lambda r: r.pop("MarketplaceId")), "FeesEstimateRequest.MarketplaceId"),
        ("B000000013", _changed(lambda r: r.update(MarketplaceId="XX123")), "Incorrect Marketplace identifier."),
        ("B000000013", _changed(lambda r: r.pop("Identifier")), "FeesEstimateRequest.Identifier"),
        ("B000000013", _changed(lambda r: r.update(Identifier="")), "FeesEstimateRequest.Identifier"),
        ("B000000013", _changed(lambda r: r.update(IsAmazonFulfilled="true")), "FeesEstimateRequest.IsAmazonFulfilled"),
        ("B000000013", _changed(lambda r: r.pop("PriceToEstimateFees")), "FeesEstimateRequest.PriceToEstimateFees"),
        ("B000000013", _changed(lambda r: _price(r).pop("ListingPrice")), "PriceToEstimateFees.ListingPrice"),
        ("B000000013", _changed(lambda r: _price(r)["ListingPrice"].update(Amount=-1)), "ListingPrice.Amount"),
        ("B000000013", _changed(lambda r: _price(r)["ListingPrice"].update(Amount="7.99")), "ListingPrice.Amount"),
        ("B000000013", _changed(lambda r: _price(r)["ListingPrice"].update(Amount=4.6e307)), "ListingPrice.Amount"),
        ("B000000013", _changed(lambda r: _price(r)["ListingPrice"].pop("CurrencyCode")), "ListingPrice.CurrencyCode"),
        ("B000000013", _changed(lambda r: _price(r).update(Shipping={"Amount": 1})), "Shipping.CurrencyCode"),
        ("B000000013", _changed(lambda r: _price(r).update(Points={"PointsNumber": -3})), "Points.PointsNumber"),
        ("B000000013", _changed(lambda r: r.update(OptionalFulfillmentProgram="FBA_FAST")), "OptionalFulfillmentProgram"),
        ("B00000001", {"FeesEstimateRequest": estimate_request(10.0)}, "Asin"),
        ("B0000-0013", {"FeesEstimateRequest": estimate_request(10.0)}, "Asin"),
    ],
)
def test_for_asin_validation(emu: EmulatorClient, asin: str, body: Any, parameter: str) -> None:
    _assert_invalid(post_for_asin(emu, asin, body), parameter)


@pytest.mark.parametrize(
    ("body", "parameter"),
    [
        (b"", "body"),
        (b"[{", "body"),
        ({"FeesEstimateRequest": estimate_request(10.0)}, "body"),
        ([], "body"),
        ([by_id(f"B0000000{n:02d}", 10.0, identifier=str(n)) for n in range(21)], "body"),
        ([by_id("B000000013", 10.0), "x"], "body[1]"),
        ([{"IdType": "ASIN", "IdValue": "B000000013"}], "body[0].FeesEstimateRequest"),
        ([{**by_id("B000000013", 10.0), "IdType": None}], "body[0].IdType"),
        ([{**by_id("B000000013", 10.0), "IdType": "UPC"}], "body[0].IdType"),
        ([{**by_id("B000000013", 10.0), "IdValue": ""}], "body[0].IdValue"),
        ([by_id("B000000013", 10.0), by_id("B00000001", 10.0)], "body[1].IdValue"),
        ([by_id("B000000013", 10.0), by_id("B000000013", 10.0, marketplace_id="XX")], "Incorrect Marketplace identifier."),
    ],
)
def test_batch_validation(emu: EmulatorClient, body: Any, parameter: str) -> None:
    _assert_invalid(post_batch(emu, body), parameter)


def test_twenty_requests_are_fine(emu: EmulatorClient) -> None:
    body = [by_id(f"B0000000{n:02d}", 10.0, identifier=str(n)) for n in range(20)]
    response = post_batch(emu, body)
    assert response.status_code == 200 and len(response.json()) == 20


# --------------------------------------------------------------------------- plans and the call log


def test_usage_plans_on_a_fake_clock(make_client: Callable[..., EmulatorClient]) -> None:
    clock = FakeClock()
    emu = make_client(clock=clock)  # the models' plans: for ASIN 1/s burst 2, batch 0.5/s burst 1
    assert emu.token
    one = {"FeesEstimateRequest": estimate_request(10.0)}
    responses = [post_for_asin(emu, "B000000013", one) for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 429]
    assert {r.headers["x-amzn-RateLimit-Limit"] for r in responses} == {"1.0"}
    batch = [by_id("B000000013", 10.0)]
    responses = [post_batch(emu, batch) for _ in range(2)]
    assert [r.status_code for r in responses] == [200, 429]
    assert {r.headers["x-amzn-RateLimit-Limit"] for r in responses} == {"0.5"}
    assert responses[1].json()["errors"][0]["code"] == "QuotaExceeded"
    clock.advance(1.0)  # one token back for ASIN (1/s), half a token for the batch (0.5/s)
    assert post_for_asin(emu, "B000000013", one).status_code == 200
    assert post_for_asin(emu, "B000000013", one).status_code == 429
    assert post_batch(emu, batch).status_code == 429
    clock.advance(1.0)
    assert post_batch(emu, batch).status_code == 200


def test_the_plans_option_overrides_the_models(make_client: Callable[..., EmulatorClient]) -> None:
    emu = make_client(clock=FakeClock(), plans={GET_MY_FEES_ESTIMATES: (5.0, 3)})
    statuses = [post_batch(emu, [by_id("B000000013", 10.0)]) for _ in range(4)]
    assert [r.status_code for r in statuses] == [200, 200, 200, 429]
    assert statuses[0].headers["x-amzn-RateLimit-Limit"] == "5.0"
    # The other operation keeps its model's plan.
    assert post_for_asin(emu, "B000000013", {"FeesEstimateRequest": estimate_request(10.0)}).headers["x-amzn-RateLimit-Limit"] == "1.0"


def test_the_call_log_records_operations_asins_and_marketplaces(emu: EmulatorClient) -> None:
    post_for_asin(emu, "B000000013", {"FeesEstimateRequest": estimate_request(10.0)})
    post_for_asin(emu, "B000000013", {"FeesEstimateRequest": estimate_request(10.0, marketplace_id="XX")})
    post_batch(emu, [by_id("B000000013", 10.0), by_id("NF00000001", 10.0, marketplace_id=DE, currency="EUR"), by_id("B000000002", 10.0)])
    log = emu.calls()
    assert log["by_operation"][GET_MY_FEES_ESTIMATE_FOR_ASIN] == {"200": 1, "400": 1}
    assert log["by_operation"][GET_MY_FEES_ESTIMATES] == {"200": 1}
    calls = [c for c in log["calls"] if c["operation"] != "lwaToken"]
    assert [(c["operation"], c["asins"], c["marketplace_id"]) for c in calls] == [
        (GET_MY_FEES_ESTIMATE_FOR_ASIN, ["B000000013"], US),
        (GET_MY_FEES_ESTIMATE_FOR_ASIN, ["B000000013"], "XX"),
        (GET_MY_FEES_ESTIMATES, ["B000000013", "NF00000001", "B000000002"], f"{US},{DE}"),
    ]


# --------------------------------------------------------------------------- python-amazon-sp-api


def _library_client(server: EmulatorServer, refresh_token: str) -> Any:
    """The library's ProductFees client for the emulator, built as services/spapi.py builds its CatalogItems client."""
    client = library_client(sp_api.ProductFees, server, refresh_token)
    return client


def test_the_library_estimates_one_asin_and_a_batch(make_server: Callable[..., EmulatorServer]) -> None:
    # A refresh token of its own: the library caches access tokens per refresh token, process-wide.
    refresh_token = f"Atzr|sp-api-fees-{uuid.uuid4()}"
    server = make_server(plans=FAST_PLANS, refresh_token=refresh_token)
    client = _library_client(server, refresh_token)

    one = client.get_product_fees_estimate_for_asin("B000000013", price=94.99, currency="USD", is_fba=True)
    result = one.payload["FeesEstimateResult"]
    assert result["Status"] == "Success"
    assert final_fees(result) == {"ReferralFee": 7.60, "VariableClosingFee": 0.0, "PerItemFee": 0.0, "FBAFees": 4.08}
    # The library's Identifier is the ASIN here; with shipping, the referral fee counts it.
    assert result["FeesEstimateIdentifier"]["SellerInputIdentifier"] == "B000000013"
    shipped = client.get_product_fees_estimate_for_asin("0306406152", price=30.0, shipping_price=4.99, is_fba=False)
    assert final_fees(shipped.payload["FeesEstimateResult"])["ReferralFee"] == 5.25  # 34.99 x 15%
    assert one.headers["x-amzn-RateLimit-Limit"] == "1000.0"

    batch = client.get_product_fees_estimate(
        [
            {"id_type": "ASIN", "id_value": "B000000013", "price": 94.99, "is_fba": True, "identifier": "headphones"},
            {"id_type": "ASIN", "id_value": "0306406152", "price": 34.99},  # the library's Identifier: the price, "34.99"
            {"id_type": "ASIN", "id_value": "NF00000001", "price": 10.0, "identifier": "unknown"},
        ]
    )
    results = {r["FeesEstimateIdentifier"]["SellerInputIdentifier"]: r for r in batch.payload}
    assert set(results) == {"headphones", "34.99", "unknown"}
    assert total(results["headphones"]) == 11.68
    assert final_fees(results["34.99"]) == {"ReferralFee": 5.25, "VariableClosingFee": 1.80, "PerItemFee": 0.0}
    assert results["unknown"]["Status"] == "ClientError"
    log = server.calls()
    assert log["by_operation"][GET_MY_FEES_ESTIMATE_FOR_ASIN] == {"200": 2}
    assert log["by_operation"][GET_MY_FEES_ESTIMATES] == {"200": 1}
    assert log["calls"][-1]["asins"] == ["B000000013", "0306406152", "NF00000001"]
