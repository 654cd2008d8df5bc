"""When SP-API throttles, fails, is slow or refuses the credentials: codes, statuses, retries, health."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from emulator import EmulatorOptions, EmulatorServer
from emulator import defaults as emulator_defaults
from tests.helpers.emulator_log import operation_calls
from tests.helpers.fake_clock import FakeClock


def test_batch_of_100_survives_30_percent_failures(make_app, emulator):
    emulator.configure(fault_rate=0.2, drop_rate=0.1, seed=7)
    # One chunk at a time, so the emulator's seeded faults fall on the same calls every run.
    client = make_app(max_retries=5, max_workers=1).test_client()
    asins = [f"B0FLAK{i:04d}" for i in range(100)]
    body = client.post("/asin/batch/US", json={"asins": asins}).get_json()
    assert [entry["asin"] for entry in body["results"]] == asins
    assert body["successful"] == 100, [e["error"] for e in body["results"] if not e["success"]]
    searches = operation_calls(emulator, "searchCatalogItems")
    failures = [c for c in searches if c["status"] != 200]
    assert failures, "the emulator injected failures"
    assert sum(1 for c in searches if c["status"] == 200) == 5
    assert body["api_calls"] == len(searches)  # retries are counted as calls made


def test_exhausted_retries_give_upstream_error_and_degraded_health(make_app, emulator):
    emulator.configure(fault_rate=1.0, fault_statuses=[500])
    client = make_app(max_retries=2).test_client()
    response = client.get("/asin/B0TEST0001")
    assert response.status_code == 502
    assert response.get_json()["error"]["code"] == "UPSTREAM_ERROR"
    assert "after 2 retries" in response.get_json()["error"]["message"]
    assert [c["status"] for c in operation_calls(emulator, "getCatalogItem")] == [500, 500, 500]
    health = client.get("/health").get_json()
    assert health["status"] == "degraded"
    assert health["sp_api"]["last_failure"]["code"] == "UPSTREAM_ERROR"
    # A success puts health back to ok.
    emulator.configure(fault_rate=0.0)
    assert client.get("/asin/B0TEST0001").status_code == 200
    assert client.get("/health").get_json()["status"] == "ok"


def test_batch_with_sp_api_down_answers_every_entry(make_app, emulator):
    emulator.configure(fault_rate=1.0, fault_statuses=[503])
    client = make_app(max_retries=1).test_client()
    asins = [f"B0DOWN{i:04d}" for i in range(30)] + ["bad"]
    body = client.post("/asin/batch/US", json={"asins": asins}).get_json()
    assert len(body["results"]) == 31 and body["successful"] == 0
    assert [e["error"]["code"] for e in body["results"]] == ["UPSTREAM_ERROR"] * 30 + ["INVALID_ASIN"]


def test_slow_sp_api_gives_timeout(make_app, emulator):
    emulator.configure(slow_rate=1.0, slow_seconds=1.5)
    client = make_app(request_timeout=0.5, max_retries=1).test_client()
    response = client.get("/asin/B0TEST0001")
    assert response.status_code == 504
    assert response.get_json()["error"]["code"] == "TIMEOUT"
    assert len(operation_calls(emulator, "getCatalogItem")) == 2  # the first try and one retry


def test_a_caller_beyond_the_plan_gets_throttled_with_retry_after(make_app, emulator):
    # A plan of one call per 100 s (as SP-API announces it too): the second caller would wait far beyond REQUEST_TIMEOUT.
    emulator.configure(rate=0.01, burst=1)
    client = make_app(sp_api_rate=0.01, sp_api_burst=1, request_timeout=2).test_client()
    assert client.get("/asin/B0TEST0001").status_code == 200
    response = client.get("/asin/B0TEST0002")
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "THROTTLED"
    assert int(response.headers["Retry-After"]) >= 90
    assert len(operation_calls(emulator, "getCatalogItem")) == 1  # the refused call never went out


def test_sp_api_429s_are_retried_then_reported_as_throttled(make_app, emulator):
    # The service believes in a plan 100x what the emulator grants (which keeps announcing 20/s): 429s.
    emulator.configure(rate=0.2, burst=1, announced_rate=20)
    client = make_app(sp_api_rate=20, sp_api_burst=5, max_retries=2).test_client()
    responses = [client.get(f"/asin/B0TEST000{i}") for i in range(3)]
    assert [r.status_code for r in responses] == [200, 503, 503]
    assert {r.get_json()["error"]["code"] for r in responses[1:]} == {"THROTTLED"}
    calls = operation_calls(emulator, "getCatalogItem")
    assert [c["status"] for c in calls] == [200] + [429] * 6
    # Each 429 for a call sent at the pace in force halved it: 20/s down to 20 / 2**6.
    pace = client.get("/health").get_json()["rate_limiter"]["operations"]["NA/getCatalogItem"]
    assert pace["slowed_by_429"] and pace["factor"] == pytest.approx(1 / 64, abs=1e-4)


def test_wrong_lwa_credentials_are_auth_failed_not_500(make_app, emulator):
    client = make_app(
        lwa_app_id="amzn1.application-oa2-client.wrong",
        lwa_client_secret="wrong-secret",
        sp_api_refresh_token="Atzr|wrong",
        lwa_endpoint=emulator.url + "/auth/o2/token",
    ).test_client()
    response = client.get("/asin/B07N4M94X4")
    assert response.status_code == 502
    error = response.get_json()["error"]
    assert error["code"] == "AUTH_FAILED" and "invalid_client" in error["message"]
    batch = client.post("/asin/batch/US", json={"asins": ["B07N4M94X4", "B0TEST0001"]}).get_json()
    assert [e["error"]["code"] for e in batch["results"]] == ["AUTH_FAILED", "AUTH_FAILED"]
    health = client.get("/health").get_json()
    assert (health["status"], health["mode"]) == ("degraded", "live")
    assert operation_calls(emulator, "getCatalogItem") == []  # no SP-API call without a token


def test_wrong_refresh_token_is_auth_failed(make_app, emulator):
    client = make_app(
        lwa_app_id=emulator_defaults.CLIENT_ID,
        lwa_client_secret=emulator_defaults.CLIENT_SECRET,
        sp_api_refresh_token="Atzr|revoked",
        lwa_endpoint=emulator.url + "/auth/o2/token",
    ).test_client()
    response = client.get("/asin/B07N4M94X4")
    assert response.status_code == 502
    assert "invalid_grant" in response.get_json()["error"]["message"]


def test_sixteen_concurrent_first_calls_fetch_one_token(make_app, emulator):
    emulator.configure(token_delay=0.5, rate=100, burst=100)
    app = make_app(sp_api_rate=100, sp_api_burst=100)
    service = app.extensions["asin_service"]
    barrier = threading.Barrier(16)

    def lookup(i: int) -> str:
        barrier.wait()
        return service.lookup(f"B0TOKN{i:04d}", "US")["asin"]

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lookup, range(16)))
    assert results == [f"B0TOKN{i:04d}" for i in range(16)]
    assert emulator.calls()["by_operation"]["lwaToken"] == {"200": 1}
    assert app.extensions["spapi"].tokens.fetches == 1


def test_concurrent_callers_never_exceed_the_plan(make_app, emulator):
    """8 threads of single and batch lookups: the emulator sees no 429 and no window over the plan."""
    emulator.configure(rate=4, burst=2)
    # 10% under the plan: loopback scheduling jitter between admission and arrival stays covered.
    app = make_app(sp_api_rate=4, sp_api_burst=2, sp_api_rate_margin=0.1, max_workers=4)
    client = app.test_client()

    def work(i: int) -> list[int]:
        statuses = [client.get(f"/asin/B0CONC{i}{j:03d}").status_code for j in range(2)]
        batch = client.post("/asin/batch/US", json={"asins": [f"B0BTCH{i}{j:03d}" for j in range(25)]})
        return statuses + [batch.status_code] + [int(e["success"]) for e in batch.get_json()["results"]]

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(work, range(8)))
    assert all(o[:3] == [200, 200, 200] and all(o[3:]) for o in outcomes)
    calls = [c for c in emulator.calls()["calls"] if c["operation"] != "lwaToken"]
    assert len(calls) == 8 * 2 + 8 * 2
    assert all(c["status"] == 200 for c in calls)
    # Token bucket rate 4/s, burst 2, per operation: in any span of d seconds at most 2 + 4d calls.
    for operation in ("getCatalogItem", "searchCatalogItems"):
        times = sorted(c["time"] for c in calls if c["operation"] == operation)
        for i, start in enumerate(times):
            for j in range(i, len(times)):
                assert j - i + 1 <= 2 + 4 * (times[j] - start) + 0.05


def test_a_refused_access_token_is_replaced_once_and_nothing_is_lost(make_app):
    """LWA says a token lives an hour but SP-API expires it after a minute: the service re-authenticates once."""
    clock = FakeClock()
    # An emulator of its own, whose token expiry runs on the fake clock.
    with EmulatorServer(EmulatorOptions(token_ttl=60, announced_token_ttl=3600), clock=clock) as sp_api:
        client = make_app(sp_api_endpoint=sp_api.url).test_client()
        assert client.get("/asin/B0TEST0001").status_code == 200
        clock.advance(60)  # SP-API now refuses the token the service believes in for another 59 minutes
        batch = client.post("/asin/batch/US", json={"asins": ["B0TEST0002", "B0TEST0003"]}).get_json()
        assert batch["successful"] == 2
        assert sp_api.calls()["by_operation"]["lwaToken"] == {"200": 2}
        assert [c["status"] for c in operation_calls(sp_api, "searchCatalogItems")] == [403, 200]
        assert client.get("/health").get_json()["status"] == "ok"


def test_a_token_refused_twice_is_auth_failed(make_app, emulator):
    emulator.configure(token_ttl=0, announced_token_ttl=3600)
    response = make_app().test_client().get("/asin/B0TEST0001")
    assert response.status_code == 502 and response.get_json()["error"]["code"] == "AUTH_FAILED"
    assert [c["status"] for c in operation_calls(emulator, "getCatalogItem")] == [403, 403]


def test_sustained_upstream_failure_opens_the_regions_circuit_then_a_probe_closes_it(make_app, emulator):
    emulator.configure(fault_rate=1.0, fault_statuses=[500])
    app = make_app(max_retries=0, circuit_failures=2, circuit_cooldown=30)
    clock = FakeClock()
    app.extensions["spapi"].circuits.clock = clock
    client = app.test_client()
    assert [client.get(f"/asin/B0TEST000{i}").status_code for i in range(2)] == [502, 502]
    # Open: the next lookups fail at once, without a call, and say when to come back.
    fast = client.get("/asin/B0TEST0003")
    assert fast.status_code == 503 and fast.get_json()["error"]["code"] == "UPSTREAM_UNAVAILABLE"
    assert fast.headers["Retry-After"] == "30"
    batch = client.post("/asin/batch/US", json={"asins": ["B0TEST0004", "B0TEST0005"]}).get_json()
    assert [e["error"]["code"] for e in batch["results"]] == ["UPSTREAM_UNAVAILABLE"] * 2
    assert len(operation_calls(emulator, "getCatalogItem")) == 2 and operation_calls(emulator, "searchCatalogItems") == []
    health = client.get("/health").get_json()
    assert health["status"] == "degraded" and health["sp_api"]["circuits"]["NA"]["state"] == "open"
    assert health["sp_api"]["circuits"]["NA"]["opened_at"] == "2027-01-15T08:00:00Z"  # the fake clock's time
    assert health["sp_api"]["circuits"]["EU"]["state"] == "closed"  # each region its own
    # SP-API recovers; within the cool-down the circuit still holds every call back.
    emulator.configure(fault_rate=0.0)
    clock.advance(29)
    assert client.get("/asin/B0TEST0006").status_code == 503
    assert len(operation_calls(emulator, "getCatalogItem")) == 2
    # Once the cool-down is over, one probe goes through and closes the circuit.
    clock.advance(1)
    assert client.get("/asin/B0TEST0006").status_code == 200
    assert len(operation_calls(emulator, "getCatalogItem")) == 3
    health = client.get("/health").get_json()
    assert health["status"] == "ok" and health["sp_api"]["circuits"]["NA"]["state"] == "closed"


def test_an_unreachable_sp_api_is_upstream_unavailable(make_app):
    from emulator.process import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    client = make_app(sp_api_endpoint=dead, max_retries=1).test_client()
    response = client.get("/asin/B07N4M94X4")
    assert response.status_code == 503 and response.get_json()["error"]["code"] == "UPSTREAM_UNAVAILABLE"
