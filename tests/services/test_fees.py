"""Product Fees over real HTTP to the emulator: values, batching, matching by identifier, per-item retries.

Judged by the fees answered (the emulator's rate card at the price asked) and the emulator's call log.
The plans of both fee operations are raised so that no test waits for a slot; retry delays are
recorded, not slept (tests/helpers/spapi.py).
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from emulator import catalog
from emulator.fees import estimate_fees
from emulator.products import MARKETPLACE_INFO
from services.fees import FeeRequest, fees_estimates
from services.spapi import CallCount
from tests.helpers.data import synthetic_asins
from tests.helpers.emulator_log import operation_calls
from tests.helpers.spapi import FAMILY_PLANS
from utils.marketplaces import CURRENCIES, MARKETPLACES

US, JP = MARKETPLACES["US"], MARKETPLACES["JP"]
BOOK = "0306406152"  # an ISBN-10: the emulator's book, with a closing fee


@pytest.fixture
def fees_client(make_client, emulator):
    """A client against the emulator with both fee operations' plans raised."""
    emulator.configure(plans=FAMILY_PLANS)
    return make_client()


def rate_card(asin: str, price: float, fba: bool = True, marketplace=US) -> dict:
    """The fees the emulator's rate card charges for `asin` at `price`, as the service names them."""
    fees = estimate_fees(catalog.listing(asin, marketplace.marketplace_id), Decimal(str(price)), Decimal(0), fba)
    return {
        "price": price,
        "fulfilled_by_amazon": fba,
        "referral_fee": float(fees.referral),
        "fba_fee": float(fees.fulfilment) if fees.fulfilment is not None else None,
        "closing_fee": float(fees.closing),
        "other_fees": float(fees.per_item),
        "total_fees": float(fees.total),
        "currency": fees.currency,
    }


def facts(dataset: dict) -> dict:
    assert dataset["fetched_at"].endswith("Z")
    assert dataset["cached"] is False
    return {key: value for key, value in dataset.items() if key not in ("fetched_at", "cached")}


def test_fees_are_the_rate_cards_at_the_price_asked(fees_client, emulator):
    requests = [
        FeeRequest("B0TEST0001", 25.0),
        FeeRequest("B0TEST0002", 59.99),
        FeeRequest(BOOK, 12.0),
        FeeRequest("B0TEST0003", 8.5, False),
    ]
    count = CallCount()
    answers = fees_estimates(fees_client.client, US, requests, count)
    assert {request: facts(answers[request]) for request in requests} == {
        request: rate_card(request.asin, request.price, request.fulfilled_by_amazon) for request in requests
    }
    assert answers[FeeRequest(BOOK, 12.0)]["closing_fee"] == 1.80  # the rate card's media closing fee
    fbm = answers[FeeRequest("B0TEST0003", 8.5, False)]
    assert fbm["fba_fee"] is None and fbm["fulfilled_by_amazon"] is False
    assert answers[FeeRequest("B0TEST0001", 25.0)]["fba_fee"] > 0
    (call,) = operation_calls(emulator, "getMyFeesEstimates")
    assert call["asins"] == [r.asin for r in requests] and count.sent == 1


def test_fees_are_in_the_marketplaces_currency(fees_client):
    (answer,) = fees_estimates(fees_client.client, JP, [FeeRequest("B0TEST0001", 3000.0)]).values()
    assert facts(answer) == rate_card("B0TEST0001", 3000.0, marketplace=JP)
    assert answer["currency"] == "JPY"
    # Every request is priced in its marketplace's currency, as the emulator's marketplaces have them.
    assert CURRENCIES == {code: MARKETPLACE_INFO[m.marketplace_id].currency for code, m in MARKETPLACES.items()}


def test_one_request_alone_uses_get_my_fees_estimate_for_asin(fees_client, emulator):
    answers = fees_estimates(fees_client.client, US, [FeeRequest(BOOK, 12.0)])
    assert facts(answers[FeeRequest(BOOK, 12.0)]) == rate_card(BOOK, 12.0)
    assert [c["asins"] for c in operation_calls(emulator, "getMyFeesEstimateForASIN")] == [[BOOK]]
    assert operation_calls(emulator, "getMyFeesEstimates") == []


def test_45_requests_take_three_calls_of_at_most_20(fees_client, emulator):
    requests = [FeeRequest(asin, 10.0 + i) for i, asin in enumerate(synthetic_asins(45))]
    count = CallCount()
    answers = fees_estimates(fees_client.client, US, requests, count)
    assert [len(c["asins"]) for c in operation_calls(emulator, "getMyFeesEstimates")] == [20, 20, 5]
    assert count.sent == 3
    assert all(facts(answers[r]) == rate_card(r.asin, r.price) for r in requests)


def test_two_asins_at_one_price_each_get_their_own_fees(fees_client):
    """The library would name both requests "25.0"; the emulator answers in an order of its own."""
    requests = [FeeRequest(asin, 25.0) for asin in synthetic_asins(6)]
    answers = fees_estimates(fees_client.client, US, requests)
    assert {r.asin: facts(answers[r]) for r in requests} == {r.asin: rate_card(r.asin, 25.0) for r in requests}
    assert len({answers[r]["fba_fee"] for r in requests}) > 1  # the items differ: a mix-up would show


def test_duplicate_requests_are_asked_once(fees_client, emulator):
    a, b = FeeRequest("B0TEST0001", 25.0), FeeRequest("B0TEST0002", 25.0)
    answers = fees_estimates(fees_client.client, US, [a, b, a, FeeRequest("B0TEST0001", 25.0), b])
    assert list(answers) == [a, b]
    (call,) = operation_calls(emulator, "getMyFeesEstimates")
    assert call["asins"] == ["B0TEST0001", "B0TEST0002"]


def test_an_unknown_asin_is_not_found_and_the_rest_stand(fees_client, emulator):
    known, unknown = FeeRequest("B0TEST0001", 25.0), FeeRequest("NF00000001", 25.0)
    answers = fees_estimates(fees_client.client, US, [known, unknown])
    assert answers[unknown]["error"]["code"] == "NOT_FOUND" and "NF00000001" in answers[unknown]["error"]["message"]
    assert answers[unknown]["fetched_at"].endswith("Z")
    assert facts(answers[known]) == rate_card("B0TEST0001", 25.0)
    assert len(operation_calls(emulator, "getMyFeesEstimates")) == 1  # a ClientError is an answer, not retried


def test_items_that_fail_inside_the_200_are_asked_again_alone_and_recover(make_client, emulator):
    emulator.configure(plans=FAMILY_PLANS, item_fault_rate=0.4, seed=7)
    parts = make_client(max_retries=5)
    requests = [FeeRequest(asin, 20.0) for asin in synthetic_asins(10)]
    answers = fees_estimates(parts.client, US, requests)
    assert all(facts(answers[r]) == rate_card(r.asin, 20.0) for r in requests)
    batches = [c["asins"] for c in operation_calls(emulator, "getMyFeesEstimates")]
    singles = [c["asins"] for c in operation_calls(emulator, "getMyFeesEstimateForASIN")]
    retried = [*batches[1:], *singles]
    assert batches[0] == [r.asin for r in requests]  # the first call had every item
    assert 0 < len(retried[0]) < len(requests)  # some failed, and only they went again
    # Each retry asks only items of the one before it (one item alone: getMyFeesEstimateForASIN).
    for before, after in zip([batches[0], *retried], retried, strict=False):
        assert set(after) <= set(before)
    assert len(parts.sleeps) == len(retried)


def test_items_still_failing_after_the_retries_carry_their_own_error(make_client, emulator):
    emulator.configure(plans=FAMILY_PLANS, item_fault_rate=0.5, seed=3)
    parts = make_client(max_retries=1)
    requests = [FeeRequest(asin, 20.0) for asin in synthetic_asins(12)]
    answers = fees_estimates(parts.client, US, requests)
    failed = {r.asin for r in requests if "error" in answers[r]}
    batches = [c["asins"] for c in operation_calls(emulator, "getMyFeesEstimates")]
    assert len(batches) == 2 and 0 < len(failed) < len(requests)
    assert failed <= set(batches[1]) < set(batches[0])  # only items that failed were asked again
    for r in requests:
        if r.asin in failed:
            assert answers[r]["error"]["code"] == "UPSTREAM_ERROR" and "ServiceError" in answers[r]["error"]["message"]
        else:
            assert facts(answers[r]) == rate_card(r.asin, 20.0)


def test_a_call_that_fails_as_a_whole_fails_only_its_own_items(make_client, emulator):
    emulator.configure(plans=FAMILY_PLANS, fault_rate=1.0)
    parts = make_client(max_retries=0)
    requests = [FeeRequest(asin, 20.0) for asin in synthetic_asins(3)]
    answers = fees_estimates(parts.client, US, requests)
    assert {answers[r]["error"]["code"] for r in requests} == {"UPSTREAM_ERROR"}
    assert len(operation_calls(emulator, "getMyFeesEstimates")) == 1


def test_no_requests_make_no_call(fees_client, emulator):
    assert fees_estimates(fees_client.client, US, []) == {}
    assert operation_calls(emulator, "getMyFeesEstimates") == []
