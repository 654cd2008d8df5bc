"""services/pricing_item.py: the model's sandbox examples (productPricingV0.json) and edge cases mapped to the pricing and offers facts."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from services.pricing_item import landed_price, offers_facts, pricing_facts
from tests.helpers.sp_api_models import load_model
from utils.marketplaces import AMAZON_SELLER_IDS, amazon_seller_id

AMAZON = "ATVPDKIKX0DER"


def sandbox(operation_id: str) -> list[dict[str, Any]]:
    """The model's `x-amzn-api-sandbox` static examples of one operation (its 200 response)."""
    for operations in load_model("productPricingV0.json")["paths"].values():
        for operation in operations.values():
            if isinstance(operation, dict) and operation.get("operationId") == operation_id:
                return operation["responses"]["200"]["x-amzn-api-sandbox"]["static"]
    raise AssertionError(f"no operation {operation_id}")


def money(amount: float) -> dict[str, Any]:
    return {"CurrencyCode": "USD", "Amount": amount}


def offer(seller: str, price: float, shipping: float = 0.0, *, fba: bool = True, winner: bool = False, **extra: Any) -> dict[str, Any]:
    return {
        "SellerId": seller,
        "ListingPrice": money(price),
        "Shipping": money(shipping),
        "IsFulfilledByAmazon": fba,
        "IsBuyBoxWinner": winner,
        "SubCondition": "new",
        "ShippingTime": {"maximumHours": 0, "minimumHours": 0},
        **extra,
    }


# -- getCompetitivePricing -------------------------------------------------------------------------


def test_the_competitive_pricing_sandbox_examples():
    consumer, _skus, business = sandbox("getCompetitivePricing")
    first, second = consumer["response"]["payload"]
    # The example's LandedPrice stands as given (10), though its parts (130 + 120 - 10) say otherwise.
    assert pricing_facts(first) == {
        "buy_box_price": 10,
        "buy_box_listing_price": 130,
        "buy_box_shipping": 120,
        "new_offer_count": 20,
        "used_offer_count": 0,
        "currency": "USD",
    }
    assert pricing_facts(second)["new_offer_count"] == 1
    # Business: the B2C Buy Box (CompetitivePriceId 1), not the quantity-discount tiers beside it.
    assert pricing_facts(business["response"]["payload"][0]) == {
        "buy_box_price": 120,
        "buy_box_listing_price": 130,
        "buy_box_shipping": 10,
        "new_offer_count": 3,
        "used_offer_count": 0,
        "currency": "USD",
    }


def test_the_new_buy_box_is_price_id_1_and_never_the_used_one():
    used = {"CompetitivePriceId": "2", "Price": {"LandedPrice": money(5), "ListingPrice": money(5)}, "condition": "Used"}
    new = {"CompetitivePriceId": "1", "Price": {"ListingPrice": money(19.99), "Shipping": money(4.99)}, "condition": "New"}
    listings = [{"condition": "New", "Count": 7}, {"condition": "Used", "Count": 2}]
    entry = {
        "status": "Success",
        "ASIN": "B0TEST0001",
        "Product": {"CompetitivePricing": {"CompetitivePrices": [used, new], "NumberOfOfferListings": listings}},
    }
    facts = pricing_facts(entry)
    # No LandedPrice: ListingPrice + Shipping, exactly.
    assert (facts["buy_box_price"], facts["buy_box_listing_price"], facts["buy_box_shipping"]) == (24.98, 19.99, 4.99)
    assert (facts["new_offer_count"], facts["used_offer_count"]) == (7, 2)
    entry["Product"]["CompetitivePricing"]["CompetitivePrices"] = [used]
    assert pricing_facts(entry) | {"new_offer_count": 7} == {
        "buy_box_price": None,
        "buy_box_listing_price": None,
        "buy_box_shipping": None,
        "new_offer_count": 7,
        "used_offer_count": 2,
        "currency": "USD",
    }


def test_an_item_without_offers_has_no_buy_box_and_no_counts():
    entry = {
        "status": "Success",
        "ASIN": "B0TEST0001",
        "Product": {"CompetitivePricing": {"CompetitivePrices": [], "NumberOfOfferListings": []}},
    }
    assert pricing_facts(entry) == {
        "buy_box_price": None,
        "buy_box_listing_price": None,
        "buy_box_shipping": None,
        "new_offer_count": 0,
        "used_offer_count": 0,
        "currency": None,
    }


def test_points_lower_the_landed_price_where_sp_api_gives_none():
    points = {"PointsNumber": 30, "PointsMonetaryValue": {"CurrencyCode": "JPY", "Amount": 30}}
    assert (
        landed_price(
            {"ListingPrice": {"CurrencyCode": "JPY", "Amount": 3000}, "Shipping": {"CurrencyCode": "JPY", "Amount": 0}, "Points": points}
        )
        == 2970
    )
    assert landed_price({"Shipping": money(1)}) is None


# -- getItemOffers ---------------------------------------------------------------------------------


def test_the_item_offers_sandbox_example():
    consumer, business = sandbox("getItemOffers")
    assert offers_facts(consumer["response"]["payload"], AMAZON) == {
        "buy_box_price": None,
        "buy_box_seller": None,
        "lowest_fba_price": None,
        "lowest_fbm_price": 10.0,
        # The example's NumberOfOffers carries no OfferCount: the offers listed are counted.
        "offer_count": 1,
        "fba_offer_count": 0,
        "fbm_offer_count": 1,
        "amazon_on_listing": False,
        "currency": "USD",
        "offers": [
            {
                "seller_id": "AXXXXXXXXXXXXX",
                "landed_price": 10.0,
                "fba": False,
                "prime": None,
                "buy_box_winner": False,
                "feedback_count": 0,
                "feedback_percent": 0.0,
            }
        ],
    }
    # Business: BuyBoxPrices names its seller, whose offer is the merchant's own.
    facts = offers_facts(business["response"]["payload"], AMAZON)
    assert (facts["buy_box_price"], facts["buy_box_seller"]) == (9.0, "FBM")


def test_the_item_offers_batch_sandbox_examples():
    (example,) = sandbox("getItemOffersBatch")
    facts = {r["request"]["Asin"]: offers_facts(r["body"]["payload"], AMAZON) for r in example["response"]["responses"]}
    fba = facts["B001Q3KU9Q"]
    assert {k: v for k, v in fba.items() if k != "offers"} == {
        "buy_box_price": 24.99,
        "buy_box_seller": "FBA",
        "lowest_fba_price": 24.99,
        "lowest_fbm_price": None,  # the Merchant offer is collectible, not New
        "offer_count": 1,
        "fba_offer_count": 1,
        "fbm_offer_count": 0,
        "amazon_on_listing": False,
        "currency": "USD",
    }
    assert fba["offers"] == [
        {
            "seller_id": "A1OHOT6VONX3KA",
            "landed_price": 24.99,
            "fba": True,
            "prime": True,
            "buy_box_winner": True,
            "feedback_count": None,
            "feedback_percent": None,
        }
    ]
    assert (facts["B000P6Q7MY"]["buy_box_price"], facts["B000P6Q7MY"]["buy_box_seller"]) == (21, "FBM")
    mixed = facts["B001PYUTII"]
    assert (mixed["lowest_fba_price"], mixed["lowest_fbm_price"], mixed["offer_count"], mixed["fba_offer_count"]) == (17.99, 0.5, 15, 1)
    assert len(mixed["offers"]) == 15
    assert facts["B00KFRNZY6"]["offers"] == [] and facts["B00KFRNZY6"]["offer_count"] == 0


def test_amazon_holding_the_buy_box():
    payload = {
        "Summary": {
            "TotalOfferCount": 2,
            "BuyBoxPrices": [{"condition": "New", "LandedPrice": money(20.0), "ListingPrice": money(20.0), "Shipping": money(0)}],
            "LowestPrices": [
                {"condition": "new", "fulfillmentChannel": "Amazon", "LandedPrice": money(20.0), "ListingPrice": money(20.0)},
                {"condition": "new", "fulfillmentChannel": "Merchant", "LandedPrice": money(21.49), "ListingPrice": money(16.5)},
            ],
            "NumberOfOffers": [
                {"condition": "new", "fulfillmentChannel": "Amazon", "OfferCount": 1},
                {"condition": "new", "fulfillmentChannel": "Merchant", "OfferCount": 1},
            ],
        },
        "Offers": [offer(AMAZON, 20.0, winner=True), offer("A2SELLER", 16.5, 4.99, fba=False)],
    }
    facts = offers_facts(payload, AMAZON)
    assert (facts["buy_box_seller"], facts["amazon_on_listing"], facts["buy_box_price"]) == ("AMAZON", True, 20.0)
    assert (facts["lowest_fba_price"], facts["lowest_fbm_price"]) == (20.0, 21.49)
    assert [o["landed_price"] for o in facts["offers"]] == [20.0, 21.49]
    # The same offers in a marketplace whose Amazon is another seller: an FBA winner, Amazon absent.
    other = offers_facts(payload, AMAZON_SELLER_IDS["DE"])
    assert (other["buy_box_seller"], other["amazon_on_listing"]) == ("FBA", False)


def test_no_buy_box_with_offers_listed():
    payload = {
        "Summary": {"TotalOfferCount": 1, "NumberOfOffers": [{"condition": "new", "fulfillmentChannel": "Merchant", "OfferCount": 1}]},
        "Offers": [offer("A2SELLER", 10.0, 2.5, fba=False)],
    }
    facts = offers_facts(payload, AMAZON)
    assert (facts["buy_box_price"], facts["buy_box_seller"], facts["amazon_on_listing"]) == (None, None, False)
    # Without LowestPrices, the offers listed give the lowest prices.
    assert (facts["lowest_fba_price"], facts["lowest_fbm_price"], facts["offer_count"]) == (None, 12.5, 1)


def test_no_offers_at_all():
    facts = offers_facts({"status": "NoBuyableOffers", "Summary": {"TotalOfferCount": 0}, "Offers": []}, AMAZON)
    assert facts == {
        "buy_box_price": None,
        "buy_box_seller": None,
        "lowest_fba_price": None,
        "lowest_fbm_price": None,
        "offer_count": 0,
        "fba_offer_count": 0,
        "fbm_offer_count": 0,
        "amazon_on_listing": False,
        "currency": None,
        "offers": [],
    }


def test_at_most_20_offers_are_listed():
    payload = {"Summary": {"TotalOfferCount": 25}, "Offers": [offer(f"A{i:013d}", 10.0 + i) for i in range(25)]}
    assert len(offers_facts(copy.deepcopy(payload), AMAZON)["offers"]) == 20


@pytest.mark.parametrize(
    ("code", "seller"), [("US", "ATVPDKIKX0DER"), ("DE", "A3JWKAKR8XB7XF"), ("JP", "AN1VRQENFRJN5"), ("SG", "ATVPDKIKX0DER")]
)
def test_amazons_seller_id_per_marketplace(code, seller):
    assert amazon_seller_id(code) == seller
