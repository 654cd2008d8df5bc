"""services/pricing.py over real HTTP to the emulator: the facts equal what emulator/offers.py says, and the call log shows the batching.

The emulator's plans and the client's are raised so that no test waits for a slot; retry delays are
recorded, not slept (tests/helpers/spapi.py).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from emulator import EmulatorServer
from emulator.offers import OfferBook, buy_box, listed_offers, of_condition, offer_book
from services.errors import NOT_FOUND, UPSTREAM_ERROR
from services.pricing import competitive_pricing, item_offers
from services.spapi import CallCount
from tests.helpers.data import synthetic_asins
from tests.helpers.emulator_log import operation_calls
from tests.helpers.spapi import FAMILY_PLANS
from utils.marketplaces import MARKETPLACES

US = MARKETPLACES["US"]
UNKNOWN = "NF00000001"  # the emulator's catalog has no NF... ASIN
FETCHED_AT = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


@pytest.fixture(autouse=True)
def fast_pricing(emulator: EmulatorServer) -> None:
    """The emulator's pricing plans raised, so tests that are not about the plan never wait for it."""
    emulator.configure(plans=FAMILY_PLANS)


def book(asin: str) -> OfferBook:
    found = offer_book(asin, US.marketplace_id)
    assert found is not None
    return found


def expected_pricing(asin: str) -> dict[str, Any]:
    """The pricing facts emulator/offers.py implies for `asin` (a Consumer's view)."""
    b = book(asin)
    winner = buy_box(b, "New", False)
    return {
        "buy_box_price": winner.landed(False) if winner else None,
        "buy_box_listing_price": winner.price if winner else None,
        "buy_box_shipping": winner.shipping if winner else None,
        "new_offer_count": len(of_condition(b, "New")),
        "used_offer_count": len(of_condition(b, "Used")),
        "currency": b.currency,  # the marketplace's, priced or not
    }


def expected_offers(asin: str) -> dict[str, Any]:
    """The New offers facts emulator/offers.py implies for `asin`."""
    b = book(asin)
    new, listed, winner = of_condition(b, "New"), listed_offers(b, "New", False), buy_box(b, "New", False)
    seller = None if winner is None else "AMAZON" if winner.is_amazon else "FBA" if winner.fba else "FBM"
    return {
        "buy_box_price": winner.landed(False) if winner else None,
        "buy_box_seller": seller,
        "lowest_fba_price": min((o.landed(False) for o in new if o.fba), default=None),
        "lowest_fbm_price": min((o.landed(False) for o in new if not o.fba), default=None),
        "offer_count": len(new),
        "fba_offer_count": sum(o.fba for o in new),
        "fbm_offer_count": sum(not o.fba for o in new),
        "amazon_on_listing": any(o.is_amazon for o in listed),
        "currency": b.currency,  # the marketplace's, priced or not
        "offers": [
            {
                "seller_id": o.seller_id,
                "landed_price": o.landed(False),
                "fba": o.fba,
                "prime": o.fba,
                "buy_box_winner": o is winner,
                "feedback_count": o.feedback[0] if o.feedback else None,
                "feedback_percent": o.feedback[1] if o.feedback else None,
            }
            for o in listed
        ],
    }


def kinds_of_listing() -> list[str]:
    """One synthetic ASIN of each kind: Amazon in the Buy Box, an FBA winner, an FBM winner, offers without a Buy Box, no offers."""
    wanted: dict[str, str] = {}
    for asin in synthetic_asins(400):
        b = book(asin)
        winner = buy_box(b, "New", False)
        kind = "none" if not b.offers else "no_buy_box" if winner is None else "amazon" if winner.is_amazon else str(winner.fba)
        wanted.setdefault(kind, asin)
    assert set(wanted) == {"none", "no_buy_box", "amazon", "True", "False"}
    return list(wanted.values())


def without_fetched_at(dataset: dict[str, Any]) -> dict[str, Any]:
    """The facts of a dataset just fetched (not from the cache)."""
    assert dataset["cached"] is False
    return {key: value for key, value in dataset.items() if key not in ("fetched_at", "cached")}


def asked(emulator: EmulatorServer, operation: str) -> list[list[str]]:
    return [call["asins"] for call in operation_calls(emulator, operation)]


# -- what comes back ------------------------------------------------------------------------------


def test_pricing_equals_what_the_emulators_offers_say(make_client, emulator):
    asins, count = kinds_of_listing(), CallCount()
    pricing = competitive_pricing(make_client().client, US, asins, count)
    assert list(pricing) == asins
    for asin in asins:
        assert without_fetched_at(pricing[asin]) == expected_pricing(asin), asin
        assert re.fullmatch(FETCHED_AT, pricing[asin]["fetched_at"])
    assert asked(emulator, "getCompetitivePricing") == [asins] and count.sent == 1


def test_offers_equal_what_the_emulators_offers_say(make_client, emulator):
    asins = kinds_of_listing()
    offers = item_offers(make_client().client, US, asins)
    for asin in asins:
        assert without_fetched_at(offers[asin]) == expected_offers(asin), asin
    assert asked(emulator, "getItemOffersBatch") == [asins]
    assert operation_calls(emulator, "getItemOffers") == []


def test_one_asin_takes_one_get_item_offers(make_client, emulator):
    (asin,) = kinds_of_listing()[2:3]
    offers = item_offers(make_client().client, US, [asin, asin])
    assert list(offers) == [asin] and without_fetched_at(offers[asin]) == expected_offers(asin)
    assert asked(emulator, "getItemOffers") == [[asin]]
    assert operation_calls(emulator, "getItemOffersBatch") == []


# -- batching -------------------------------------------------------------------------------------


def test_45_asins_take_three_calls_of_each_operation(make_client, emulator):
    client, asins = make_client().client, synthetic_asins(45)
    pricing, offers = competitive_pricing(client, US, asins), item_offers(client, US, asins)
    assert set(pricing) == set(offers) == set(asins)
    assert all("error" not in pricing[a] and "error" not in offers[a] for a in asins)
    assert [len(a) for a in asked(emulator, "getCompetitivePricing")] == [20, 20, 5]
    assert [len(a) for a in asked(emulator, "getItemOffersBatch")] == [20, 20, 5]
    assert sorted(a for call in asked(emulator, "getItemOffersBatch") for a in call) == asins


def test_duplicates_are_fetched_once_and_never_twice_in_one_batch(make_client, emulator):
    client, asins = make_client().client, synthetic_asins(25)
    repeated = asins + asins[::-1] + asins[:3]
    pricing, offers = competitive_pricing(client, US, repeated), item_offers(client, US, repeated)
    assert list(pricing) == list(offers) == asins
    for operation in ("getCompetitivePricing", "getItemOffersBatch"):
        calls = asked(emulator, operation)
        assert all(len(set(call)) == len(call) for call in calls)
        assert sorted(a for call in calls for a in call) == asins  # each ASIN asked exactly once
    assert all(status == 200 for status in (c["status"] for c in emulator.calls()["calls"]))


# -- failures -------------------------------------------------------------------------------------


def test_an_unknown_asin_is_not_found_and_the_others_stand(make_client, emulator):
    client, asins = make_client().client, [*synthetic_asins(2), UNKNOWN]
    pricing, offers = competitive_pricing(client, US, asins), item_offers(client, US, asins)
    for answers in (pricing, offers):
        assert answers[UNKNOWN]["error"]["code"] == NOT_FOUND
        assert UNKNOWN in answers[UNKNOWN]["error"]["message"]
        assert all("error" not in answers[asin] for asin in asins[:2])
    # The unknown item's 400 inside the batch's 200 is its answer: not asked again.
    assert asked(emulator, "getItemOffersBatch") == [asins]
    alone = item_offers(client, US, ["NF00000002"])
    assert alone["NF00000002"]["error"]["code"] == NOT_FOUND
    assert asked(emulator, "getItemOffers") == [["NF00000002"]]


def test_items_failing_inside_the_batch_are_asked_again_alone_and_recover(make_client, emulator):
    emulator.configure(item_fault_rate=0.3, seed=7)
    parts, asins = make_client(max_retries=3), synthetic_asins(20)
    offers = item_offers(parts.client, US, asins)
    for asin in asins:
        assert without_fetched_at(offers[asin]) == expected_offers(asin), asin
    batches, singles = asked(emulator, "getItemOffersBatch"), asked(emulator, "getItemOffers")
    again = batches[1:] + singles
    assert batches[0] == asins and again, "the seed makes some items fail"
    # Each retry asks only items of the call before it, never the whole batch, and fewer each time.
    for before, after in zip([asins, *again], again, strict=False):
        assert set(after) < set(before)
    assert len(parts.sleeps) == len(again)


def test_items_whose_retries_run_out_keep_their_error_alone(make_client, emulator):
    emulator.configure(item_fault_rate=0.5, seed=3)
    parts, asins = make_client(max_retries=0), synthetic_asins(20)
    offers = item_offers(parts.client, US, asins)
    failed = [asin for asin in asins if "error" in offers[asin]]
    assert 0 < len(failed) < len(asins)
    for asin in failed:
        assert offers[asin]["error"]["code"] == UPSTREAM_ERROR and asin in offers[asin]["error"]["message"]
    for asin in set(asins) - set(failed):
        assert without_fetched_at(offers[asin]) == expected_offers(asin)
    assert asked(emulator, "getItemOffersBatch") == [asins]


def test_retries_of_several_items_stay_batched_and_give_up_after_the_policy(make_client, emulator):
    emulator.configure(item_fault_rate=1.0)
    parts, asins = make_client(max_retries=2), synthetic_asins(3)
    offers = item_offers(parts.client, US, asins)
    assert {offers[asin]["error"]["code"] for asin in asins} == {UPSTREAM_ERROR}
    assert asked(emulator, "getItemOffersBatch") == [asins, asins, asins]
    assert len(parts.sleeps) == 2


def test_a_whole_call_that_fails_fails_each_of_its_asins(make_client, emulator):
    emulator.configure(fault_rate=1.0, fault_statuses=[503])
    client, asins = make_client(max_retries=1).client, synthetic_asins(3)
    pricing, offers = competitive_pricing(client, US, asins), item_offers(client, US, asins)
    for answers in (pricing, offers):
        assert {answers[asin]["error"]["code"] for asin in asins} == {UPSTREAM_ERROR}
    assert len(asked(emulator, "getCompetitivePricing")) == 2  # the call and its one retry
    assert len(asked(emulator, "getItemOffersBatch")) == 2  # never asked again item by item
