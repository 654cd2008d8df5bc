"""`include`: pricing, offers, fees, restrictions and eligibility on entries, over real HTTP to the emulator.

The expected values come from the emulator's own data (emulator/offers.py, fees.py, restrictions.py,
eligibility.py), and the call counts from its call log. The emulator's plans of the five families are
raised (FAMILY_PLANS): after a first call at the documented plan the service adopts the announced one,
so no test waits long for a slot. Pacing at the real plans is tests/deploy/test_dataset_pacing.py's.
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest

from emulator import EmulatorServer, catalog
from emulator.eligibility import inbound_reasons
from emulator.fees import estimate_fees
from emulator.offers import buy_box, of_condition, offer_book
from emulator.restrictions import brand_is_gated
from tests.helpers.data import synthetic_asins
from tests.helpers.emulator_log import operation_calls
from tests.helpers.spapi import FAMILY_PLANS
from utils.marketplaces import MARKETPLACES

US = MARKETPLACES["US"].marketplace_id
DATASET_OPERATIONS = (
    "getCompetitivePricing",
    "getItemOffers",
    "getItemOffersBatch",
    "getMyFeesEstimates",
    "getMyFeesEstimateForASIN",
    "getListingsRestrictions",
    "getItemEligibilityPreview",
)
POOL = synthetic_asins(400)


@pytest.fixture(autouse=True)
def fast_plans(emulator: EmulatorServer) -> None:
    emulator.configure(plans=FAMILY_PLANS)


def listing(asin: str) -> catalog.Listing:
    found = catalog.listing(asin, US)
    assert found is not None
    return found


def new_buy_box(asin: str):
    book = offer_book(asin, US)
    assert book is not None
    return buy_box(book, "New", False)


def pick(predicate, n: int = 1) -> list[str]:
    """The first `n` synthetic ASINs the emulator's data says `predicate` of."""
    chosen = [asin for asin in POOL if predicate(asin)][:n]
    assert len(chosen) == n, "the emulator's synthetic items have too few of these"
    return chosen


def rate_card_total(asin: str, price: float, fba: bool = True) -> float:
    return float(estimate_fees(listing(asin), Decimal(repr(price)), Decimal(0), fba).total)


def calls_of(emulator: EmulatorServer) -> dict[str, int]:
    return {operation: len(operation_calls(emulator, operation)) for operation in DATASET_OPERATIONS}


def asins_asked(emulator: EmulatorServer, operation: str) -> list[str]:
    return [asin for call in operation_calls(emulator, operation) for asin in call["asins"]]


# -- values ---------------------------------------------------------------------------------------


def test_each_dataset_says_what_the_emulators_data_says(client, emulator):
    amazon = pick(lambda a: (offer_book(a, US) or None) is not None and any(o.is_amazon for o in of_condition(offer_book(a, US), "New")))[0]
    gated = pick(lambda a: brand_is_gated(listing(a).brand))[0]
    ineligible = pick(lambda a: bool(inbound_reasons(listing(a))))[0]
    for asin in dict.fromkeys([amazon, gated, ineligible]):
        response = client.get(f"/asin/{asin}?include=pricing,offers,fees,restrictions,eligibility&price=25")
        assert response.status_code == 200
        entry = response.get_json()
        book = offer_book(asin, US)
        winner = new_buy_box(asin)
        new = of_condition(book, "New")

        pricing, offers = entry["Pricing"], entry["Offers"]
        assert pricing["buy_box_price"] == (winner.landed(False) if winner else None)
        assert pricing["currency"] == offers["currency"] == "USD"
        assert offers["buy_box_price"] == (winner.landed(False) if winner else None)
        assert offers["offer_count"] == len(new)
        assert offers["fba_offer_count"] == sum(o.fba for o in new)
        assert offers["fbm_offer_count"] == sum(not o.fba for o in new)
        assert offers["amazon_on_listing"] == any(o.is_amazon for o in new)
        if winner is not None:
            assert offers["buy_box_seller"] == ("AMAZON" if winner.is_amazon else "FBA" if winner.fba else "FBM")

        fees = entry["Fees"]
        assert (fees["price"], fees["price_source"], fees["fulfilled_by_amazon"]) == (25.0, "given", True)
        assert fees["total_fees"] == rate_card_total(asin, 25.0)
        assert fees["total_fees"] == pytest.approx(sum(fees[k] for k in ("referral_fee", "fba_fee", "closing_fee", "other_fees")))

        restrictions = entry["Restrictions"]
        if brand_is_gated(listing(asin).brand) and restrictions["status"] == "APPROVAL_REQUIRED":
            (reason,) = [r for r in restrictions["reasons"] if r["code"] == "APPROVAL_REQUIRED"]
            assert reason["approval_url"].startswith(
                "https://sellercentral.amazon.com/hz/approvalrequest/restrictions/approve?asin=" + asin
            )
        elif not restrictions["reasons"]:
            assert restrictions["status"] == "ALLOWED"

        eligibility = entry["Eligibility"]
        reasons = inbound_reasons(listing(asin))
        assert eligibility["program"] == "INBOUND"
        assert eligibility["eligible"] is (not reasons)
        assert [r["code"] for r in eligibility["reasons"]] == reasons
        assert all(r["message"] and r["message"] != r["code"] for r in eligibility["reasons"])
        for name in ("Pricing", "Offers", "Fees", "Restrictions", "Eligibility"):
            assert entry[name]["cached"] is False and entry[name]["fetched_at"]
    gated_entry = client.get(f"/asin/{gated}?include=restrictions").get_json()
    assert gated_entry["Restrictions"]["status"] in ("APPROVAL_REQUIRED", "NOT_ELIGIBLE")


def test_fees_without_a_price_are_estimated_at_the_buy_box(client, emulator):
    asin = pick(lambda a: new_buy_box(a) is not None)[0]
    entry = client.get(f"/asin/{asin}?include=fees").get_json()
    price = new_buy_box(asin).landed(False)
    assert "Pricing" not in entry, "only what include names is answered"
    assert (entry["Fees"]["price"], entry["Fees"]["price_source"]) == (price, "buy_box")
    assert entry["Fees"]["total_fees"] == rate_card_total(asin, price)
    assert calls_of(emulator)["getCompetitivePricing"] == 1


def test_fees_of_an_item_without_a_buy_box_are_no_price_unless_offers_give_one(client, emulator):
    asin = pick(lambda a: offer_book(a, US) is not None and new_buy_box(a) is None and bool(of_condition(offer_book(a, US), "New")))[0]
    alone = client.get(f"/asin/{asin}?include=fees").get_json()
    assert alone["success"] is True
    assert alone["Fees"]["error"]["code"] == "NO_PRICE"
    assert calls_of(emulator)["getMyFeesEstimateForASIN"] + calls_of(emulator)["getMyFeesEstimates"] == 0

    with_offers = client.get(f"/asin/{asin}?include=offers,fees&refresh=true").get_json()
    lowest = min(o.landed(False) for o in of_condition(offer_book(asin, US), "New"))
    assert (with_offers["Fees"]["price"], with_offers["Fees"]["price_source"]) == (lowest, "lowest_offer")
    assert with_offers["Fees"]["total_fees"] == rate_card_total(asin, lowest)


def test_fbm_fees_have_no_fulfilment_fee(client, emulator):
    asin = POOL[0]
    entry = client.get(f"/asin/{asin}?include=fees&price=30&fulfillment=FBM").get_json()
    assert entry["Fees"]["fulfilled_by_amazon"] is False
    assert not entry["Fees"]["fba_fee"]
    assert entry["Fees"]["total_fees"] == rate_card_total(asin, 30.0, fba=False)


# -- calls ----------------------------------------------------------------------------------------


def test_45_asins_with_pricing_and_fees_make_three_plus_three_calls(client, emulator):
    asins = pick(lambda a: new_buy_box(a) is not None, 45)
    answer = client.post("/asin/batch/US", json={"asins": asins, "include": ["pricing", "fees"]}).get_json()
    calls = calls_of(emulator)
    assert (calls["getCompetitivePricing"], calls["getMyFeesEstimates"]) == (3, 3)
    assert sum(calls.values()) == 6
    assert answer["api_calls"] == 3 + 6  # 3 searchCatalogItems as well
    for asin, entry in zip(asins, answer["results"], strict=True):
        assert entry["asin"] == asin
        assert entry["Fees"]["price"] == entry["Pricing"]["buy_box_price"] == new_buy_box(asin).landed(False)
        assert entry["Fees"]["total_fees"] == rate_card_total(asin, entry["Fees"]["price"])


def test_the_same_price_twice_is_matched_to_each_asin(client, emulator):
    # Two items whose fees differ at one price (a different size tier or referral rate).
    first = POOL[0]
    second = next(a for a in POOL[1:] if rate_card_total(a, 40.0) != rate_card_total(first, 40.0))
    body = {"asins": [first, second], "include": ["fees"], "prices": {first: 40, second: 40}}
    results = client.post("/asin/batch/US", json=body).get_json()["results"]
    assert [r["Fees"]["total_fees"] for r in results] == [rate_card_total(first, 40.0), rate_card_total(second, 40.0)]
    assert calls_of(emulator)["getMyFeesEstimates"] == 1
    assert calls_of(emulator)["getCompetitivePricing"] == 0, "every price was given"


def test_duplicates_are_fetched_once_for_every_dataset(client, emulator):
    asins = POOL[:3]
    body = {"asins": asins + asins[::-1], "include": ["pricing", "offers", "restrictions", "eligibility"]}
    results = client.post("/asin/batch/US", json=body).get_json()["results"]
    assert len(results) == 6 and results[0]["Offers"] == results[5]["Offers"]
    for operation in ("getCompetitivePricing", "getItemOffersBatch", "getListingsRestrictions", "getItemEligibilityPreview"):
        assert sorted(asins_asked(emulator, operation)) == sorted(asins), operation


def test_without_include_no_dataset_is_fetched_and_the_entry_is_as_before(client, emulator):
    single = client.get(f"/asin/{POOL[0]}").get_json()
    batch = client.post("/asin/batch/US", json={"asins": POOL[1:4]}).get_json()
    assert set(calls_of(emulator).values()) == {0}
    for entry in [single, *batch["results"]]:
        assert not {"Pricing", "Offers", "Fees", "Restrictions", "Eligibility"} & set(entry)


def test_datasets_are_cached_each_with_its_own_key_and_refresh_skips_them(client, emulator):
    asins = pick(lambda a: new_buy_box(a) is not None, 4)  # priced: a NO_PRICE is not kept
    body = {"asins": asins, "include": ["pricing", "fees", "eligibility"]}
    client.post("/asin/batch/US", json=body)
    before = calls_of(emulator)
    again = client.post("/asin/batch/US", json=body).get_json()
    assert calls_of(emulator) == before
    assert all(entry[name]["cached"] for entry in again["results"] for name in ("Pricing", "Fees", "Eligibility"))
    # Fees are kept per price: a new price is a new estimate.
    client.post("/asin/batch/US", json={**body, "prices": {asins[0]: 99.5}})
    assert calls_of(emulator)["getMyFeesEstimateForASIN"] == before["getMyFeesEstimateForASIN"] + 1
    client.post("/asin/batch/US", json={**body, "refresh": True})
    assert calls_of(emulator)["getItemEligibilityPreview"] == before["getItemEligibilityPreview"] + 4


def test_codes_carry_the_datasets_of_their_best_asin(client, emulator):
    asin = POOL[5]
    upc = next(code["identifier"] for code in catalog.item_identifiers(asin) if code["identifierType"] == "UPC")
    answer = client.post("/asin/batch/US", json={"identifiers": [upc], "identifier_type": "UPC", "include": ["pricing"]}).get_json()
    (entry,) = answer["results"]
    assert entry["asin"] == asin and "Pricing" in entry
    assert asins_asked(emulator, "getCompetitivePricing") == [asin]


def test_an_item_the_catalog_does_not_find_carries_no_dataset(client, emulator):
    results = client.post("/asin/batch/US", json={"asins": [POOL[0], "NF00000001"], "include": ["pricing"]}).get_json()["results"]
    assert "Pricing" in results[0]
    assert results[1]["error"]["code"] == "NOT_FOUND" and "Pricing" not in results[1]


# -- failures -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, operation", [("offers", "getItemOffersBatch"), ("fees", "getMyFeesEstimates")])
def test_items_failing_inside_a_200_are_retried_alone_and_recovered(client, emulator, name, operation):
    # One dataset at a time: the emulator's fault draws then come in a fixed order (seeded).
    emulator.configure(plans=FAMILY_PLANS, item_fault_rate=0.25, seed=3)
    asins = POOL[:20]
    body = {"asins": asins, "include": [name], **({"prices": dict.fromkeys(asins, 20)} if name == "fees" else {})}
    results = client.post("/asin/batch/US", json=body).get_json()["results"]
    key = name.capitalize()
    assert [entry["asin"] for entry in results if "error" in entry[key]] == []
    first, *again = operation_calls(emulator, operation)
    assert sorted(first["asins"]) == sorted(asins)
    single = "getItemOffers" if name == "offers" else "getMyFeesEstimateForASIN"
    retried = [asin for call in again for asin in call["asins"]] + asins_asked(emulator, single)
    assert 0 < len(retried) < len(asins), "the failed items, and only they, are asked again"


def test_exhausted_retries_fail_the_dataset_alone(client, emulator):
    emulator.configure(plans=FAMILY_PLANS, item_fault_rate=1.0)
    results = client.post("/asin/batch/US", json={"asins": POOL[:3], "include": ["offers", "restrictions"]}).get_json()["results"]
    for entry in results:
        assert entry["success"] is True and entry["Title"]
        assert entry["Offers"]["error"]["code"] == "UPSTREAM_ERROR"
        assert "error" not in entry["Restrictions"]


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, fragment",
    [
        (f"/asin/{POOL[0]}?include=pricing,stock", "pricing, offers, fees, restrictions, eligibility"),
        (f"/asin/{POOL[0]}?include=fees&price=abc", "?price="),
        (f"/asin/{POOL[0]}?include=fees&price=-3", "above 0"),
        (f"/asin/{POOL[0]}?include=fees&price=4.6e307", "at most 1,000,000"),
        (f"/asin/{POOL[0]}?include=pricing&price=10", "add fees to include"),
        (f"/asin/{POOL[0]}?include=fees&fulfillment=drone", "FBA or FBM"),
    ],
)
def test_a_bad_query_is_a_clear_400(client, emulator, path, fragment):
    response = client.get(path)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "INVALID_REQUEST"
    assert fragment in response.get_json()["error"]["message"]
    assert set(calls_of(emulator).values()) == {0}


@pytest.mark.parametrize(
    "extra, fragment",
    [
        ({"include": "pricing"}, "must be a list"),
        ({"include": ["pricing", "weather"]}, "'weather'"),
        ({"include": ["fees"], "prices": {"B0TEST9999": 10}}, "B0TEST9999, which is not in 'asins'"),
        ({"include": ["fees"], "prices": {POOL[0]: "cheap"}}, "must be a price"),
        ({"include": ["fees"], "prices": [10]}, "must be an object"),
        ({"include": ["pricing"], "prices": {POOL[0]: 10}}, "add fees to include"),
    ],
)
def test_a_bad_batch_body_is_a_clear_400(client, emulator, extra, fragment):
    response = client.post("/asin/batch/US", json={"asins": POOL[:2], **extra})
    assert response.status_code == 400
    assert fragment in response.get_json()["error"]["message"]
    assert set(calls_of(emulator).values()) == {0}


# -- jobs -----------------------------------------------------------------------------------------


def run_job(client, job_id: str) -> dict:
    """Run the queued job to its end in this thread (the runner's own step loop), and its view."""
    client.application.extensions["jobs"].runner.run_once()
    return client.get(f"/jobs/{job_id}").get_json()


def test_a_job_carries_its_datasets_in_json_and_csv(client, emulator):
    asins = POOL[:5]
    created = client.post("/jobs/US", json={"asins": asins, "include": ["pricing", "restrictions"]})
    assert created.status_code == 202 and created.get_json()["include"] == ["pricing", "restrictions"]
    job = run_job(client, created.get_json()["id"])
    assert job["status"] == "done"
    results = client.get(f"/jobs/{job['id']}/results").get_json()["results"]
    assert all("Pricing" in r and "Restrictions" in r and "Fees" not in r for r in results)
    rows = list(csv.DictReader(io.StringIO(client.get(f"/jobs/{job['id']}/results?format=csv").get_data(as_text=True))))
    assert [row["input"] for row in rows] == asins
    for row, entry in zip(rows, results, strict=True):
        assert row["buy_box_price"] == ("" if entry["Pricing"]["buy_box_price"] is None else str(entry["Pricing"]["buy_box_price"]))
        assert row["restriction_status"] == entry["Restrictions"]["status"]
    assert "total_fees" not in rows[0], "only the included datasets' columns"


def test_a_csv_job_takes_include_from_the_query(client, emulator):
    body = "asin\n" + "\n".join(POOL[:3]) + "\n"
    created = client.post("/jobs/US?include=eligibility", data=body, content_type="text/csv")
    assert created.status_code == 202
    job = run_job(client, created.get_json()["id"])
    rows = list(csv.DictReader(io.StringIO(client.get(f"/jobs/{job['id']}/results?format=csv").get_data(as_text=True))))
    for row in rows:
        assert row["inbound_eligible"] == ("false" if inbound_reasons(listing(row["input"])) else "true")
    assert client.post("/jobs/US?include=colour", data=body, content_type="text/csv").status_code == 400
