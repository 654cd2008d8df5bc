"""Product Pricing v0 over HTTP: getCompetitivePricing, getItemOffers, getItemOffersBatch against the official model.

Shapes are checked with jsonschema against the model's definitions; the data is checked for what a
caller relies on: the counts agree with the offers listed, one Buy Box winner, the same Buy Box in
competitive pricing and in the offers, the catalog's list price and currency, and realistic shares.
"""

from __future__ import annotations

import copy
import json
import random
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft4Validator

from emulator import EmulatorServer, catalog, defaults, offers
from emulator.client import EmulatorClient
from emulator.plans import GET_COMPETITIVE_PRICING, GET_ITEM_OFFERS, GET_ITEM_OFFERS_BATCH
from tests.helpers.fake_clock import FakeClock
from tests.helpers.sp_api_library import library_client

REPO_ROOT = Path(__file__).resolve().parents[2]
# Amazon's model, vendored (see tests/fixtures/README.md); the copy in ../shared/reference wins when present.
SHARED_MODEL = REPO_ROOT.parent / "shared/reference/productPricingV0.json"
MODEL_PATH = SHARED_MODEL if SHARED_MODEL.is_file() else REPO_ROOT / "tests/fixtures/productPricingV0.json"

US = defaults.MARKETPLACES["US"]
DE = defaults.MARKETPLACES["DE"]
GB = defaults.MARKETPLACES["GB"]
JP = defaults.MARKETPLACES["JP"]
COMPETITIVE_PATH = "/products/pricing/v0/competitivePrice"
BATCH_PATH = "/batches/products/pricing/v0/itemOffers"
PRICING_OPERATIONS = (GET_COMPETITIVE_PRICING, GET_ITEM_OFFERS, GET_ITEM_OFFERS_BATCH)
FAST = {operation: (1000.0, 1000) for operation in PRICING_OPERATIONS}
ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
QUOTA_EXCEEDED = {"errors": [{"code": "QuotaExceeded", "message": "You exceeded your quota for the requested resource.", "details": ""}]}


@pytest.fixture(scope="module")
def pricing_model() -> dict[str, Any]:
    """The official Product Pricing v0 model."""
    return json.loads(MODEL_PATH.read_text(encoding="utf-8"))


def _sample_asins(count: int, seed: int = 20240501) -> list[str]:
    rng = random.Random(seed)
    return ["B0" + "".join(rng.choice(ALNUM) for _ in range(8)) for _ in range(count)]


# --------------------------------------------------------------------------- HTTP helpers


def _headers(emu: EmulatorClient) -> dict[str, str]:
    return {"x-amz-access-token": emu.token}


def competitive(emu: EmulatorClient, asins: list[str] | None, **params: Any) -> httpx.Response:
    """getCompetitivePricing (MarketplaceId US, ItemType Asin unless given)."""
    params.setdefault("MarketplaceId", US)
    params.setdefault("ItemType", "Asin")
    if asins is not None:
        params["Asins"] = ",".join(asins)
    return emu.http.get(COMPETITIVE_PATH, params=params, headers=_headers(emu))


def item_offers(emu: EmulatorClient, asin: str, **params: Any) -> httpx.Response:
    """getItemOffers (MarketplaceId US, ItemCondition New unless given)."""
    params.setdefault("MarketplaceId", US)
    params.setdefault("ItemCondition", "New")
    return emu.http.get(f"/products/pricing/v0/items/{asin}/offers", params=params, headers=_headers(emu))


def batch_request(asin: str, marketplace_id: str = US, condition: str = "New", customer_type: str | None = "Consumer") -> dict[str, Any]:
    """One request of a getItemOffersBatch body, as the model gives it."""
    sent = {
        "uri": f"/products/pricing/v0/items/{asin}/offers",
        "method": "GET",
        "MarketplaceId": marketplace_id,
        "ItemCondition": condition,
    }
    if customer_type is not None:
        sent["CustomerType"] = customer_type
    return sent


def batch(emu: EmulatorClient, body: Any) -> httpx.Response:
    """getItemOffersBatch with `body` as its JSON body."""
    return emu.http.post(BATCH_PATH, content=json.dumps(body), headers={**_headers(emu), "content-type": "application/json"})


def batch_payloads(emu: EmulatorClient, asins: list[str], **request: Any) -> list[dict[str, Any]]:
    """getItemOffers payloads of many ASINs, 20 to a batch."""
    payloads = []
    for start in range(0, len(asins), 20):
        response = batch(emu, {"requests": [batch_request(asin, **request) for asin in asins[start : start + 20]]})
        assert response.status_code == 200, response.text
        for entry in response.json()["responses"]:
            assert entry["status"]["statusCode"] == 200, entry
            payloads.append(entry["body"]["payload"])
    return payloads


# --------------------------------------------------------------------------- schema checks


def _strict(definitions: dict[str, Any]) -> dict[str, Any]:
    """The definitions with no undeclared properties allowed (except those merged by allOf), so invented fields show."""
    strict = copy.deepcopy(definitions)
    merged = {part["$ref"].rsplit("/", 1)[-1] for d in definitions.values() for part in d.get("allOf", []) if "$ref" in part}
    for name, schema in strict.items():
        if "properties" in schema and name not in merged:
            schema["additionalProperties"] = False
    return strict


def schema_problems(model: dict[str, Any], name: str, body: Any, strict: bool = True) -> list[str]:
    """What keeps `body` from matching the model's definition `name` (none when it matches)."""
    definitions = _strict(model["definitions"]) if strict else model["definitions"]
    validator = Draft4Validator({"$ref": f"#/definitions/{name}", "definitions": definitions})
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(body)]


def landed(offer: dict[str, Any]) -> float:
    """ListingPrice + Shipping - Points, as the model defines the landed price."""
    points = offer.get("Points", {}).get("PointsMonetaryValue", {}).get("Amount", 0)
    return round(offer["ListingPrice"]["Amount"] + offer["Shipping"]["Amount"] - points, 2)


def catalog_list_price(asin: str, marketplace_id: str) -> dict[str, Any]:
    """The catalog item's attributes.list_price, as getCatalogItem gives it."""
    item = catalog.build_item(asin, marketplace_id, ["attributes"])
    assert item is not None
    price = item["attributes"]["list_price"][0]
    return {"CurrencyCode": price["currency"], "Amount": price["value"]}


# --------------------------------------------------------------------------- happy paths and shapes


def test_competitive_pricing_answers_each_asin_in_the_models_shape(emu: EmulatorClient, pricing_model: dict[str, Any]) -> None:
    asins = _sample_asins(20)
    response = competitive(emu, asins)
    assert response.status_code == 200
    assert response.headers["x-amzn-RateLimit-Limit"] == "1000.0"
    assert len(response.headers["x-amzn-RequestId"]) == 36
    body = response.json()
    assert schema_problems(pricing_model, "GetPricingResponse", body) == []
    assert [entry["ASIN"] for entry in body["payload"]] == asins
    assert {entry["status"] for entry in body["payload"]} == {"Success"}
    for entry in body["payload"]:
        assert entry["Product"]["Identifiers"]["MarketplaceASIN"] == {"MarketplaceId": US, "ASIN": entry["ASIN"]}
        for price in entry["Product"]["CompetitivePricing"]["CompetitivePrices"]:
            assert price["CompetitivePriceId"] in ("1", "2")
            assert {money["CurrencyCode"] for money in price["Price"].values() if "CurrencyCode" in money} == {"USD"}
    # The mix shows: some items have a Used Buy Box, some no Buy Box at all.
    ids = Counter(p["CompetitivePriceId"] for e in body["payload"] for p in e["Product"]["CompetitivePricing"]["CompetitivePrices"])
    assert 0 < ids["2"] < ids["1"] < 20


def test_item_offers_answer_the_lowest_offers_in_the_models_shape(emu: EmulatorClient, pricing_model: dict[str, Any]) -> None:
    seen_offers = 0
    for asin in _sample_asins(12, seed=3):
        response = item_offers(emu, asin)
        assert response.status_code == 200
        body = response.json()
        assert schema_problems(pricing_model, "GetOffersResponse", body) == []
        payload = body["payload"]
        assert (payload["ASIN"], payload["marketplaceId"], payload["ItemCondition"]) == (asin, US, "New")
        assert payload["Identifier"] == {"MarketplaceId": US, "ItemCondition": "New", "ASIN": asin}
        listed = payload["Offers"]
        assert len(listed) <= 20
        assert [landed(o) for o in listed] == sorted(landed(o) for o in listed)  # lowest landed price first
        for offer in listed:
            assert offer["SubCondition"] == "new"
            if offer["IsFulfilledByAmazon"]:
                assert offer["Shipping"]["Amount"] == 0
                assert offer["PrimeInformation"] == {"IsPrime": True, "IsNationalPrime": True}
            if offer["SellerId"] != offers.AMAZON_SELLER_ID:
                rating = offer["SellerFeedbackRating"]
                assert rating["FeedbackCount"] >= 10 and 0 <= rating["SellerPositiveFeedbackRating"] <= 100
        seen_offers += len(listed)
        if listed:
            assert payload["Summary"]["ListPrice"] == catalog_list_price(asin, US)
    assert seen_offers > 12


def test_batch_answers_every_request_in_order_like_get_item_offers(emu: EmulatorClient, pricing_model: dict[str, Any]) -> None:
    requests = [
        batch_request("B0BATCH001"),
        batch_request("B0BATCH002", marketplace_id=DE, condition="Used", customer_type=None),
        batch_request("B0BATCH003", customer_type="Business"),
    ]
    response = batch(emu, {"requests": requests})
    assert response.status_code == 200
    assert response.headers["x-amzn-RateLimit-Limit"] == "1000.0"
    body = response.json()
    assert schema_problems(pricing_model, "GetItemOffersBatchResponse", body) == []
    entries = body["responses"]
    assert [e["request"] for e in entries] == [
        {"MarketplaceId": US, "Asin": "B0BATCH001", "CustomerType": "Consumer", "ItemCondition": "New"},
        {"MarketplaceId": DE, "Asin": "B0BATCH002", "ItemCondition": "Used"},
        {"MarketplaceId": US, "Asin": "B0BATCH003", "CustomerType": "Business", "ItemCondition": "New"},
    ]
    assert [e["status"] for e in entries] == [{"statusCode": 200, "reasonPhrase": "OK"}] * 3
    assert all(len(e["headers"]["x-amzn-RequestId"]) == 36 and e["headers"]["Date"].endswith(" GMT") for e in entries)
    # Each body is what getItemOffers answers for the same request.
    assert entries[0]["body"] == item_offers(emu, "B0BATCH001").json()
    assert entries[1]["body"] == item_offers(emu, "B0BATCH002", MarketplaceId=DE, ItemCondition="Used").json()
    assert entries[2]["body"] == item_offers(emu, "B0BATCH003", CustomerType="Business").json()


def test_business_buyers_see_business_prices_and_quantity_tiers(emu: EmulatorClient, pricing_model: dict[str, Any]) -> None:
    asins = _sample_asins(60, seed=11)
    consumer = {p["ASIN"]: p for p in batch_payloads(emu, asins)}
    business = {p["ASIN"]: p for p in batch_payloads(emu, asins, customer_type="Business")}
    discounted = tiered = 0
    for asin in asins:
        assert schema_problems(pricing_model, "GetOffersResult", business[asin]) == []
        regular = {o["SellerId"]: o["ListingPrice"]["Amount"] for o in consumer[asin]["Offers"]}
        for offer in business[asin]["Offers"]:
            assert offer["offerType"] in ("B2B", "B2C")
            if offer["SellerId"] in regular and offer["offerType"] == "B2B":
                assert offer["ListingPrice"]["Amount"] < regular[offer["SellerId"]]
                discounted += 1
            for tier in offer.get("quantityDiscountPrices", []):
                assert (
                    tier["quantityDiscountType"] == "QUANTITY_DISCOUNT" and tier["listingPrice"]["Amount"] < offer["ListingPrice"]["Amount"]
                )
                tiered += 1
        assert all("offerType" not in o for o in consumer[asin]["Offers"])
    assert discounted > 10 and tiered > 5


# --------------------------------------------------------------------------- determinism and marketplaces


def test_answers_are_deterministic(emu: EmulatorClient, make_client: Callable[..., EmulatorClient]) -> None:
    asins = _sample_asins(5, seed=5)
    other = make_client(plans=FAST)  # another emulator: the data does not depend on the process
    assert competitive(emu, asins).json() == competitive(emu, asins).json() == competitive(other, asins).json()
    first = item_offers(emu, asins[0]).json()
    assert item_offers(emu, asins[0]).json() == first == item_offers(other, asins[0]).json()
    assert item_offers(emu, asins[0].lower()).json() == first  # ASINs are case-insensitive


@pytest.mark.parametrize(("marketplace_id", "currency"), [(US, "USD"), (DE, "EUR"), (GB, "GBP"), (JP, "JPY")])
def test_each_marketplace_prices_in_its_currency_around_the_catalogs_list_price(
    emu: EmulatorClient, marketplace_id: str, currency: str
) -> None:
    asins = _sample_asins(40, seed=7)
    ratios = []
    for payload in batch_payloads(emu, asins, marketplace_id=marketplace_id):
        if not payload["Offers"]:
            continue
        list_price = catalog_list_price(payload["ASIN"], marketplace_id)
        assert payload["Summary"]["ListPrice"] == list_price and list_price["CurrencyCode"] == currency
        for offer in payload["Offers"]:
            assert offer["ListingPrice"]["CurrencyCode"] == offer["Shipping"]["CurrencyCode"] == currency
            if currency == "JPY":
                assert offer["ListingPrice"]["Amount"] % 10 == 0  # whole tens of yen
        ratios.append(payload["Offers"][0]["ListingPrice"]["Amount"] / list_price["Amount"])
    # The lowest offer is sometimes below the list price, sometimes above it, never absurd.
    assert min(ratios) < 1 < max(ratios) and 0.5 < min(ratios) and max(ratios) < 1.5


def test_the_same_asin_has_its_own_offers_in_each_marketplace(emu: EmulatorClient) -> None:
    us = item_offers(emu, "B0MARKET01").json()["payload"]
    de = item_offers(emu, "B0MARKET01", MarketplaceId=DE).json()["payload"]
    assert us["Summary"] != de["Summary"]
    assert de["Summary"]["ListPrice"] == catalog_list_price("B0MARKET01", DE)


def test_japanese_offers_carry_amazon_points_that_lower_the_landed_price(emu: EmulatorClient) -> None:
    payloads = batch_payloads(emu, _sample_asins(20, seed=13), marketplace_id=JP)
    with_points = [o for p in payloads for o in p["Offers"] if "Points" in o]
    assert with_points
    for offer in with_points:
        points = offer["Points"]
        assert points["PointsMonetaryValue"] == {"CurrencyCode": "JPY", "Amount": float(points["PointsNumber"])}
    for payload in payloads:
        for lowest in payload["Summary"].get("LowestPrices", []):
            assert lowest["LandedPrice"]["Amount"] == landed(lowest)
    us = batch_payloads(emu, _sample_asins(20, seed=13))
    assert not [o for p in us for o in p["Offers"] if "Points" in o]


# --------------------------------------------------------------------------- consistency


def _new_buy_box(summary: dict[str, Any]) -> dict[str, Any] | None:
    return next((price for price in summary.get("BuyBoxPrices", []) if price["condition"] == "new"), None)


def test_summary_counts_agree_with_the_offers_listed(emu: EmulatorClient) -> None:
    asins = _sample_asins(120, seed=17)
    capped = 0
    for payload in batch_payloads(emu, asins):
        summary, listed = payload["Summary"], payload["Offers"]
        counts = {(c["condition"], c["fulfillmentChannel"]): c["OfferCount"] for c in summary.get("NumberOfOffers", [])}
        assert summary["TotalOfferCount"] == sum(counts.values())
        new_count = counts.get(("new", "Amazon"), 0) + counts.get(("new", "Merchant"), 0)
        assert len(listed) == min(new_count, 20)
        assert payload["status"] == ("Success" if listed else "NoBuyableOffers")
        if new_count <= 20:
            by_channel = Counter("Amazon" if o["IsFulfilledByAmazon"] else "Merchant" for o in listed)
            assert by_channel == Counter({ch: n for (c, ch), n in counts.items() if c == "new"})
        else:
            capped += 1
        eligible = {(c["condition"], c["fulfillmentChannel"]): c["OfferCount"] for c in summary.get("BuyBoxEligibleOffers", [])}
        assert eligible.keys() == counts.keys() and all(eligible[key] <= counts[key] for key in counts)
        for lowest in summary.get("LowestPrices", []):
            if lowest["condition"] == "new":
                channel = [o for o in listed if (o["IsFulfilledByAmazon"] and lowest["fulfillmentChannel"] == "Amazon")
                           or (not o["IsFulfilledByAmazon"] and lowest["fulfillmentChannel"] == "Merchant")]  # fmt: skip
                assert channel and landed(lowest) == min(landed(o) for o in channel)
    assert capped > 0  # some listings have more offers than the 20 listed


def test_exactly_one_buy_box_winner_when_there_is_a_buy_box(emu: EmulatorClient) -> None:
    with_box = without_box = 0
    for payload in batch_payloads(emu, _sample_asins(120, seed=19)):
        winners = [o for o in payload["Offers"] if o["IsBuyBoxWinner"]]
        buy_box = _new_buy_box(payload["Summary"])
        if buy_box is None:
            assert winners == []
            without_box += 1
            continue
        with_box += 1
        assert len(winners) == 1
        winner = winners[0]
        assert winner["IsFeaturedMerchant"]
        assert (buy_box["ListingPrice"], buy_box["Shipping"]) == (winner["ListingPrice"], winner["Shipping"])
        assert landed(buy_box) == landed(winner) == buy_box["LandedPrice"]["Amount"]
    assert with_box > 80 and without_box > 5


def test_used_offers_have_their_own_buy_box(emu: EmulatorClient) -> None:
    asins = _sample_asins(120, seed=23)
    used_boxes = 0
    for payload in batch_payloads(emu, asins, condition="Used"):
        assert payload["ItemCondition"] == "Used"
        winners = [o for o in payload["Offers"] if o["IsBuyBoxWinner"]]
        used_box = next((p for p in payload["Summary"].get("BuyBoxPrices", []) if p["condition"] == "used"), None)
        assert len(winners) == (0 if used_box is None else 1)
        used_boxes += used_box is not None
        assert all(o["SubCondition"] in ("mint", "very_good", "good", "acceptable") for o in payload["Offers"])
    assert 10 < used_boxes < 60


def test_competitive_pricing_matches_the_offers_of_the_same_asin(emu: EmulatorClient) -> None:
    asins = _sample_asins(100, seed=29)
    offers_by_asin = {p["ASIN"]: p for p in batch_payloads(emu, asins)}
    used_by_asin = {p["ASIN"]: p for p in batch_payloads(emu, asins, condition="Used")}
    for start in range(0, len(asins), 20):
        for entry in competitive(emu, asins[start : start + 20]).json()["payload"]:
            asin, pricing = entry["ASIN"], entry["Product"]["CompetitivePricing"]
            summary = offers_by_asin[asin]["Summary"]
            prices = {p["CompetitivePriceId"]: p for p in pricing["CompetitivePrices"]}
            new_box = _new_buy_box(summary)
            if new_box is None:
                assert "1" not in prices
            else:
                assert prices["1"]["Price"] == {
                    k: new_box[k] for k in ("LandedPrice", "ListingPrice", "Shipping", "Points") if k in new_box
                }
                assert prices["1"]["condition"] == "New"
            used_winner = [o for o in used_by_asin[asin]["Offers"] if o["IsBuyBoxWinner"]]
            assert ("2" in prices) == bool(used_winner)
            if used_winner:
                assert prices["2"]["Price"]["ListingPrice"] == used_winner[0]["ListingPrice"]
            counts = {c["condition"]: c["Count"] for c in pricing["NumberOfOfferListings"]}
            by_condition = Counter()
            for c in summary.get("NumberOfOffers", []):
                by_condition[c["condition"].capitalize()] += c["OfferCount"]
            assert counts == dict(by_condition)
            if summary["TotalOfferCount"]:  # a listing without offers has a bare Summary, as in the model's example
                assert entry["Product"].get("SalesRankings", []) == summary.get("SalesRankings", [])


def test_sales_rankings_are_the_catalogs(emu: EmulatorClient) -> None:
    ranked = 0
    for entry in competitive(emu, _sample_asins(20, seed=31)).json()["payload"]:
        ranks = catalog.build_item(entry["ASIN"], US, ["salesRanks"])["salesRanks"][0]
        expected = [{"ProductCategoryId": r["websiteDisplayGroup"], "Rank": r["rank"]} for r in ranks.get("displayGroupRanks", [])]
        expected += [{"ProductCategoryId": r["classificationId"], "Rank": r["rank"]} for r in ranks.get("classificationRanks", [])]
        assert entry["Product"].get("SalesRankings", []) == expected
        ranked += bool(expected)
    assert ranked > 15


def test_other_conditions_answer_fewer_offers_or_none(emu: EmulatorClient) -> None:
    asins = _sample_asins(100, seed=37)
    listed = {condition: sum(len(p["Offers"]) for p in batch_payloads(emu, asins, condition=condition)) for condition in offers.CONDITIONS}
    assert listed["New"] > 3 * listed["Used"] > 0
    assert listed["Used"] > listed["Collectible"] and listed["Used"] > listed["Refurbished"]
    assert listed["Club"] == 0


# --------------------------------------------------------------------------- realistic shares


def test_offer_shares_over_hundreds_of_listings_are_realistic(emu: EmulatorClient) -> None:
    payloads = batch_payloads(emu, _sample_asins(400, seed=41))
    count = len(payloads)
    no_offers = [p for p in payloads if p["Summary"]["TotalOfferCount"] == 0]
    assert all(p["status"] == "NoBuyableOffers" and p["Offers"] == [] and p["Summary"] == {"TotalOfferCount": 0} for p in no_offers)
    assert 0.06 <= len(no_offers) / count <= 0.15  # ~10%
    with_amazon = [p for p in payloads if any(o["SellerId"] == offers.AMAZON_SELLER_ID for o in p["Offers"])]
    assert 0.19 <= len(with_amazon) / count <= 0.31  # ~25%
    amazon_boxes = sum(any(o["IsBuyBoxWinner"] and o["SellerId"] == offers.AMAZON_SELLER_ID for o in p["Offers"]) for p in with_amazon)
    assert 0.4 <= amazon_boxes / len(with_amazon) <= 0.8  # Amazon holds the Buy Box on ~60% of its listings
    totals = [sum(c["OfferCount"] for c in p["Summary"].get("NumberOfOffers", []) if c["condition"] == "new") for p in payloads]
    assert max(totals) <= 25 and sorted(totals)[count // 2] <= 8  # most listings have a handful of offers
    fba = [o["IsFulfilledByAmazon"] for p in payloads for o in p["Offers"] if o["SellerId"] != offers.AMAZON_SELLER_ID]
    assert 0.35 <= sum(fba) / len(fba) <= 0.7  # FBA and FBM both common
    sellers = Counter(o["SellerId"] for p in payloads for o in p["Offers"])
    assert max(sellers.values()) > 1  # the same sellers turn up on several listings


# --------------------------------------------------------------------------- unknown items


def test_unknown_asins_answer_as_sp_api_does(emu: EmulatorClient, pricing_model: dict[str, Any]) -> None:
    body = competitive(emu, ["B0KNOWN001", "NF00000001"]).json()
    assert schema_problems(pricing_model, "GetPricingResponse", body, strict=False) == []
    known, unknown = body["payload"]
    assert known["status"] == "Success"
    assert unknown == {
        "status": "ClientError",
        "ASIN": "NF00000001",
        "errors": [{"code": "InvalidInput", "message": f"NF00000001 is an invalid ASIN for marketplace {US}", "details": ""}],
    }
    response = item_offers(emu, "NF00000001")
    assert response.status_code == 400
    assert response.json() == {"errors": [unknown["errors"][0]]}
    entries = batch(emu, {"requests": [batch_request("NF00000001"), batch_request("B0KNOWN001")]}).json()["responses"]
    assert entries[0]["status"] == {"statusCode": 400, "reasonPhrase": "Bad Request"}
    assert entries[0]["body"] == {"errors": [unknown["errors"][0]]}
    assert entries[1]["status"]["statusCode"] == 200


def test_the_catalogs_us_only_sandbox_item_is_unknown_elsewhere(emu: EmulatorClient) -> None:
    assert item_offers(emu, catalog.SANDBOX_ASIN).status_code == 200
    response = item_offers(emu, catalog.SANDBOX_ASIN, MarketplaceId=DE)
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"] == f"{catalog.SANDBOX_ASIN} is an invalid ASIN for marketplace {DE}"
    entry = competitive(emu, [catalog.SANDBOX_ASIN], MarketplaceId=DE).json()["payload"][0]
    assert entry["status"] == "ClientError"


def test_skus_are_unknown_as_the_emulator_has_no_listings(emu: EmulatorClient) -> None:
    response = competitive(emu, None, ItemType="Sku", Skus="MY-SKU-1,MY-SKU-2")
    assert response.status_code == 200
    assert [(e["status"], e["SellerSKU"]) for e in response.json()["payload"]] == [("ClientError", "MY-SKU-1"), ("ClientError", "MY-SKU-2")]
    assert response.json()["payload"][0]["errors"][0]["code"] == "InvalidInput"


# --------------------------------------------------------------------------- validation


def _error_message(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    errors = response.json()["errors"]
    assert [e["code"] for e in errors] == ["InvalidInput"]
    return errors[0]["message"]


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({"MarketplaceId": ""}, "'MarketplaceId'"),
        ({"MarketplaceId": "TEST_CASE_400"}, "'MarketplaceId'"),
        ({"ItemType": ""}, "'ItemType'"),
        ({"ItemType": "ASIN"}, "'ItemType'"),
        ({"CustomerType": "Retail"}, "'CustomerType'"),
        ({"Asins": ",".join(_sample_asins(21))}, "'Asins'"),
        ({"Asins": "B0SHORT"}, "'Asins'"),
        ({"Asins": ""}, "'Asins'"),
        ({"ItemType": "Sku"}, "'Skus'"),
        ({"ItemType": "Sku", "Skus": ",".join(f"SKU-{i}" for i in range(21))}, "'Skus'"),
    ],
)
def test_competitive_pricing_validation(emu: EmulatorClient, params: dict[str, str], names: str) -> None:
    params = {"Asins": "B0VALID001", **params}
    assert names in _error_message(competitive(emu, None, **params))


@pytest.mark.parametrize(
    ("asin", "params", "name"),
    [
        ("B0SHORT", {}, "'Asin'"),
        ("TEST_CASE_400", {}, "'Asin'"),  # the model's sandbox 400 request
        ("B0VALID001", {"MarketplaceId": ""}, "'MarketplaceId'"),
        ("B0VALID001", {"MarketplaceId": "XX"}, "'MarketplaceId'"),
        ("B0VALID001", {"ItemCondition": ""}, "'ItemCondition'"),
        ("B0VALID001", {"ItemCondition": "new"}, "'ItemCondition'"),
        ("B0VALID001", {"CustomerType": "consumer"}, "'CustomerType'"),
    ],
)
def test_item_offers_validation(emu: EmulatorClient, asin: str, params: dict[str, str], name: str) -> None:
    assert name in _error_message(item_offers(emu, asin, **params))


@pytest.mark.parametrize(
    ("body", "name"),
    [
        ("not json", "'requests'"),
        ([batch_request("B0VALID001")], "'requests'"),
        ({}, "'requests'"),
        ({"requests": []}, "'requests'"),
        ({"requests": [batch_request(a) for a in _sample_asins(21)]}, "'requests'"),
        ({"requests": ["B0VALID001"]}, "'requests[0]'"),
        ({"requests": [{**batch_request("B0VALID001"), "uri": "/products/pricing/v0/price"}]}, "'requests[0].uri'"),
        ({"requests": [batch_request("B0VALID001"), {**batch_request("B0VALID002"), "method": "POST"}]}, "'requests[1].method'"),
        ({"requests": [{k: v for k, v in batch_request("B0VALID001").items() if k != "MarketplaceId"}]}, "'requests[0].MarketplaceId'"),
        ({"requests": [batch_request("B0VALID001", marketplace_id="XX")]}, "'requests[0].MarketplaceId'"),
        ({"requests": [{**batch_request("B0VALID001"), "MarketplaceId": [US]}]}, "'requests[0].MarketplaceId'"),
        ({"requests": [{**batch_request("B0VALID001"), "ItemCondition": ["New"]}]}, "'requests[0].ItemCondition'"),
        ({"requests": [batch_request("B0VALID001", condition="Mint")]}, "'requests[0].ItemCondition'"),
        ({"requests": [batch_request("B0VALID001", customer_type="B2B")]}, "'requests[0].CustomerType'"),
        ({"requests": [{**batch_request("B0VALID001"), "headers": ["x"]}]}, "'requests[0].headers'"),
    ],
)
def test_batch_validation(emu: EmulatorClient, body: Any, name: str) -> None:
    response = emu.http.post(BATCH_PATH, content=body if isinstance(body, str) else json.dumps(body), headers=_headers(emu))
    assert name in _error_message(response)


def test_a_batch_naming_an_asin_twice_is_refused(emu: EmulatorClient) -> None:
    for second in (batch_request("B0TWICE001", condition="Used"), batch_request("b0twice001", marketplace_id=DE)):
        response = batch(emu, {"requests": [batch_request("B0TWICE001"), batch_request("B0ONCE0001"), second]})
        assert _error_message(response) == "Duplicate requests submitted.  Cannot run batch request."


def test_a_malformed_asin_inside_a_batch_fails_on_its_own(emu: EmulatorClient) -> None:
    entries = batch(emu, {"requests": [batch_request("B0SHORT"), batch_request("B0VALID001")]}).json()["responses"]
    assert entries[0]["status"]["statusCode"] == 400 and entries[0]["body"]["errors"][0]["code"] == "InvalidInput"
    assert entries[1]["status"]["statusCode"] == 200


def test_nulls_sent_for_optional_fields_count_as_absent(emu: EmulatorClient) -> None:
    # python-amazon-sp-api's ItemOffersRequest sends CustomerType and headers as null when not set.
    sent = {**batch_request("B0NULLS001", customer_type=None), "CustomerType": None, "headers": None}
    entry = batch(emu, {"requests": [sent]}).json()["responses"][0]
    assert entry["status"]["statusCode"] == 200
    assert entry["request"] == {"MarketplaceId": US, "Asin": "B0NULLS001", "ItemCondition": "New"}


def test_calls_without_a_valid_token_are_refused(emu: EmulatorClient) -> None:
    response = emu.http.get(COMPETITIVE_PATH, params={"MarketplaceId": US, "ItemType": "Asin", "Asins": "B0VALID001"})
    assert response.status_code == 403
    assert response.json()["errors"][0]["code"] == "Unauthorized"


# --------------------------------------------------------------------------- usage plans


def test_each_operation_follows_its_models_usage_plan(make_client: Callable[..., EmulatorClient]) -> None:
    clock = FakeClock()
    emu = make_client(clock=clock)  # the models' plans
    assert emu.token
    calls = {
        GET_COMPETITIVE_PRICING: lambda: competitive(emu, ["B0PLAN0001"]),
        GET_ITEM_OFFERS: lambda: item_offers(emu, "B0PLAN0001"),
        GET_ITEM_OFFERS_BATCH: lambda: batch(emu, {"requests": [batch_request("B0PLAN0001")]}),
    }
    for operation, rate, refill in (
        (GET_COMPETITIVE_PRICING, "0.5", 2.0),
        (GET_ITEM_OFFERS, "0.5", 2.0),
        (GET_ITEM_OFFERS_BATCH, "0.1", 10.0),
    ):
        call = calls[operation]
        first, second = call(), call()  # burst 1: the second call in the same instant is throttled
        assert (first.status_code, second.status_code) == (200, 429), operation
        assert second.json() == QUOTA_EXCEEDED
        assert first.headers["x-amzn-RateLimit-Limit"] == second.headers["x-amzn-RateLimit-Limit"] == rate
        clock.advance(refill * 0.9)
        assert call().status_code == 429, operation
        clock.advance(refill * 0.1)
        assert call().status_code == 200, operation
    by_operation = emu.calls()["by_operation"]
    assert {op: by_operation[op] for op in calls} == {op: {"200": 2, "429": 2} for op in calls}


def test_the_plans_option_overrides_an_operations_plan(make_client: Callable[..., EmulatorClient]) -> None:
    clock = FakeClock()
    emu = make_client(clock=clock, plans={GET_ITEM_OFFERS: [5, 3]})
    statuses = [item_offers(emu, "B0PLAN0001").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert item_offers(emu, "B0PLAN0001").headers["x-amzn-RateLimit-Limit"] == "5.0"
    # The other operations keep their models' plans.
    assert [competitive(emu, ["B0PLAN0001"]).status_code for _ in range(2)] == [200, 429]
    emu.configure(plans={GET_COMPETITIVE_PRICING: [2, 2]})  # a plan change refills that operation's bucket
    assert [competitive(emu, ["B0PLAN0001"]).status_code for _ in range(3)] == [200, 200, 429]
    assert competitive(emu, ["B0PLAN0001"]).headers["x-amzn-RateLimit-Limit"] == "2.0"


# --------------------------------------------------------------------------- faults


def test_item_faults_answer_5xx_inside_the_batchs_200(make_client: Callable[..., EmulatorClient]) -> None:
    emu = make_client(plans=FAST, item_fault_rate=1.0)
    response = batch(emu, {"requests": [batch_request(asin) for asin in _sample_asins(3)]})
    assert response.status_code == 200
    for entry in response.json()["responses"]:
        assert entry["status"] == {"statusCode": 500, "reasonPhrase": "Internal Server Error"}
        assert entry["body"] == {
            "errors": [{"code": "InternalFailure", "message": "We encountered an internal error. Please try again.", "details": ""}]
        }
        assert entry["request"]["Asin"] and entry["headers"]["x-amzn-RequestId"]
    # The single-item operations have no items to fail: they answer as usual.
    assert item_offers(emu, "B0FAULT001").status_code == 200


def test_item_faults_are_a_reproducible_share(make_client: Callable[..., EmulatorClient]) -> None:
    emu = make_client(plans=FAST, item_fault_rate=0.3, seed=5)
    body = {"requests": [batch_request(asin) for asin in _sample_asins(20)]}

    def statuses() -> list[int]:
        return [entry["status"]["statusCode"] for entry in batch(emu, body).json()["responses"]]

    first = statuses()
    assert set(first) == {200, 500}
    emu.reset()
    assert statuses() == first


# --------------------------------------------------------------------------- call log


def test_the_call_log_records_each_operation_and_its_asins(emu: EmulatorClient) -> None:
    emu.reset()
    competitive(emu, ["B0LOG00001", "B0LOG00002"])
    item_offers(emu, "B0LOG00003", MarketplaceId=DE)
    batch(emu, {"requests": [batch_request("B0LOG00004"), batch_request("B0LOG00005", marketplace_id=DE)]})
    batch(emu, {"requests": [batch_request("B0LOG00006"), batch_request("B0LOG00006")]})  # refused: still logged
    competitive(emu, None, ItemType="Sku", Skus="SKU-1")
    log = emu.calls()
    calls = [(c["operation"], c["status"], c["asins"], c["marketplace_id"]) for c in log["calls"] if c["operation"] != "lwaToken"]
    assert calls == [
        (GET_COMPETITIVE_PRICING, 200, ["B0LOG00001", "B0LOG00002"], US),
        (GET_ITEM_OFFERS, 200, ["B0LOG00003"], DE),
        (GET_ITEM_OFFERS_BATCH, 200, ["B0LOG00004", "B0LOG00005"], f"{US},{DE}"),
        (GET_ITEM_OFFERS_BATCH, 400, ["B0LOG00006", "B0LOG00006"], US),
        (GET_COMPETITIVE_PRICING, 200, ["SKU-1"], US),
    ]
    assert [c["identifiers_type"] for c in log["calls"] if c["operation"] == GET_COMPETITIVE_PRICING] == [None, "Sku"]
    assert log["by_operation"][GET_ITEM_OFFERS_BATCH] == {"200": 1, "400": 1}


# --------------------------------------------------------------------------- the model's sandbox examples


def _static(model: dict[str, Any], path: str, method: str) -> list[dict[str, Any]]:
    return model["paths"][path][method]["responses"]["200"]["x-amzn-api-sandbox"]["static"]


def test_the_vendored_sandbox_examples_are_the_models(pricing_model: dict[str, Any]) -> None:
    vendored = json.loads((REPO_ROOT / "emulator/fixtures/pricing_sandbox.json").read_text(encoding="utf-8"))
    assert vendored == {
        GET_COMPETITIVE_PRICING: _static(pricing_model, COMPETITIVE_PATH, "get"),
        GET_ITEM_OFFERS: _static(pricing_model, "/products/pricing/v0/items/{Asin}/offers", "get"),
        GET_ITEM_OFFERS_BATCH: _static(pricing_model, BATCH_PATH, "post"),
    }


def test_competitive_pricing_sandbox_examples(emu: EmulatorClient, pricing_model: dict[str, Any]) -> None:
    consumer, skus, business = _static(pricing_model, COMPETITIVE_PATH, "get")
    asins = [entry["ASIN"] for entry in consumer["response"]["payload"]]
    assert competitive(emu, asins).json() == consumer["response"]
    assert competitive(emu, asins, CustomerType="Business").json() == business["response"]
    sent = ",".join(entry["SellerSKU"] for entry in skus["response"]["payload"])
    assert competitive(emu, None, ItemType="Sku", Skus=sent).json() == skus["response"]
    # Outside the US the same ASINs are ordinary synthetic items.
    assert (
        competitive(emu, asins, MarketplaceId=DE).json()["payload"][0]["Product"]["Identifiers"]["MarketplaceASIN"]["MarketplaceId"] == DE
    )


def test_item_offers_sandbox_examples(emu: EmulatorClient, pricing_model: dict[str, Any]) -> None:
    consumer, business = _static(pricing_model, "/products/pricing/v0/items/{Asin}/offers", "get")
    asin = consumer["request"]["parameters"]["Asin"]["value"]
    assert item_offers(emu, asin).json() == consumer["response"]
    assert item_offers(emu, asin, CustomerType="Business").json() == business["response"]
    assert item_offers(emu, asin, MarketplaceId=DE).json()["payload"]["Summary"]["ListPrice"]["CurrencyCode"] == "EUR"


def test_batch_sandbox_example(emu: EmulatorClient, pricing_model: dict[str, Any]) -> None:
    (example,) = _static(pricing_model, BATCH_PATH, "post")
    assert batch(emu, example["request"]["parameters"]["body"]["value"]).json() == example["response"]
    # getItemOffers answers the example's items the same way.
    first = example["response"]["responses"][0]
    assert item_offers(emu, first["request"]["Asin"]).json() == first["body"]
    # And a batch can ask for the single-item example's ASIN.
    (single, _) = _static(pricing_model, "/products/pricing/v0/items/{Asin}/offers", "get")
    entry = batch(emu, {"requests": [batch_request("B00V5DG6IQ")]}).json()["responses"][0]
    assert entry["body"] == single["response"]


# --------------------------------------------------------------------------- python-amazon-sp-api


def test_python_amazon_sp_api_calls_each_operation(make_server: Callable[..., EmulatorServer]) -> None:
    """The library's own Products (v0) client against the emulator: its parameter names and body shapes work."""
    sp_api = pytest.importorskip("sp_api.api")
    definitions = pytest.importorskip("sp_api.api.products.products_definitions")
    # A refresh token of its own: the library caches access tokens per refresh token, process-wide.
    refresh_token = f"Atzr|sp-api-pricing-{uuid.uuid4()}"
    server = make_server(plans=FAST, refresh_token=refresh_token)
    client = library_client(sp_api.Products, server, refresh_token, version=sp_api.ProductsVersion.V0)

    pricing = client.get_competitive_pricing_for_asins(["B0LIB00001", "NF00000001"])
    assert [(e["ASIN"], e["status"]) for e in pricing.payload] == [("B0LIB00001", "Success"), ("NF00000001", "ClientError")]
    assert pricing.headers["x-amzn-RateLimit-Limit"] == "1000.0"

    offered = client.get_item_offers("B0LIB00001", "New")
    assert offered.payload == item_offers_payload("B0LIB00001", US, "New", "Consumer")
    business = client.get_item_offers("B0LIB00001", "New", customer_type="Business", MarketplaceId=DE)
    assert business.payload["Summary"]["ListPrice"]["CurrencyCode"] == "EUR"

    batched = client.get_item_offers_batch(
        [
            {"uri": "/products/pricing/v0/items/B0LIB00001/offers", "method": "GET", "MarketplaceId": US, "ItemCondition": "New"},
            {"uri": "/products/pricing/v0/items/NF00000001/offers", "method": "GET", "MarketplaceId": US, "ItemCondition": "New"},
        ]
    )
    entries = batched.payload["responses"]
    assert [e["status"]["statusCode"] for e in entries] == [200, 400]
    assert entries[0]["body"]["payload"] == offered.payload
    typed = client.get_item_offers_batch(
        definitions.GetItemOffersBatchRequest(
            [
                definitions.ItemOffersRequest(
                    uri="/products/pricing/v0/items/B0LIB00001/offers", method="GET", MarketplaceId=US, ItemCondition="Used"
                )
            ]
        )
    )
    assert typed.payload["responses"][0]["status"]["statusCode"] == 200

    exceptions = pytest.importorskip("sp_api.base.exceptions")
    with pytest.raises(exceptions.SellingApiBadRequestException):
        client.get_item_offers("NF00000001", "New")
    by_operation = server.calls()["by_operation"]
    assert by_operation[GET_COMPETITIVE_PRICING] == {"200": 1}
    assert by_operation[GET_ITEM_OFFERS] == {"200": 2, "400": 1}
    assert by_operation[GET_ITEM_OFFERS_BATCH] == {"200": 2}


def item_offers_payload(asin: str, marketplace_id: str, condition: str, customer_type: str) -> dict[str, Any]:
    """What getItemOffers answers for a synthetic item, from the data module directly."""
    book = offers.offer_book(asin, marketplace_id)
    assert book is not None
    return offers.offers_result(book, condition, customer_type)


def test_amazon_sells_under_its_own_seller_id_in_each_marketplace(emu: EmulatorClient) -> None:
    """Amazon's offers in Germany carry Amazon.de's seller id, so a client can tell Amazon from an FBA seller there."""
    sellers = set()
    for asin in [f"B0AMZD{i:04d}" for i in range(40)]:
        payload = item_offers(emu, asin, MarketplaceId=DE).json()["payload"]
        sellers |= {o["SellerId"] for o in payload.get("Offers", []) if o["SellerId"] in ("A3JWKAKR8XB7XF", "ATVPDKIKX0DER")}
    assert sellers == {"A3JWKAKR8XB7XF"}
