"""Fault injection: SP-API failing, dropping connections, slow, down altogether, or refusing tokens mid-batch.

Each case runs the app in-process against the emulator over real HTTP (python-amazon-sp-api is
never mocked), with the faults and settings it states, and asserts what a caller would notice:
every position of a batch answered once and in order, the share that succeeded, the error codes,
/health, and, from the emulator's call log, how many SP-API and LWA calls it took. Wall times
are recorded as figures (tests/reliability/RESULTS.md), never asserted: the time a case may take
is bounded structurally, by the number of calls each lookup may make.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from emulator import EmulatorServer
from tests.helpers.emulator_log import operation_calls
from tests.helpers.fake_clock import FakeClock
from tests.helpers.tcp_listener import CountingListener

# searchCatalogItems takes 20 ASINs a call (Catalog Items 2022-04-01), so a batch of 500 is 25 chunks.
CHUNK = 20


def asins(prefix: str, count: int) -> list[str]:
    """`count` distinct ASINs the emulator finds (10 letters/digits, not starting NF)."""
    return [f"{prefix}{i:04d}" for i in range(count)]


def wait_until(condition: Callable[[], bool], what: str, seconds: float = 10.0) -> None:
    """Poll `condition` every 10 ms; fail naming `what` if it is still false after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.01)


# ---------------------------------------------------------------------------------------------------------------------
# 20% 500/503, 5% dropped connections, 5% answers slower than REQUEST_TIMEOUT


REQUEST_TIMEOUT = 0.5
# Per attempt about 28% of calls fail (0.05 + 0.95 * 0.2 + 0.76 * 0.05); a chunk is lost only if all
# 1 + MAX_RETRIES of its attempts fail: 0.28 ** 9 ≈ 1e-5 per chunk, 2.5e-4 for the 25 chunks.
MAX_RETRIES = 8


def test_a_500_asin_batch_survives_5xx_dropped_connections_and_slow_answers(make_app, emulator, figures, caplog):
    """20% 500/503 + 5% dropped + 5% slower than REQUEST_TIMEOUT: 500 entries, in order, each once, >= 99% succeeded."""
    # A plan fast enough (50/s, burst 50) that only the injected faults shape the run.
    emulator.configure(
        rate=50, burst=50, fault_rate=0.2, fault_statuses=[500, 503], drop_rate=0.05, slow_rate=0.05, slow_seconds=1.5, seed=11
    )
    client = make_app(
        sp_api_rate=50,
        sp_api_burst=50,
        request_timeout=REQUEST_TIMEOUT,
        max_retries=MAX_RETRIES,
        retry_delay_base=1.0,
        retry_delay_max=0.05,
        max_batch_size=500,
    ).test_client()
    requested = asins("B0FALT", 500)
    caplog.set_level(logging.WARNING, logger="services.spapi")

    response = client.post("/asin/batch/US", json={"asins": requested})

    assert response.status_code == 200
    body = response.get_json()
    figures.batch(requested, body["results"])
    assert [entry["asin"] for entry in body["results"]] == requested  # every position, in order, once
    assert body["total_requested"] == 500
    failed = [(e["asin"], e["error"]) for e in body["results"] if not e["success"]]
    assert body["successful"] >= 495, failed

    searches = operation_calls(emulator, "searchCatalogItems")
    figures.sp_api_calls = len(searches)
    # The faults did happen: 5xx and dropped connections in the emulator's log, read timeouts in the service's.
    statuses = Counter(str(call["status"]) for call in searches)
    assert statuses["500"] + statuses["503"] > 0 and statuses["dropped"] > 0, statuses
    assert any("ReadTimeout" in record.getMessage() for record in caplog.records), "no answer was slower than REQUEST_TIMEOUT"
    # Each ASIN went to SP-API in exactly one chunk of 20, however often that chunk was retried.
    chunks = Counter(tuple(call["asins"]) for call in searches)
    assert len(chunks) == 500 // CHUNK
    assert sorted(asin for chunk in chunks for asin in chunk) == sorted(requested)
    # Bounded: no chunk tried more than 1 + MAX_RETRIES times, so the batch took at most that many
    # rounds of REQUEST_TIMEOUT plus retry delays.
    assert max(chunks.values()) <= 1 + MAX_RETRIES
    assert len(searches) <= (500 // CHUNK) * (1 + MAX_RETRIES)
    assert body["api_calls"] == len(searches)


# ---------------------------------------------------------------------------------------------------------------------
# SP-API fully down


CIRCUIT_FAILURES = 3
CIRCUIT_COOLDOWN = 30.0  # passes on the circuits' fake clock, not in real time


def test_with_sp_api_down_a_batch_fails_fast_behind_an_open_circuit_and_recovers(make_app, emulator, figures):
    """Every connection reset: UPSTREAM_UNAVAILABLE for every entry, the circuit opens, calls stop, /health degraded; then recovery."""
    with CountingListener() as down:  # every connection accepted, counted and reset at once (no HTTP answer)
        # SP-API's regional endpoint is down; Login with Amazon still answers. One chunk at a time,
        # so the circuit opens after exactly CIRCUIT_FAILURES chunks.
        app = make_app(
            sp_api_endpoint=down.url,
            lwa_endpoint=emulator.url + "/auth/o2/token",
            circuit_failures=CIRCUIT_FAILURES,
            circuit_cooldown=CIRCUIT_COOLDOWN,
            max_retries=2,
            max_workers=1,
            max_batch_size=500,
        )
        clock = FakeClock()
        app.extensions["spapi"].circuits.clock = clock
        client = app.test_client()
        requested = asins("B0DOWN", 200)  # 10 chunks

        body = client.post("/asin/batch/US", json={"asins": requested}).get_json()
        figures.batch(requested, body["results"])
        assert [entry["asin"] for entry in body["results"]] == requested
        assert [entry["error"]["code"] for entry in body["results"]] == ["UPSTREAM_UNAVAILABLE"] * 200
        # 3 chunks x (1 + 2 retries) connections; the other 7 chunks failed fast without one.
        assert down.connections == CIRCUIT_FAILURES * 3

        health = client.get("/health").get_json()
        assert health["status"] == "degraded"
        assert health["sp_api"]["circuits"]["NA"]["state"] == "open"
        assert health["sp_api"]["circuits"]["EU"]["state"] == "closed"  # one circuit per region

        single = client.get("/asin/B0DOWN0000")
        figures.by_design()
        assert single.status_code == 503 and single.get_json()["error"]["code"] == "UPSTREAM_UNAVAILABLE"
        again = client.post("/asin/batch/US", json={"asins": requested}).get_json()
        figures.batch(requested, again["results"])
        assert {entry["error"]["code"] for entry in again["results"]} == {"UPSTREAM_UNAVAILABLE"}
        assert down.connections == CIRCUIT_FAILURES * 3  # fail fast: not one more connection while open

    # SP-API is back on the same port (the same emulator, so the token LWA issued is valid there).
    recovered = EmulatorServer(port=down.port)
    recovered.app = emulator.app
    recovered.start()
    try:
        # Within the cooldown the circuit stays open: nothing reaches SP-API yet.
        clock.advance(CIRCUIT_COOLDOWN - 1)
        early = client.get("/asin/B0DOWN0001")
        figures.by_design()
        assert early.status_code == 503 and early.get_json()["error"]["code"] == "UPSTREAM_UNAVAILABLE"
        assert operation_calls(emulator, "getCatalogItem") == []

        clock.advance(1)  # the cooldown is over
        probe = client.get("/asin/B0DOWN0002")
        assert probe.status_code == 200 and probe.get_json()["success"] is True
        assert len(operation_calls(emulator, "getCatalogItem")) == 1  # one probe call, half-open
        health = client.get("/health").get_json()
        assert health["sp_api"]["circuits"]["NA"]["state"] == "closed"
        assert health["status"] == "ok"

        after = client.post("/asin/batch/US", json={"asins": requested}).get_json()
        figures.batch(requested, after["results"])
        assert after["successful"] == 200  # nothing of the outage was cached
        figures.sp_api_calls = len([c for c in emulator.calls()["calls"] if c["operation"] != "lwaToken"]) + down.connections
    finally:
        recovered.stop()


# ---------------------------------------------------------------------------------------------------------------------
# Tokens: LWA failing, and an access token expiring mid-batch


def test_a_token_request_lwa_does_not_answer_in_time_is_made_once_more_and_nothing_is_lost(make_app, emulator, figures):
    """LWA answers the first token request later than REQUEST_TIMEOUT: one more token request, every entry found."""
    # A token request slower than REQUEST_TIMEOUT (the 500 case is the next test).
    emulator.configure(token_delay=3.0, rate=50, burst=50)
    # 1.5 s: well under the 3 s LWA takes, and room for five chunks answered side by side on a busy machine.
    app = make_app(request_timeout=1.5, sp_api_rate=50, sp_api_burst=50, max_batch_size=500)
    client = app.test_client()
    requested = asins("B0LWAS", 500)

    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(client.post, "/asin/batch/US", json={"asins": requested})
        wait_until(lambda: bool(operation_calls(emulator, "lwaToken")), "the first token request")
        # LWA is healthy again long before the service gives up on the first request (REQUEST_TIMEOUT).
        emulator.configure(token_delay=0.0)
        response = pending.result()

    body = response.get_json()
    figures.batch(requested, body["results"])
    assert [entry["asin"] for entry in body["results"]] == requested
    assert body["successful"] == 500
    tokens = operation_calls(emulator, "lwaToken")
    assert len(tokens) == 2  # the one the service gave up on (logged on arrival) and exactly one more
    assert app.extensions["spapi"].tokens.fetches == 1  # one token obtained, shared by every chunk
    searches = operation_calls(emulator, "searchCatalogItems")
    figures.sp_api_calls = len(searches)
    assert [call["status"] for call in searches] == [200] * (500 // CHUNK)  # no chunk went out without a token


def test_lwa_answering_500_is_retried_and_nothing_is_lost(make_app, emulator, figures):
    """LWA answers 500 server_error to token requests until the third: retried, one token, every entry found."""
    emulator.configure(token_fault_rate=1.0, rate=50, burst=50)
    app = make_app(sp_api_rate=50, sp_api_burst=50, max_batch_size=500, max_retries=5)
    client = app.test_client()
    requested = asins("B0LW5X", 200)

    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(client.post, "/asin/batch/US", json={"asins": requested})
        wait_until(lambda: len(operation_calls(emulator, "lwaToken")) >= 2, "two failed token requests")
        emulator.configure(token_fault_rate=0.0)  # LWA recovers
        response = pending.result()

    body = response.get_json()
    figures.batch(requested, body["results"])
    assert [entry["asin"] for entry in body["results"]] == requested
    assert body["successful"] == 200
    statuses = [call["status"] for call in operation_calls(emulator, "lwaToken")]
    assert statuses.count(500) >= 2 and statuses.count(200) == 1 and statuses[-1] == 200
    assert app.extensions["spapi"].tokens.fetches == 1
    searches = operation_calls(emulator, "searchCatalogItems")
    figures.sp_api_calls = len(searches)
    assert [call["status"] for call in searches] == [200] * (200 // CHUNK)  # no chunk went out without a token


def test_an_access_token_expiring_mid_batch_is_replaced_once_and_nothing_is_lost(make_app, emulator, figures):
    """LWA says the token lives an hour; SP-API expires it after 1 s, while a 500-ASIN batch runs: one new token, 500 found."""
    # python-amazon-sp-api would keep the token for 3,200 s whatever expires_in says; the service
    # keeps it for what LWA announces (an hour), so SP-API's 403 "expired" is what tells it.
    # The service paces at 10/s with no burst; the emulator's burst of 2 absorbs loopback jitter.
    emulator.configure(token_ttl=1, announced_token_ttl=3600, rate=10, burst=2)
    app = make_app(sp_api_rate=10, sp_api_burst=1, max_batch_size=500)
    client = app.test_client()
    assert client.get("/asin/B0EXPR9999").status_code == 200  # the service now holds a token that dies 1 s later
    emulator.configure(token_ttl=3600)  # its replacement lives the hour announced
    requested = asins("B0EXPR", 500)

    # Paced at 10 calls/s without burst, the 25 chunks need at least 2.4 s: the token expires while they run.
    body = client.post("/asin/batch/US", json={"asins": requested}).get_json()
    figures.batch(requested, body["results"])
    assert [entry["asin"] for entry in body["results"]] == requested
    assert body["successful"] == 500, [e["error"] for e in body["results"] if not e["success"]][:3]

    assert emulator.calls()["by_operation"]["lwaToken"] == {"200": 2}  # the first token and exactly one replacement
    searches = operation_calls(emulator, "searchCatalogItems")
    figures.sp_api_calls = len(searches) + 1
    statuses = Counter(call["status"] for call in searches)
    assert statuses[403] >= 1, "SP-API never refused the expired token"
    assert set(statuses) == {200, 403}
    assert Counter(tuple(c["asins"]) for c in searches if c["status"] == 200) == Counter(
        {tuple(requested[i : i + CHUNK]): 1 for i in range(0, 500, CHUNK)}
    )  # every chunk answered exactly once
    assert client.get("/health").get_json()["status"] == "ok"
