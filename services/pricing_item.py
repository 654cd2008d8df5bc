"""Turn Product Pricing v0 answers (getCompetitivePricing, getItemOffers) into the flat pricing and offers facts the API answers with.

Pure: no I/O. Amounts stay the numbers SP-API sent (an int stays an int), in the currency it names.

Landed price: SP-API's own `LandedPrice` wherever it gives one (the model defines it as ListingPrice +
Shipping - Points); where it gives none (every OfferDetail: the model has no LandedPrice there, and
PriceType's is optional) it is computed the same way, ListingPrice + Shipping - Points' monetary value,
a part SP-API leaves out counting zero.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

Amount = int | float

# GetOffersResult.Offers: "the same length as the TotalOfferCount in the Summary or 20, whichever is less" (the model).
MAX_OFFERS = 20
# CompetitivePriceId "1" is the New Buy Box price, "2" the Used one (the model's CompetitivePriceType).
NEW_BUY_BOX_ID = "1"
USED_BUY_BOX_ID = "2"
# FulfillmentChannelType: Amazon (FBA, Amazon's own offers included) or Merchant.
FBA_CHANNEL = "Amazon"
FBM_CHANNEL = "Merchant"


def _amount(money: Any) -> Amount | None:
    amount = money.get("Amount") if isinstance(money, dict) else None
    return amount if isinstance(amount, int | float) and not isinstance(amount, bool) else None


def _currency(money: Any) -> str | None:
    code = money.get("CurrencyCode") if isinstance(money, dict) else None
    return code if isinstance(code, str) and code else None


def landed_price(price: dict[str, Any]) -> Amount | None:
    """LandedPrice as given, else ListingPrice + Shipping - Points (None without a ListingPrice)."""
    given = _amount(price.get("LandedPrice"))
    if given is not None:
        return given
    listing = _amount(price.get("ListingPrice"))
    if listing is None:
        return None
    points = price.get("Points")
    parts = [
        listing,
        _amount(price.get("Shipping")) or 0,
        -(_amount(points.get("PointsMonetaryValue") if isinstance(points, dict) else None) or 0),
    ]
    # Decimal, so that 19.99 + 4.99 is 24.98 and not 24.979999999999997.
    total = sum((Decimal(str(part)) for part in parts), Decimal(0))
    return int(total) if all(isinstance(part, int) for part in parts) else float(total)


def _first_currency(*groups: list[Any]) -> str | None:
    """The first CurrencyCode among the money of the price objects of `groups`."""
    for group in groups:
        for price in group:
            for field in ("LandedPrice", "ListingPrice", "Shipping"):
                code = _currency(price.get(field)) if isinstance(price, dict) else None
                if code:
                    return code
    return None


def _is(condition: Any, wanted: str) -> bool:
    # SP-API spells conditions "New" in some places and "new" in others (the model's examples).
    return isinstance(condition, str) and condition.lower() == wanted.lower()


def dicts(value: Any) -> list[dict[str, Any]]:
    """The objects of a JSON list (none if it is not a list): SP-API lists are read whatever else they hold."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _offer_count(listings: Any, condition: str) -> int | None:
    """NumberOfOfferListings' Count for `condition` (0 when not listed), None when SP-API gave no counts."""
    if not isinstance(listings, list):
        return None
    return sum(
        entry["Count"] for entry in dicts(listings) if _is(entry.get("condition"), condition) and isinstance(entry.get("Count"), int)
    )


def pricing_facts(entry: dict[str, Any]) -> dict[str, Any]:
    """The pricing facts of one getCompetitivePricing payload entry (its Product.CompetitivePricing); null where SP-API gave nothing.

    The New Buy Box is the CompetitivePrice whose CompetitivePriceId is "1" (the model); where none is,
    a New one that is not "2" (the model's sandbox examples number theirs freely). Quantity-discount
    tiers (a `quantityTier`) are never the Buy Box price.
    """
    product = entry.get("Product") if isinstance(entry.get("Product"), dict) else {}
    pricing = product.get("CompetitivePricing") if isinstance(product.get("CompetitivePricing"), dict) else {}
    prices = [p for p in dicts(pricing.get("CompetitivePrices")) if isinstance(p.get("Price"), dict) and p.get("quantityTier") is None]
    buy_box = next((p for p in prices if str(p.get("CompetitivePriceId")) == NEW_BUY_BOX_ID), None)
    if buy_box is None:
        buy_box = next((p for p in prices if _is(p.get("condition"), "New") and str(p.get("CompetitivePriceId")) != USED_BUY_BOX_ID), None)
    price = buy_box["Price"] if buy_box else {}
    listings = pricing.get("NumberOfOfferListings")
    return {
        "buy_box_price": landed_price(price) if buy_box else None,
        "buy_box_listing_price": _amount(price.get("ListingPrice")),
        "buy_box_shipping": _amount(price.get("Shipping")),
        "new_offer_count": _offer_count(listings, "New"),
        "used_offer_count": _offer_count(listings, "Used"),
        "currency": _first_currency([price], [p["Price"] for p in prices]),
    }


def _offer(offer: dict[str, Any]) -> dict[str, Any]:
    """One OfferDetail as the facts list it."""
    prime = offer.get("PrimeInformation")
    feedback = offer.get("SellerFeedbackRating") if isinstance(offer.get("SellerFeedbackRating"), dict) else {}
    return {
        "seller_id": offer.get("SellerId"),
        "landed_price": landed_price(offer),
        "fba": offer.get("IsFulfilledByAmazon") is True,
        "prime": prime.get("IsPrime") if isinstance(prime, dict) else None,
        "buy_box_winner": offer.get("IsBuyBoxWinner") is True,
        "feedback_count": feedback.get("FeedbackCount"),
        "feedback_percent": feedback.get("SellerPositiveFeedbackRating"),
    }


def _winner(offers: list[dict[str, Any]], buy_box: dict[str, Any] | None, buy_box_price: Amount | None) -> dict[str, Any] | None:
    """The offer in the New Buy Box: the one BuyBoxPrices names (sellerId), else the winner at the Buy Box price, else the first winner.

    There can be two winners at a time (the model: one eligible for Prime, one not).
    """
    winners = [offer for offer in offers if offer.get("IsBuyBoxWinner") is True]
    seller = buy_box.get("sellerId") if buy_box else None
    named = [offer for offer in offers if seller and offer.get("SellerId") == seller]
    priced = [offer for offer in winners if buy_box_price is not None and landed_price(offer) == buy_box_price]
    return next(iter(named or priced or winners), None)


def _seller_kind(winner: dict[str, Any] | None, buy_box: dict[str, Any] | None, amazon_seller_id: str) -> str | None:
    if winner is None:
        # BuyBoxPrices can name the winner (sellerId) without the offer being listed: Amazon is still recognisable.
        return "AMAZON" if buy_box and buy_box.get("sellerId") == amazon_seller_id else None
    if winner.get("SellerId") == amazon_seller_id:
        return "AMAZON"
    return "FBA" if winner.get("IsFulfilledByAmazon") is True else "FBM"


def _lowest(summary: dict[str, Any], offers: list[dict[str, Any]], fba: bool) -> Amount | None:
    """The lowest New landed price of one channel: Summary.LowestPrices (every offer), else the offers listed."""
    if isinstance(summary.get("LowestPrices"), list):
        channel = FBA_CHANNEL if fba else FBM_CHANNEL
        candidates = [
            p
            for p in dicts(summary["LowestPrices"])
            if _is(p.get("condition"), "New") and p.get("fulfillmentChannel") == channel and p.get("quantityTier") is None
        ]
    else:
        candidates = [offer for offer in offers if (offer.get("IsFulfilledByAmazon") is True) == fba]
    prices = [price for price in map(landed_price, candidates) if price is not None]
    return min(prices, default=None)


def _counts(summary: dict[str, Any], offers: list[dict[str, Any]]) -> tuple[int, int, int]:
    """New offers: all, FBA, FBM. From Summary.NumberOfOffers; where it counts no New ones, the offers listed (exact below 20)."""
    counted = [n for n in dicts(summary.get("NumberOfOffers")) if _is(n.get("condition"), "New") and isinstance(n.get("OfferCount"), int)]
    if counted:
        fba = sum(n["OfferCount"] for n in counted if n.get("fulfillmentChannel") == FBA_CHANNEL)
        fbm = sum(n["OfferCount"] for n in counted if n.get("fulfillmentChannel") == FBM_CHANNEL)
        return sum(n["OfferCount"] for n in counted), fba, fbm
    fba = sum(offer.get("IsFulfilledByAmazon") is True for offer in offers)
    return len(offers), fba, len(offers) - fba


def offers_facts(payload: dict[str, Any], amazon_seller_id: str) -> dict[str, Any]:
    """The offers facts of one getItemOffers payload (GetOffersResult: Summary and the New Offers); null where SP-API gave nothing.

    `buy_box_seller` is AMAZON when the New Buy Box winner's SellerId is `amazon_seller_id`, else FBA or
    FBM by its IsFulfilledByAmazon, None without a winner. `amazon_on_listing` says whether Amazon is among
    the offers listed (the 20 lowest, per the model) or holds the Buy Box.
    """
    summary = payload.get("Summary") if isinstance(payload.get("Summary"), dict) else {}
    offers = dicts(payload.get("Offers"))[:MAX_OFFERS]
    buy_box = next(
        (p for p in dicts(summary.get("BuyBoxPrices")) if _is(p.get("condition"), "New") and p.get("quantityTier") is None), None
    )
    buy_box_price = landed_price(buy_box) if buy_box else None
    winner = _winner(offers, buy_box, buy_box_price)
    if buy_box_price is None and winner is not None:
        buy_box_price = landed_price(winner)
    seller = _seller_kind(winner, buy_box, amazon_seller_id)
    offer_count, fba_count, fbm_count = _counts(summary, offers)
    return {
        "buy_box_price": buy_box_price,
        "buy_box_seller": seller,
        "lowest_fba_price": _lowest(summary, offers, fba=True),
        "lowest_fbm_price": _lowest(summary, offers, fba=False),
        "offer_count": offer_count,
        "fba_offer_count": fba_count,
        "fbm_offer_count": fbm_count,
        "amazon_on_listing": seller == "AMAZON" or any(offer.get("SellerId") == amazon_seller_id for offer in offers),
        "currency": _first_currency([buy_box] if buy_box else [], dicts(summary.get("LowestPrices")), offers)
        or _currency(summary.get("ListPrice")),
        "offers": [_offer(offer) for offer in offers],
    }
