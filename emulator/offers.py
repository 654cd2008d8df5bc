"""Offer data: who sells an item in a marketplace, at what price, and who holds the Buy Box (Product Pricing v0 shapes).

Everything derives from `catalog.listing(asin, marketplace_id)`: its list price and currency, its
category and its per-(ASIN, marketplace) draws, so an item's offers agree with its catalog entry,
and the fees or restrictions other modules derive from the same listing agree with its offers.
Every draw hashes its own "pricing." label, so the offers are stable across runs and across edits
to other modules' draws.

Over many listings (tests/emulator/test_emulator_pricing.py checks the shares):

* ~10% have no offers at all: no Buy Box, `NoBuyableOffers`.
* The rest have 1-24 third-party New offers (most have a handful, a few two dozen), each Fulfilled
  by Amazon (free shipping, Prime) or by the merchant (shipping charged on ~55%). Amazon itself
  (its seller id of the marketplace, utils.marketplaces.AMAZON_SELLER_IDS: ATVPDKIKX0DER in the
  US) sells on ~25% of all listings and holds the Buy Box on ~60% of those. ~5% of listings with
  offers have their Buy Box suppressed, and a listing whose competitive offers are all from
  sellers not eligible for it has none either.
* Prices sit around a going price drawn between 0.78 and 1.08 of the catalog's list price, so the
  Buy Box is sometimes below the list price and sometimes above; most sellers are near the going
  price, a few far above it.
* ~35% also have Used offers (1-8; a Used Buy Box on ~70% of those), ~4% Collectible ones, and
  ~25% of electronics Refurbished ones. Club offers do not occur.
* Business buyers (CustomerType=Business) see the same offers; ~30% of sellers have a business
  price (2-7% lower), half of them with two quantity-discount tiers.
* In Japan FBA offers (Amazon's included) and half of the others carry Amazon Points worth 1% of
  the price, and landed prices deduct them, as the model defines LandedPrice (ListingPrice +
  Shipping - Points).

Pure: no I/O; the books are cached per (ASIN, marketplace).
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass
from typing import Any

from emulator.catalog import Listing, build_item, listing
from emulator.defaults import MARKETPLACES, NOT_FOUND_PREFIX
from emulator.products import MARKETPLACE_INFO
from utils.marketplaces import AMAZON_SELLER_IDS, amazon_seller_id

# Amazon's own offers carry its seller id of the marketplace (utils.marketplaces, the table the service reads too).
AMAZON_SELLER_ID = amazon_seller_id("US")
_AMAZON_SELLER_IDS = frozenset({AMAZON_SELLER_ID, *AMAZON_SELLER_IDS.values()})
# The model's ConditionType / ItemCondition enum, and CustomerType.
CONDITIONS = ("New", "Used", "Collectible", "Refurbished", "Club")
CUSTOMER_TYPES = ("Consumer", "Business")
# GetOffersResult.Offers: "the same length as the TotalOfferCount in the Summary or 20, whichever is less".
MAX_OFFERS_LISTED = 20

NO_OFFERS_SHARE = 0.10
AMAZON_SHARE = 0.25  # of all listings
AMAZON_BUY_BOX_SHARE = 0.60  # of the listings Amazon sells on
SUPPRESSED_BUY_BOX_SHARE = 0.05
USED_SHARE = 0.35
USED_BUY_BOX_SHARE = 0.70
COLLECTIBLE_SHARE = 0.04
REFURBISHED_SHARE = 0.25  # of electronics
BUSINESS_SELLER_SHARE = 0.30
MAX_THIRD_PARTY_NEW = 24

_COUNTRY = {marketplace_id: code for code, marketplace_id in MARKETPLACES.items()}
_SELLER_POOL = 5000
_SELLER_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_US_STATES = ("WA", "CA", "TX", "NY", "FL", "NJ", "IL", "GA", "OH", "PA", "NV", "AZ")
_SHIPPING_USD = (3.99, 4.49, 4.99, 5.99, 6.99, 7.99)
_TIER_PAIRS = ((5, 10), (10, 25), (20, 50))
# Used sub-conditions as getItemOffers spells them, how often each occurs and its price against New.
_USED_GRADES = (("mint", 0.10, 0.88), ("very_good", 0.45, 0.76), ("good", 0.85, 0.66), ("acceptable", 1.01, 0.55))
_USED_NOTES = (
    "Light shelf wear on the box; the item works perfectly.",
    "Minor cosmetic scratches; fully functional.",
    "Complete with all accessories; original packaging opened.",
    "Packaging damaged in transit; the item itself is unused.",
)
# How getCompetitivePricing spells a sub-condition (the model's list: New, Mint, Very Good, Good, ...).
_SUBCONDITION_TITLES = {
    "new": "New",
    "mint": "Mint",
    "very_good": "Very Good",
    "good": "Good",
    "acceptable": "Acceptable",
    "refurbished": "Refurbished",
}


# --------------------------------------------------------------------------- sellers


def _unit(*parts: str) -> float:
    digest = hashlib.sha256("|".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass(frozen=True)
class Seller:
    """A third-party seller of the emulator's pool: the same id, feedback and habits on every item it sells."""

    seller_id: str
    feedback_count: int
    positive_percent: float
    # Eligible to win the Buy Box when it ships the order itself (FBA offers always are).
    featured_merchant: bool
    business: bool
    tiers: tuple[int, int] | None
    state: str | None  # ships from this US state (US marketplace only)
    abroad: bool  # ships from China instead of the marketplace's country


@functools.lru_cache(maxsize=_SELLER_POOL)
def seller(index: int) -> Seller:
    """Seller `index` (0 to 4999) of the pool third-party offers draw from."""
    key = f"seller{index}"
    digest = hashlib.sha256(key.encode()).digest()
    seller_id = "A" + "".join(_SELLER_CHARS[b % len(_SELLER_CHARS)] for b in digest[:13])
    percent = float(round(100 - 25 * _unit(key, "feedback") ** 3))
    business = _unit(key, "business") < BUSINESS_SELLER_SHARE
    tiers = _TIER_PAIRS[min(int(_unit(key, "tier_pair") * 3), 2)] if business and _unit(key, "tiers") < 0.5 else None
    return Seller(
        seller_id=seller_id,
        feedback_count=int(10 ** (1.0 + 4.5 * _unit(key, "feedback_count"))),
        positive_percent=percent,
        featured_merchant=percent >= 88 and _unit(key, "featured") < 0.8,
        business=business,
        tiers=tiers,
        state=_US_STATES[min(int(_unit(key, "state") * len(_US_STATES)), len(_US_STATES) - 1)],
        abroad=_unit(key, "abroad") < 0.08,
    )


# --------------------------------------------------------------------------- offers


@dataclass(frozen=True)
class Offer:
    """One offer on a listing, with its Consumer price and, when its seller has one, its Business price."""

    seller_id: str
    condition: str  # ItemCondition value: New, Used, Collectible, Refurbished
    sub_condition: str  # as getItemOffers spells it: new, mint, very_good, good, acceptable, refurbished
    fba: bool
    price: float
    shipping: float
    points: int  # Amazon Points (Japan), each worth one yen
    business_price: float | None
    tiers: tuple[tuple[int, float], ...]  # (quantity, business unit price) quantity discounts
    feedback: tuple[int, float] | None  # (count, positive %); None for Amazon's own offers
    featured: bool  # IsFeaturedMerchant: eligible to win the Buy Box
    ships_from: tuple[str | None, str]  # (state, country)
    shipping_hours: tuple[int, int]
    notes: str | None

    @property
    def is_amazon(self) -> bool:
        """Amazon's own offer."""
        return self.seller_id in _AMAZON_SELLER_IDS

    @property
    def channel(self) -> str:
        """The model's FulfillmentChannelType: Amazon (FBA and Amazon's own) or Merchant."""
        return "Amazon" if self.fba else "Merchant"

    def listing_price(self, business: bool) -> float:
        """The price a Consumer (or a Business buyer) pays before shipping."""
        return self.business_price if business and self.business_price is not None else self.price

    def landed(self, business: bool) -> float:
        """ListingPrice + Shipping - Points, as the model defines the landed price."""
        return round(self.listing_price(business) + self.shipping - self.points, 2)

    def offer_type(self, business: bool) -> str:
        """B2B for a business price seen by a Business buyer, else B2C."""
        return "B2B" if business and self.business_price is not None else "B2C"


@dataclass(frozen=True)
class OfferBook:
    """Every offer on one listing (all conditions) and what decides its Buy Boxes."""

    listing: Listing
    offers: tuple[Offer, ...]
    amazon_wins: bool
    buy_box_suppressed: bool
    used_buy_box: bool
    # SalesRankings as the pricing models list them, from the catalog item's salesRanks.
    sales_rankings: tuple[tuple[str, int], ...]
    price_threshold: float | None  # CompetitivePriceThreshold
    suggested_share: float | None  # SuggestedLowerPricePlusShipping, as a share of the New Buy Box price

    @property
    def currency(self) -> str:
        """The marketplace's currency (the catalog item's list-price currency)."""
        return self.listing.currency


@functools.lru_cache(maxsize=16384)
def offer_book(asin: str, marketplace_id: str, not_found_prefix: str = NOT_FOUND_PREFIX) -> OfferBook | None:
    """The offers on `asin` in `marketplace_id`, or None where the catalog has no such item."""
    facts = listing(asin, marketplace_id, not_found_prefix)
    if facts is None:
        return None
    ranks = build_item(facts.asin, marketplace_id, ["salesRanks"], not_found_prefix)
    assert ranks is not None
    return _build_book(facts, _sales_rankings(ranks["salesRanks"][0]))


def _sales_rankings(entry: dict[str, Any]) -> tuple[tuple[str, int], ...]:
    # The website display group rank first, then the browse nodes', as SP-API lists them.
    ranks = [(rank["websiteDisplayGroup"], rank["rank"]) for rank in entry.get("displayGroupRanks", [])]
    ranks += [(rank["classificationId"], rank["rank"]) for rank in entry.get("classificationRanks", [])]
    return tuple(ranks)


class _Amounts:
    """Rounds amounts the way the marketplace's currency is priced."""

    def __init__(self, usd_rate: float) -> None:
        self.rate = usd_rate

    def round(self, value: float, charm: bool = False) -> float:
        if self.rate >= 100:  # yen: whole tens
            return float(max(10, round(value / 10) * 10))
        if self.rate >= 10:  # rupees, pesos, kronor...: whole units
            return float(max(1, round(value)))
        if charm and value >= 2:  # many sellers price at .99
            return math.floor(value) + 0.99
        return max(0.01, round(value, 2))

    def from_usd(self, usd: float) -> float:
        return self.round(usd * self.rate)


def _build_book(facts: Listing, sales_rankings: tuple[tuple[str, int], ...]) -> OfferBook:
    d = facts.draws
    if d.unit("pricing.offers") < NO_OFFERS_SHARE:
        return OfferBook(facts, (), False, False, False, sales_rankings, None, None)
    amounts = _Amounts(MARKETPLACE_INFO[facts.marketplace_id].usd_rate)
    country = _COUNTRY[facts.marketplace_id]
    japan = country == "JP"
    market = facts.list_price * d.between("pricing.market", 0.78, 1.08)
    picked: set[int] = set()

    def pick_seller(label: str) -> Seller:
        for attempt in range(100):
            index = d.below(f"pricing.{label}.seller{attempt}", _SELLER_POOL)
            if index not in picked:
                picked.add(index)
                return seller(index)
        raise AssertionError("the seller pool is far larger than any listing's offers")

    def points(price: float, fba: bool, label: str) -> int:
        if not japan or not (fba or d.unit(f"pricing.{label}.points") < 0.5):
            return 0
        return max(1, round(price * 0.01))

    def third_party(label: str, condition: str, sub: str, price: float, fba: bool, free_share: float, notes: str | None) -> Offer:
        who = pick_seller(label)
        shipping = 0.0
        if not fba and d.unit(f"pricing.{label}.free") >= free_share:
            shipping = amounts.from_usd(d.pick(f"pricing.{label}.shipping", _SHIPPING_USD))
            price -= 0.6 * shipping  # merchants who charge shipping price the item lower
        price = amounts.round(max(price, market * 0.3), charm=d.unit(f"pricing.{label}.charm") < 0.5)
        business_price, tiers = None, ()
        if condition == "New" and who.business:
            business_price = amounts.round(price * d.between(f"pricing.{label}.business", 0.93, 0.98))
            if who.tiers is not None:
                shares = zip(who.tiers, (0.97, 0.94), strict=True)
                tiers = tuple((quantity, amounts.round(business_price * share)) for quantity, share in shares)
        if fba:
            ships_from, hours = (None, country), (0, 0)
        elif who.abroad:
            ships_from, hours = (None, "CN"), (120, 240)
        else:
            ships_from = (who.state if country == "US" else None, country)
            hours = d.pick(f"pricing.{label}.hours", ((24, 48), (24, 48), (24, 48), (48, 72), (72, 96)))
        return Offer(
            seller_id=who.seller_id,
            condition=condition,
            sub_condition=sub,
            fba=fba,
            price=price,
            shipping=shipping,
            points=points(price, fba, label),
            business_price=business_price,
            tiers=tiers,
            feedback=(who.feedback_count, who.positive_percent),
            featured=fba or who.featured_merchant,
            ships_from=ships_from,
            shipping_hours=hours,
            notes=notes,
        )

    offers: list[Offer] = []
    amazon = d.unit("pricing.amazon") < AMAZON_SHARE / (1 - NO_OFFERS_SHARE)
    if amazon:
        price = amounts.round(market * d.between("pricing.amazon_price", 0.97, 1.03))
        offers.append(
            Offer(amazon_seller_id(country), "New", "new", True, price, 0.0, points(price, True, "amazon"), None, (), None, True,
                  (None, country), (0, 0), None)
        )  # fmt: skip
    fba_share = d.between("pricing.fba_share", 0.2, 0.85)
    for i in range(1 + int(MAX_THIRD_PARTY_NEW * d.unit("pricing.new_count") ** 2.2)):
        label = f"new{i}"
        # Most sellers sit near the going price (some just under it), a few far above it.
        price = market * (1 + 0.35 * d.unit(f"pricing.{label}.spread") ** 2 - 0.04 * d.unit(f"pricing.{label}.undercut"))
        offers.append(third_party(label, "New", "new", price, d.unit(f"pricing.{label}.fba") < fba_share, 0.45, None))
    if d.unit("pricing.used") < USED_SHARE:
        for i in range(1 + int(8 * d.unit("pricing.used_count") ** 2)):
            label = f"used{i}"
            roll = d.unit(f"pricing.{label}.grade")
            sub, _, share = next(grade for grade in _USED_GRADES if roll < grade[1])
            price = market * share * d.between(f"pricing.{label}.jitter", 0.9, 1.1)
            notes = d.pick(f"pricing.{label}.note", _USED_NOTES) if d.unit(f"pricing.{label}.has_note") < 0.6 else None
            offers.append(third_party(label, "Used", sub, price, d.unit(f"pricing.{label}.fba") < 0.3, 0.3, notes))
    if d.unit("pricing.collectible") < COLLECTIBLE_SHARE:
        for i in range(1 + d.below("pricing.collectible_count", 2)):
            label = f"collectible{i}"
            price = market * d.between(f"pricing.{label}.premium", 1.2, 2.5)
            sub = d.pick(f"pricing.{label}.grade", ("mint", "very_good", "good"))
            offers.append(third_party(label, "Collectible", sub, price, False, 0.3, None))
    if facts.category == "electronics" and d.unit("pricing.refurbished") < REFURBISHED_SHARE:
        for i in range(1 + d.below("pricing.refurbished_count", 3)):
            label = f"refurbished{i}"
            price = market * d.between(f"pricing.{label}.discount", 0.7, 0.88)
            offers.append(third_party(label, "Refurbished", "refurbished", price, d.unit(f"pricing.{label}.fba") < 0.4, 0.5, None))

    threshold = amounts.round(market * d.between("pricing.threshold", 0.92, 1.04))
    return OfferBook(
        listing=facts,
        offers=tuple(offers),
        amazon_wins=amazon and d.unit("pricing.amazon_buy_box") < AMAZON_BUY_BOX_SHARE,
        buy_box_suppressed=d.unit("pricing.buy_box_suppressed") < SUPPRESSED_BUY_BOX_SHARE,
        used_buy_box=d.unit("pricing.used_buy_box") < USED_BUY_BOX_SHARE,
        sales_rankings=sales_rankings,
        price_threshold=threshold if d.unit("pricing.has_threshold") < 0.3 else None,
        suggested_share=d.between("pricing.suggested", 0.93, 0.99) if d.unit("pricing.has_suggested") < 0.5 else None,
    )


# --------------------------------------------------------------------------- views of a book


def of_condition(book: OfferBook, condition: str) -> list[Offer]:
    """Every offer of `condition`, in the book's order."""
    return [offer for offer in book.offers if offer.condition == condition]


def listed_offers(book: OfferBook, condition: str, business: bool) -> list[Offer]:
    """The offers getItemOffers lists for `condition`: the 20 lowest landed prices, lowest first."""
    offers = of_condition(book, condition)
    order = sorted(range(len(offers)), key=lambda i: (offers[i].landed(business), i))
    return [offers[i] for i in order[:MAX_OFFERS_LISTED]]


def buy_box(book: OfferBook, condition: str, business: bool) -> Offer | None:
    """The offer holding the Buy Box of `condition` (New or Used) for a Consumer or Business buyer, if there is one.

    Only offers of eligible sellers compete, among the ones listed; Amazon wins where the book says
    so, otherwise the lowest landed price wins.
    """
    if condition == "New" and book.buy_box_suppressed:
        return None
    if condition == "Used" and not book.used_buy_box:
        return None
    if condition not in ("New", "Used"):
        return None
    listed = listed_offers(book, condition, business)
    if book.amazon_wins:
        for offer in listed:
            if offer.is_amazon:
                return offer
    # Prime (FBA) offers compete with a 4% edge on price.
    candidates = [(o.landed(business) * (0.96 if o.fba else 1.0), i) for i, o in enumerate(listed) if o.featured and not o.is_amazon]
    return listed[min(candidates)[1]] if candidates else None


def _money(book: OfferBook, amount: float) -> dict[str, Any]:
    return {"CurrencyCode": book.currency, "Amount": amount}


def _points(book: OfferBook, offer: Offer) -> dict[str, Any]:
    return {"PointsNumber": offer.points, "PointsMonetaryValue": _money(book, float(offer.points))}


def _price_fields(book: OfferBook, offer: Offer, business: bool) -> dict[str, Any]:
    fields = {
        "LandedPrice": _money(book, offer.landed(business)),
        "ListingPrice": _money(book, offer.listing_price(business)),
        "Shipping": _money(book, offer.shipping),
    }
    if offer.points:
        fields["Points"] = _points(book, offer)
    return fields


# The order conditions and channels are listed in the Summary.
_GROUPS = tuple((condition, channel) for condition in CONDITIONS for channel in ("Amazon", "Merchant"))


def summary(book: OfferBook, customer_type: str) -> dict[str, Any]:
    """The getItemOffers Summary: the whole listing's offers, every condition (as SP-API's examples show it)."""
    if not book.offers:
        return {"TotalOfferCount": 0}
    business = customer_type == "Business"
    groups = [(c, ch, [o for o in book.offers if o.condition == c and o.channel == ch]) for c, ch in _GROUPS]
    groups = [(c, ch, offers) for c, ch, offers in groups if offers]
    lowest: list[dict[str, Any]] = []
    for condition, channel, offers in groups:
        best = min(offers, key=lambda o: o.landed(business))
        entry: dict[str, Any] = {"condition": condition.lower(), "fulfillmentChannel": channel}
        if business:
            entry["offerType"] = best.offer_type(business)
        lowest.append({**entry, **_price_fields(book, best, business)})
        tiers: dict[int, float] = {}
        for offer in offers:
            for quantity, price in offer.tiers if business else ():
                tiers[quantity] = min(price, tiers.get(quantity, price))
        for quantity in sorted(tiers):
            lowest.append({**entry, "offerType": "B2B", **_tier(book, quantity, tiers[quantity])})
    result: dict[str, Any] = {"LowestPrices": lowest}
    buy_box_prices = []
    for condition in ("New", "Used"):
        winner = buy_box(book, condition, business)
        if winner is not None:
            buy_box_prices += _buy_box_entries(book, winner, business)
    if buy_box_prices:
        result["BuyBoxPrices"] = buy_box_prices
    result["NumberOfOffers"] = [
        {"condition": condition.lower(), "fulfillmentChannel": channel, "OfferCount": len(offers)} for condition, channel, offers in groups
    ]
    result["BuyBoxEligibleOffers"] = [
        {"condition": condition.lower(), "fulfillmentChannel": channel, "OfferCount": sum(o.featured for o in offers)}
        for condition, channel, offers in groups
    ]
    if book.sales_rankings:
        result["SalesRankings"] = [{"ProductCategoryId": category, "Rank": rank} for category, rank in book.sales_rankings]
    result["ListPrice"] = _money(book, book.listing.list_price)
    if book.price_threshold is not None:
        result["CompetitivePriceThreshold"] = _money(book, book.price_threshold)
    new_winner = buy_box(book, "New", business)
    if new_winner is not None and book.suggested_share is not None:
        amounts = _Amounts(MARKETPLACE_INFO[book.listing.marketplace_id].usd_rate)
        result["SuggestedLowerPricePlusShipping"] = _money(book, amounts.round(new_winner.landed(business) * book.suggested_share))
    result["TotalOfferCount"] = len(book.offers)
    return result


def _tier(book: OfferBook, quantity: int, price: float) -> dict[str, Any]:
    return {"quantityTier": quantity, "quantityDiscountType": "QUANTITY_DISCOUNT", "ListingPrice": _money(book, price)}


def _buy_box_entries(book: OfferBook, winner: Offer, business: bool) -> list[dict[str, Any]]:
    entry: dict[str, Any] = {"condition": winner.condition.lower()}
    if business:
        entry["offerType"] = winner.offer_type(business)
    entries = [{**entry, **_price_fields(book, winner, business)}]
    if business:
        entries[0]["sellerId"] = winner.seller_id
        for quantity, price in winner.tiers:
            entries.append(
                {
                    **entry,
                    "offerType": "B2B",
                    "quantityTier": quantity,
                    "quantityDiscountType": "QUANTITY_DISCOUNT",
                    "LandedPrice": _money(book, round(price + winner.shipping, 2)),
                    "ListingPrice": _money(book, price),
                    "Shipping": _money(book, winner.shipping),
                    "sellerId": winner.seller_id,
                }
            )
    return entries


def _offer_detail(book: OfferBook, offer: Offer, business: bool, winner: Offer | None) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "Shipping": _money(book, offer.shipping),
        "ListingPrice": _money(book, offer.listing_price(business)),
    }
    if business and offer.tiers:
        detail["quantityDiscountPrices"] = [
            {"quantityTier": quantity, "quantityDiscountType": "QUANTITY_DISCOUNT", "listingPrice": _money(book, price)}
            for quantity, price in offer.tiers
        ]
    if offer.points:
        detail["Points"] = _points(book, offer)
    minimum, maximum = offer.shipping_hours
    detail["ShippingTime"] = {"maximumHours": maximum, "minimumHours": minimum, "availabilityType": "NOW"}
    if offer.feedback is not None:
        count, percent = offer.feedback
        detail["SellerFeedbackRating"] = {"FeedbackCount": count, "SellerPositiveFeedbackRating": percent}
    state, country = offer.ships_from
    detail["ShipsFrom"] = {"State": state, "Country": country} if state else {"Country": country}
    detail["PrimeInformation"] = {"IsPrime": offer.fba, "IsNationalPrime": offer.fba}
    detail["SubCondition"] = offer.sub_condition
    if offer.notes:
        detail["ConditionNotes"] = offer.notes
    detail["SellerId"] = offer.seller_id
    if business:
        detail["offerType"] = offer.offer_type(business)
    detail["IsFeaturedMerchant"] = offer.featured
    detail["IsBuyBoxWinner"] = offer is winner
    detail["IsFulfilledByAmazon"] = offer.fba
    return detail


def offers_result(book: OfferBook, condition: str, customer_type: str) -> dict[str, Any]:
    """getItemOffers' payload (GetOffersResult) for one condition and customer type."""
    business = customer_type == "Business"
    listed = listed_offers(book, condition, business)
    winner = buy_box(book, condition, business)
    facts = book.listing
    return {
        "ASIN": facts.asin,
        "status": "Success" if listed else "NoBuyableOffers",
        "ItemCondition": condition,
        "Identifier": {"MarketplaceId": facts.marketplace_id, "ItemCondition": condition, "ASIN": facts.asin},
        "Summary": summary(book, customer_type),
        "Offers": [_offer_detail(book, offer, business, winner) for offer in listed],
        "marketplaceId": facts.marketplace_id,
    }


def competitive_price(book: OfferBook, customer_type: str) -> dict[str, Any]:
    """getCompetitivePricing's entry (Price) for the item: its New and Used Buy Boxes and its offer counts."""
    business = customer_type == "Business"
    facts = book.listing
    prices: list[dict[str, Any]] = []
    for price_id, condition in (("1", "New"), ("2", "Used")):
        winner = buy_box(book, condition, business)
        if winner is None:
            continue
        entry: dict[str, Any] = {
            "CompetitivePriceId": price_id,
            "Price": _price_fields(book, winner, business),
            "condition": condition,
            "subcondition": _SUBCONDITION_TITLES[winner.sub_condition],
        }
        if business:
            entry.update(offerType=winner.offer_type(business), sellerId=winner.seller_id)
        prices.append({**entry, "belongsToRequester": False})
        for quantity, price in winner.tiers if business else ():
            prices.append(
                {
                    "CompetitivePriceId": price_id,
                    "Price": {"ListingPrice": _money(book, price)},
                    "condition": condition,
                    "subcondition": entry["subcondition"],
                    "offerType": "B2B",
                    "quantityTier": quantity,
                    "quantityDiscountType": "QUANTITY_DISCOUNT",
                    "sellerId": winner.seller_id,
                    "belongsToRequester": False,
                }
            )
    counts = [{"Count": len(of_condition(book, condition)), "condition": condition} for condition in CONDITIONS]
    product: dict[str, Any] = {
        "Identifiers": {"MarketplaceASIN": {"MarketplaceId": facts.marketplace_id, "ASIN": facts.asin}},
        "CompetitivePricing": {"CompetitivePrices": prices, "NumberOfOfferListings": [c for c in counts if c["Count"]]},
    }
    if book.sales_rankings:
        product["SalesRankings"] = [{"ProductCategoryId": category, "Rank": rank} for category, rank in book.sales_rankings]
    return {"status": "Success", "ASIN": facts.asin, "Product": product}
