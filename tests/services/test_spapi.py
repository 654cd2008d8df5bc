"""SpApiClient, the one module on python-amazon-sp-api, over real HTTP to the emulator: payloads, pages, failures, tokens.

Judged by what it answers, the ServiceError it raises, and the emulator's call log. The emulator's
plan and the client's are raised to 50 calls/s so that no test waits for a slot; retry delays are
recorded, not slept (tests/helpers/spapi.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from emulator import EmulatorServer
from emulator.catalog import build_item
from emulator.identifiers import two_asin_upc
from services.errors import ServiceError
from services.spapi import FAMILIES, INCLUDED_DATA, CallCount, Lanes, failure_code, is_retryable, operation_of, translate
from tests.helpers.data import synthetic_asins
from tests.helpers.emulator_log import operation_calls
from utils.marketplaces import MARKETPLACES
from utils.rate_limit import Plan

US = MARKETPLACES["US"]
SANDBOX_UPC = "887276302195"
WRONG_LWA = {"lwa_app_id": "amzn1.application-oa2-client.wrong", "lwa_client_secret": "wrong", "sp_api_refresh_token": "Atzr|wrong"}


def statuses(emulator: EmulatorServer, operation: str) -> list[int | str]:
    return [call["status"] for call in operation_calls(emulator, operation)]


# -- what comes back ------------------------------------------------------------------------------


def test_get_catalog_item_answers_the_item_with_the_datasets_the_facts_need(make_client, emulator):
    parts, count = make_client(), CallCount()
    item = parts.client.get_catalog_item(US, "B07N4M94X4", count)
    assert item == build_item("B07N4M94X4", US.marketplace_id, INCLUDED_DATA)
    assert set(item) == {"asin", *INCLUDED_DATA}
    (call,) = operation_calls(emulator, "getCatalogItem")
    assert (call["asins"], call["marketplace_id"], call["status"]) == (["B07N4M94X4"], US.marketplace_id, 200)
    assert count.sent == 1
    assert parts.health.snapshot()["last_success"]["operation"] == "getCatalogItem"


def test_a_search_by_asin_answers_the_items_that_exist_in_one_call(make_client, emulator):
    parts, count = make_client(), CallCount()
    asins = [*synthetic_asins(3), "NF00000001"]
    items = parts.client.search_catalog_items(US, asins, count)
    assert sorted(item["asin"] for item in items) == synthetic_asins(3)
    assert all(item == build_item(item["asin"], US.marketplace_id, INCLUDED_DATA) for item in items)
    (call,) = operation_calls(emulator, "searchCatalogItems")
    assert (call["asins"], call["identifiers_type"]) == (asins, "ASIN")
    assert count.sent == 1


def test_a_search_by_upc_names_its_identifiers_type(make_client, emulator):
    items = make_client().client.search_catalog_items_by_identifiers(US, [SANDBOX_UPC], "UPC")
    assert [item["asin"] for item in items] == ["B07N4M94X4"]
    (call,) = operation_calls(emulator, "searchCatalogItems")
    assert (call["asins"], call["identifiers_type"]) == ([SANDBOX_UPC], "UPC")


def test_more_than_20_identifiers_are_refused_before_anything_is_sent(make_client, emulator):
    client = make_client().client
    with pytest.raises(ValueError, match="at most 20"):
        client.search_catalog_items(US, synthetic_asins(21))
    assert emulator.calls()["total"] == 0
    assert len(client.search_catalog_items(US, synthetic_asins(20))) == 20
    assert [len(call["asins"]) for call in operation_calls(emulator, "searchCatalogItems")] == [20]


def test_every_page_is_followed_and_counted(make_client, emulator):
    emulator.configure(page_size_cap=7)
    parts, count = make_client(), CallCount()
    items = parts.client.search_catalog_items(US, synthetic_asins(20), count)
    assert sorted(item["asin"] for item in items) == synthetic_asins(20)  # each once, none lost between pages
    assert statuses(emulator, "searchCatalogItems") == [200, 200, 200]  # pages of 7, 7 and 6
    assert count.sent == 3


def test_a_code_of_two_items_pages_to_both(make_client, emulator):
    emulator.configure(page_size_cap=1)
    upc, pair = two_asin_upc(0)
    items = make_client().client.search_catalog_items_by_identifiers(US, [upc], "UPC")
    assert sorted(item["asin"] for item in items) == sorted(pair)
    assert statuses(emulator, "searchCatalogItems") == [200, 200]


# -- the library's exceptions, as the emulator provokes them ------------------------------------------


def _get(asin: str) -> Callable[[Any], Any]:
    return lambda library: library.get_catalog_item(asin, marketplaceIds=[US.marketplace_id], includedData=INCLUDED_DATA)


def _search(**params: Any) -> Callable[[Any], Any]:
    return lambda library: library.search_catalog_items(marketplaceIds=[US.marketplace_id], identifiersType="ASIN", **params)


@pytest.mark.parametrize(
    ("options", "settings", "call", "code", "retryable", "fragment"),
    [
        pytest.param({}, {}, _get("NF00000001"), "NOT_FOUND", False, "'NF00000001' not found", id="404"),
        pytest.param(
            {}, {}, _search(identifiers="B0TEST0001", pageToken="bogus"), "UPSTREAM_REJECTED", False, "HTTP 400", id="400 pageToken"
        ),
        pytest.param(
            {}, {}, _search(identifiers=",".join(synthetic_asins(21))), "UPSTREAM_REJECTED", False, "at most 20 values", id="400 21 ASINs"
        ),
        pytest.param(
            {"fault_rate": 1.0, "fault_statuses": [422]}, {}, _get("B0TEST0001"), "UPSTREAM_REJECTED", False, "HTTP 422", id="422"
        ),
        pytest.param({"fault_rate": 1.0, "fault_statuses": [500]}, {}, _get("B0TEST0001"), "UPSTREAM_ERROR", True, "HTTP 500", id="500"),
        pytest.param({"fault_rate": 1.0, "fault_statuses": [502]}, {}, _get("B0TEST0001"), "UPSTREAM_ERROR", True, "HTTP 502", id="502"),
        pytest.param({"fault_rate": 1.0, "fault_statuses": [503]}, {}, _get("B0TEST0001"), "UPSTREAM_ERROR", True, "HTTP 503", id="503"),
        pytest.param({"fault_rate": 1.0, "fault_statuses": [504]}, {}, _get("B0TEST0001"), "UPSTREAM_ERROR", True, "HTTP 504", id="504"),
        pytest.param({"token_ttl": 0, "announced_token_ttl": 3600}, {}, _get("B0TEST0001"), "AUTH_FAILED", False, "403", id="403 token"),
        pytest.param({"drop_rate": 1.0}, {}, _get("B0TEST0001"), "UPSTREAM_UNAVAILABLE", True, "Connection to SP-API failed", id="dropped"),
        pytest.param({}, WRONG_LWA, _get("B0TEST0001"), "AUTH_FAILED", False, "invalid_client", id="LWA refused"),
        pytest.param(
            {"token_fault_rate": 1.0}, {}, _get("B0TEST0001"), "UPSTREAM_ERROR", True, "Login with Amazon failed (HTTP 500)", id="LWA 500"
        ),
    ],
)
def test_the_librarys_exceptions_from_the_emulator_become_the_services_codes(
    make_client, emulator, options, settings, call, code, retryable, fragment
):
    emulator.configure(**options)
    # The library client SpApiClient sends through (its transport, its LWA client), called directly: the library raises.
    library = make_client(**settings).client._client(US)
    with pytest.raises(Exception) as raised:
        call(library)
    exc = raised.value
    assert not isinstance(exc, ServiceError)
    assert (failure_code(exc), is_retryable(exc)) == (code, retryable)
    failure = translate(exc, "getCatalogItem", 2 if retryable else 0)
    assert failure.code == code and fragment in failure.message, failure.message
    assert ("after 2 retries" in failure.message) == retryable


# -- retries, health and the circuit ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "lookup", "code", "sent", "health"),
    [
        pytest.param({}, ("get", "NF00000001"), "NOT_FOUND", [404], "ok", id="404 not retried, SP-API is fine"),
        pytest.param({}, ("search", "SKU"), "UPSTREAM_REJECTED", [400], "ok", id="400 not retried"),
        pytest.param({"fault_rate": 1.0, "fault_statuses": [422]}, ("get", "B0TEST0001"), "UPSTREAM_REJECTED", [422], "ok", id="422"),
        pytest.param(
            {"fault_rate": 1.0, "fault_statuses": [500]}, ("get", "B0TEST0001"), "UPSTREAM_ERROR", [500] * 3, "degraded", id="500"
        ),
        pytest.param({"fault_rate": 1.0, "fault_statuses": [503]}, ("search", "ASIN"), "UPSTREAM_ERROR", [503] * 3, "degraded", id="503"),
        pytest.param({"drop_rate": 1.0}, ("get", "B0TEST0001"), "UPSTREAM_UNAVAILABLE", ["dropped"] * 3, "degraded", id="dropped"),
    ],
)
def test_a_failure_is_retried_max_retries_times_only_when_asking_again_can_help(make_client, emulator, options, lookup, code, sent, health):
    emulator.configure(**options)
    parts, count = make_client(max_retries=2), CallCount()
    kind, value = lookup
    with pytest.raises(ServiceError) as raised:
        if kind == "get":
            parts.client.get_catalog_item(US, value, count)
        else:  # identifiersType SKU without a sellerId is refused by SP-API
            parts.client.search_catalog_items_by_identifiers(US, ["B0TEST0001"], value, count)
    assert raised.value.code == code
    operation = "getCatalogItem" if kind == "get" else "searchCatalogItems"
    assert statuses(emulator, operation) == sent
    assert count.sent == len(sent) and len(parts.sleeps) == len(sent) - 1
    assert ("after 2 retries" in raised.value.message) == (len(sent) > 1)
    assert parts.health.snapshot()["status"] == health
    # Only SP-API failing (not SP-API saying no) counts towards opening the region's circuit.
    assert parts.client.circuits.snapshot()["NA"]["consecutive_failures"] == (1 if health == "degraded" else 0)


def test_sp_api_429s_after_the_retries_are_throttled_with_a_retry_after(make_client, emulator):
    # SP-API grants one call per 100 s but announces 50/s: the client keeps to 50/s and meets 429s.
    emulator.configure(rate=0.01, burst=1, announced_rate=50)
    parts, count = make_client(max_retries=2), CallCount()
    parts.client.get_catalog_item(US, "B0TEST0001")
    with pytest.raises(ServiceError) as raised:
        parts.client.get_catalog_item(US, "B0TEST0002", count)
    assert (raised.value.code, raised.value.retry_after) == ("THROTTLED", 1.0)
    assert "after 2 retries" in raised.value.message
    assert statuses(emulator, "getCatalogItem") == [200, 429, 429, 429]
    assert count.sent == 3
    assert parts.client.circuits.snapshot()["NA"]["consecutive_failures"] == 0  # SP-API is up, only busy


def test_call_count_is_what_went_on_the_wire_and_nothing_for_a_call_the_limiter_refused(make_client, emulator):
    # A plan of one call per 100 s, as SP-API announces it: the second call would wait beyond REQUEST_TIMEOUT.
    emulator.configure(rate=0.01, burst=1)
    parts = make_client(sp_api_rate=0.01, sp_api_burst=1, request_timeout=1)
    first, second = CallCount(), CallCount()
    parts.client.get_catalog_item(US, "B0TEST0001", first)
    with pytest.raises(ServiceError) as raised:
        parts.client.get_catalog_item(US, "B0TEST0002", second)
    assert raised.value.code == "THROTTLED" and raised.value.retry_after > 90
    assert (first.sent, second.sent, len(operation_calls(emulator, "getCatalogItem"))) == (1, 0, 1)
    assert parts.sleeps == []  # our own limiter's no is not retried at once
    assert parts.health.snapshot()["status"] == "ok"  # nor is it SP-API failing


def test_threads_in_every_marketplace_of_a_region_share_one_token_fetch(make_client, emulator):
    emulator.configure(token_delay=0.3)  # the first fetch is still under way when the other threads ask
    parts = make_client()
    marketplaces = [MARKETPLACES[code] for code in ("US", "CA", "MX")] * 3
    barrier = threading.Barrier(len(marketplaces))

    def search(index: int) -> list[str]:
        barrier.wait()
        asins = synthetic_asins(2, start=2 * index)
        return sorted(item["asin"] for item in parts.client.search_catalog_items(marketplaces[index], asins))

    with ThreadPoolExecutor(len(marketplaces)) as pool:
        found = list(pool.map(search, range(len(marketplaces))))
    assert found == [synthetic_asins(2, start=2 * i) for i in range(len(marketplaces))]
    assert emulator.calls()["by_operation"]["lwaToken"] == {"200": 1}
    assert parts.client.tokens.fetches == 1


def test_each_operation_has_a_lane_as_wide_as_its_burst():
    """A process keeps at most a burst's worth of one operation's calls in flight; another operation has a lane of its own."""
    from utils.rate_limit import CallLimiter, Plan

    limiter = CallLimiter(window_calls=1000, window_seconds=60, default_plan=Plan(2.0, 2))
    lanes = Lanes(limiter)
    catalog = lanes.lane("NA/searchCatalogItems")
    assert catalog is lanes.lane("NA/searchCatalogItems")
    assert catalog.acquire(blocking=False) and catalog.acquire(blocking=False)
    assert not catalog.acquire(blocking=False)  # a third call of the operation waits its turn in this process
    other = lanes.lane("NA/getCatalogItem")
    assert other.acquire(blocking=False)  # ... while another operation's goes on


@pytest.mark.parametrize(
    ("method", "path", "operation"),
    [
        ("GET", "/catalog/2022-04-01/items", "searchCatalogItems"),
        ("GET", "/catalog/2022-04-01/items/B07N4M94X4", "getCatalogItem"),
        ("GET", "/products/pricing/v0/competitivePrice", "getCompetitivePricing"),
        ("GET", "/products/pricing/v0/items/B07N4M94X4/offers", "getItemOffers"),
        ("POST", "/batches/products/pricing/v0/itemOffers", "getItemOffersBatch"),
        ("POST", "/products/fees/v0/items/B07N4M94X4/feesEstimate", "getMyFeesEstimateForASIN"),
        ("POST", "/products/fees/v0/feesEstimate", "getMyFeesEstimates"),
        ("GET", "/listings/2021-08-01/restrictions", "getListingsRestrictions"),
        ("GET", "/fba/inbound/v1/eligibility/itemPreview", "getItemEligibilityPreview"),
        ("POST", "/catalog/2022-04-01/items", "unknown"),
    ],
)
def test_each_request_is_paced_on_its_own_operations_bucket(method, path, operation):
    assert operation_of(method, f"https://sellingpartnerapi-na.amazon.com{path}?MarketplaceId=ATVPDKIKX0DER") == operation


def test_every_family_calls_through_the_guarded_transport_on_its_own_plan(make_client, emulator):
    """A Product Pricing call made with the family's library client: paced on its model's plan, counted, on the wire once."""
    emulator.configure(plans={"getItemOffers": [50.0, 5]})
    parts, count = make_client(), CallCount()
    response = parts.client.call(
        US, "getItemOffers", 1, lambda client: client.get_item_offers("B0TEST0001", "New"), count, family="pricing"
    )
    assert response.payload["ASIN"] == "B0TEST0001" and count.sent == 1
    assert [c["asins"] for c in operation_calls(emulator, "getItemOffers")] == [["B0TEST0001"]]
    # Before SP-API says otherwise, an operation starts from its documented plan, not SP_API_RATE's.
    assert parts.limiter.default_plan("NA/getItemOffersBatch") == Plan(0.1, 1)
    assert parts.limiter.default_plan("NA/searchCatalogItems") == Plan(50.0, 50)
    # The emulator announced its plan for the call: the pace follows it.
    assert parts.limiter.plan("NA/getItemOffers").rate == 50.0
    assert set(FAMILIES) == {"catalog", "pricing", "fees", "restrictions", "eligibility"}


def test_items_that_fail_inside_a_batchs_answer_are_asked_again_alone(make_client):
    """Only the failed items go again, on the retry schedule, until they succeed or the retries run out."""
    parts = make_client(max_retries=3, retry_delay_base=2.0, retry_delay_max=60.0)
    asked: list[list[str]] = []
    failing = {"B": 1, "C": 99}  # B fails once, C every time

    def fetch(keys: list[str]) -> dict[str, str]:
        asked.append(keys)
        answers = {}
        for key in keys:
            failing_left = failing.get(key, 0)
            failing[key] = failing_left - 1
            answers[key] = "500" if failing_left > 0 else "ok"
        return answers

    answers = parts.client.retry_items("getItemOffersBatch", US, ["A", "B", "C"], fetch, lambda answer: answer == "500")
    assert answers == {"A": "ok", "B": "ok", "C": "500"}
    assert asked == [["A", "B", "C"], ["B", "C"], ["C"], ["C"]]
    assert parts.sleeps == [2.0, 4.0, 8.0]  # RETRY_DELAY_BASE ** n, as for whole calls
