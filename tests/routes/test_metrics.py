"""GET /metrics in one process (the Flask test client): what requests, SP-API calls and the cache add.

The default registry is global to the test process, so every test compares two scrapes.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from prometheus_client import CONTENT_TYPE_LATEST

from tests.helpers.metrics_scrape import delta, parse, series


def scrape(client) -> dict:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == CONTENT_TYPE_LATEST
    return parse(response.get_data(as_text=True))


def grown(before: dict, after: dict, name: str, *labels: str) -> Counter:
    return delta(series(before, name, *labels), series(after, name, *labels))


def test_requests_calls_and_cache_lookups_are_counted(app, client, emulator):
    cache = app.extensions["asin_service"].cache
    cache_before = cache.stats()
    before = scrape(client)
    assert client.get("/asin/B07N4M94X4").status_code == 200
    assert client.get("/asin/B07N4M94X4").get_json()["cached"] is True
    assert client.get("/asin/NF00000001").status_code == 404
    assert client.post("/asin/batch/US", json={"asins": ["B07N4M94X4", "B0TEST0001"]}).get_json()["successful"] == 2
    assert client.get("/nowhere/B07N4M94X4").status_code == 404
    assert client.open("/health", method="FROB").status_code == 405
    after = scrape(client)

    # The route is the URL rule: no ASIN (or any other piece of a raw path) becomes a label value.
    assert grown(before, after, "fba_http_requests_total", "method", "route", "status") == Counter(
        {
            ("GET", "/metrics", "200"): 1,  # the first scrape (a scrape counts once it has answered)
            ("GET", "/asin/<anypath:asin>", "200"): 2,
            ("GET", "/asin/<anypath:asin>", "404"): 1,
            ("POST", "/asin/batch/<country>", "200"): 1,
            ("GET", "unmatched", "404"): 1,
            ("other", "unmatched", "405"): 1,
        }
    )
    assert grown(before, after, "fba_http_request_duration_seconds_count", "method", "route") == Counter(
        {
            ("GET", "/metrics"): 1,
            ("GET", "/asin/<anypath:asin>"): 3,
            ("POST", "/asin/batch/<country>"): 1,
            ("GET", "unmatched"): 1,
            ("other", "unmatched"): 1,
        }
    )
    label_values = {value for _, labels in after for _, value in labels}
    assert not {v for v in label_values if "B07N4M94X4" in v or "NF0" in v or "nowhere" in v}

    # SP-API calls as the emulator saw them (the fixture reset its log for this test).
    upstream = {
        (op, status): n for op, statuses in emulator.calls()["by_operation"].items() if op != "lwaToken" for status, n in statuses.items()
    }
    assert upstream == {("getCatalogItem", "200"): 1, ("getCatalogItem", "404"): 1, ("searchCatalogItems", "200"): 1}
    assert grown(before, after, "fba_spapi_calls_total", "operation", "status") == Counter(upstream)
    assert grown(before, after, "fba_spapi_call_duration_seconds_count", "operation") == Counter(
        {("getCatalogItem",): 2, ("searchCatalogItems",): 1}
    )
    assert grown(before, after, "fba_limiter_wait_seconds_count", "operation") == Counter(
        {("getCatalogItem",): 2, ("searchCatalogItems",): 1}
    )
    assert grown(before, after, "fba_spapi_throttled_total", "operation") == Counter()
    assert grown(before, after, "fba_spapi_retries_total", "operation", "reason") == Counter()

    # Hits: the second GET and the batch's B07N4M94X4; misses: the first GET, NF00000001, B0TEST0001.
    lookups = grown(before, after, "fba_cache_lookups_total", "result")
    assert lookups == Counter({("hit",): 2, ("miss",): 3})
    cache_after = cache.stats()
    assert (cache_after["hits"] - cache_before["hits"], cache_after["misses"] - cache_before["misses"]) == (2, 3)


@pytest.mark.parametrize(
    ("emulator_options", "app_options", "calls", "retries"),
    [
        pytest.param({"fault_rate": 1.0, "fault_statuses": [500]}, {"max_retries": 2}, {"500": 3}, {"500": 2}, id="500"),
        pytest.param({"drop_rate": 1.0}, {"max_retries": 2}, {"error": 3}, {"connection": 2}, id="dropped connection"),
        pytest.param(
            {"slow_rate": 1.0, "slow_seconds": 1.5}, {"request_timeout": 0.5, "max_retries": 1}, {"error": 2}, {"timeout": 1}, id="timeout"
        ),
    ],
)
def test_failed_calls_and_their_retries_are_counted(make_app, emulator, emulator_options, app_options, calls, retries):
    emulator.configure(**emulator_options)
    client = make_app(**app_options).test_client()
    before = scrape(client)
    assert client.get("/asin/B0TEST0001").status_code >= 500
    after = scrape(client)
    assert grown(before, after, "fba_spapi_calls_total", "operation", "status") == Counter(
        {("getCatalogItem", status): n for status, n in calls.items()}
    )
    assert grown(before, after, "fba_spapi_retries_total", "operation", "reason") == Counter(
        {("getCatalogItem", reason): n for reason, n in retries.items()}
    )
    assert len([c for c in emulator.calls()["calls"] if c["operation"] == "getCatalogItem"]) == sum(calls.values())


def test_429s_are_counted_as_throttled_and_retried(make_app, emulator):
    # The service believes in a plan 100x what the emulator grants (which keeps announcing 20/s): 429s.
    emulator.configure(rate=0.2, burst=1, announced_rate=20)
    client = make_app(sp_api_rate=20, sp_api_burst=5, max_retries=2).test_client()
    before = scrape(client)
    assert [client.get(f"/asin/B0TEST000{i}").status_code for i in range(3)] == [200, 503, 503]
    after = scrape(client)
    assert emulator.calls()["by_operation"]["getCatalogItem"] == {"200": 1, "429": 6}
    assert grown(before, after, "fba_spapi_calls_total", "operation", "status") == Counter(
        {("getCatalogItem", "200"): 1, ("getCatalogItem", "429"): 6}
    )
    assert grown(before, after, "fba_spapi_throttled_total", "operation") == Counter({("getCatalogItem",): 6})
    # Each of the two throttled lookups: a first try and two retries.
    assert grown(before, after, "fba_spapi_retries_total", "operation", "reason") == Counter({("getCatalogItem", "429"): 4})
    # Every call waited for the limiter, and after the 429s the waits are real (the pace halved each time).
    assert grown(before, after, "fba_limiter_wait_seconds_count", "operation") == Counter({("getCatalogItem",): 7})
    waited = grown(before, after, "fba_limiter_wait_seconds_sum", "operation")[("getCatalogItem",)]
    assert waited > 0


def test_cache_failures_are_counted(make_app, emulator, tmp_path: Path):
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    client = make_app(data_dir=str(not_a_directory), rate_limit_backend="memory").test_client()
    before = scrape(client)
    assert client.get("/asin/B07N4M94X4").status_code == 200
    after = scrape(client)
    assert grown(before, after, "fba_cache_errors_total", "operation") == Counter({("open",): 1})
    assert grown(before, after, "fba_cache_lookups_total", "result") == Counter({("miss",): 1})
