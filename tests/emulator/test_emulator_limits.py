"""Usage plan (token buckets), seeded faults, dropped connections, latency and the config endpoints."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import httpx
import pytest

from emulator import EmulatorServer
from emulator.client import EmulatorClient
from emulator.ratelimit import TokenBucket
from tests.helpers.fake_clock import FakeClock

QUOTA_EXCEEDED = {"errors": [{"code": "QuotaExceeded", "message": "You exceeded your quota for the requested resource.", "details": ""}]}


def test_bucket_admits_burst_then_throttles(make_client: Callable[..., EmulatorClient]) -> None:
    clock = FakeClock()
    emu = make_client(clock=clock)  # the model's usage plan: rate 2, burst 2
    assert emu.token  # fetch the token first: LWA calls are not rate limited like catalog calls
    responses = [emu.get_catalog_item("B07N4M94X4") for _ in range(5)]
    assert [r.status_code for r in responses] == [200, 200, 429, 429, 429]
    for throttled in responses[2:]:
        assert throttled.json() == QUOTA_EXCEEDED
        assert throttled.headers["x-amzn-RateLimit-Limit"] == "2.0"
        assert throttled.headers["x-amzn-RequestId"]
    # Each operation has its own bucket.
    assert emu.search_catalog_items(identifiers="B07N4M94X4", identifiersType="ASIN").status_code == 200
    # Rate 2/s: half a token after 0.25 s is not enough; a whole one is back after 0.5 s, and only one.
    clock.advance(0.25)
    assert emu.get_catalog_item("B07N4M94X4").status_code == 429
    clock.advance(0.25)
    assert [emu.get_catalog_item("B07N4M94X4").status_code for _ in range(2)] == [200, 429]
    # However long the pause, the bucket holds no more than its burst.
    clock.advance(60)
    assert [emu.get_catalog_item("B07N4M94X4").status_code for _ in range(3)] == [200, 200, 429]
    assert emu.calls()["by_operation"]["getCatalogItem"] == {"200": 5, "429": 6}


def test_a_rate_change_refills_the_buckets_at_the_new_size_and_pace(make_client: Callable[..., EmulatorClient]) -> None:
    clock = FakeClock()
    emu = make_client(clock=clock, rate=2.0, burst=1)
    assert emu.token
    assert [emu.get_catalog_item("B07N4M94X4").status_code for _ in range(2)] == [200, 429]
    emu.configure(rate=0.5, burst=3)
    assert [emu.get_catalog_item("B07N4M94X4").status_code for _ in range(4)] == [200, 200, 200, 429]
    clock.advance(1.5)  # 0.75 of a token at 0.5/s
    assert emu.get_catalog_item("B07N4M94X4").status_code == 429
    clock.advance(0.5)
    assert emu.get_catalog_item("B07N4M94X4").status_code == 200


def test_announced_rate_can_differ_from_the_enforced_one(make_client: Callable[..., EmulatorClient]) -> None:
    emu = make_client(rate=1000.0, burst=1000, announced_rate=0.5)
    assert emu.get_catalog_item("B07N4M94X4").headers["x-amzn-RateLimit-Limit"] == "0.5"


def _statuses(emu: EmulatorClient, count: int) -> list[int]:
    return [emu.get_catalog_item("B0FAULT001").status_code for _ in range(count)]


def test_faults_are_reproducible_with_a_seed(make_client: Callable[..., EmulatorClient]) -> None:
    emu = make_client(rate=1000.0, burst=1000, fault_rate=0.5, seed=7)
    assert emu.token  # get the LWA call out of the way first
    first = _statuses(emu, 30)
    emu.reset()
    assert _statuses(emu, 30) == first
    assert {200, 500, 503} <= set(first)
    other_seed = make_client(rate=1000.0, burst=1000, fault_rate=0.5, seed=8)
    assert _statuses(other_seed, 30) != first


def test_fault_bodies(make_client: Callable[..., EmulatorClient]) -> None:
    emu = make_client(rate=1000.0, burst=1000, fault_rate=1.0, fault_statuses=(500,))
    response = emu.get_catalog_item("B07N4M94X4")
    assert response.status_code == 500
    assert response.json() == {
        "errors": [{"code": "InternalFailure", "message": "We encountered an internal error. Please try again.", "details": ""}]
    }
    emu.configure(fault_statuses=[503])
    response = emu.search_catalog_items(keywords="tv")
    assert response.status_code == 503
    assert response.json() == {
        "errors": [{"code": "ServiceUnavailable", "message": "Service temporarily unavailable. Please try again.", "details": ""}]
    }
    assert response.headers["x-amzn-RequestId"] and response.headers["x-amzn-RateLimit-Limit"]


def test_faults_come_before_validation(make_client: Callable[..., EmulatorClient]) -> None:
    emu = make_client(rate=1000.0, burst=1000, fault_rate=1.0, fault_statuses=(503,))
    assert emu.get_catalog_item("bad").status_code == 503


def test_drop_closes_the_connection_without_a_response(make_client: Callable[..., EmulatorClient]) -> None:
    emu = make_client(rate=1000.0, burst=1000, drop_rate=1.0)
    assert emu.token  # get the LWA call out of the way first
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        emu.get_catalog_item("B07N4M94X4")
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        emu.search_catalog_items(keywords="tv")
    log = emu.calls()
    assert log["by_operation"]["getCatalogItem"] == {"dropped": 1}
    assert log["calls"][-1]["status"] == "dropped"
    emu.configure(drop_rate=0.0)
    assert emu.get_catalog_item("B07N4M94X4").status_code == 200  # the server is still fine


def test_latency_and_slow_responses(make_client: Callable[..., EmulatorClient]) -> None:
    emu = make_client(rate=1000.0, burst=1000, latency_ms=150)
    assert emu.token  # get the LWA call out of the way first
    # One client, one call at a time: a call arrives only once the answer before it came, so the gaps
    # between arrivals in the emulator's log bound how long each answer was held.
    assert emu.get_catalog_item("B07N4M94X4", token="bad").status_code == 403  # errors are delayed too
    assert emu.get_catalog_item("B07N4M94X4").status_code == 200
    emu.configure(latency_ms=0, slow_rate=1.0, slow_seconds=0.3)
    assert emu.get_catalog_item("B07N4M94X4").status_code == 200
    assert emu.get_catalog_item("B07N4M94X4").status_code == 200
    arrived = [c["time"] for c in emu.calls()["calls"] if c["operation"] == "getCatalogItem"]
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrived)]
    assert gaps[0] >= 0.15 and gaps[1] >= 0.15  # the 403, then the 200, held latency_ms
    assert gaps[2] >= 0.3  # the slow answer held slow_seconds
    # A client that gives up on a slow call still finds it in the log.
    with pytest.raises(httpx.ReadTimeout):
        emu.http.get(
            "/catalog/2022-04-01/items/B0SLOW0001",
            params={"marketplaceIds": "ATVPDKIKX0DER"},
            headers={"x-amz-access-token": emu.token},
            timeout=0.1,
        )
    assert emu.calls()["calls"][-1]["asins"] == ["B0SLOW0001"]


def test_config_endpoints(make_client: Callable[..., EmulatorClient]) -> None:
    emu = make_client()
    config = emu.http.get("/_emulator/config").json()
    assert config["rate"] == 2.0 and config["burst"] == 2 and config["fault_statuses"] == [500, 503]
    assert config["page_size_cap"] == 20 and config["not_found_prefix"] == "NF"
    assert emu.token  # get the LWA call out of the way first
    assert [emu.get_catalog_item("B07N4M94X4").status_code for _ in range(3)] == [200, 200, 429]
    new = emu.configure(rate=1000, burst=10, not_found_prefix="ZZ")
    assert new["rate"] == 1000.0 and new["burst"] == 10
    assert [emu.get_catalog_item("B07N4M94X4").status_code for _ in range(10)] == [200] * 10  # buckets re-sized at once
    assert emu.get_catalog_item("NF00000001").status_code == 200
    assert emu.get_catalog_item("ZZ00000001").status_code == 404
    for bad in ({"no_such_option": 1}, {"fault_rate": 2}, {"burst": "many"}, {"fault_statuses": [200]}):
        response = emu.http.post("/_emulator/config", json=bad)
        assert response.status_code == 400, bad
        assert "error" in response.json()
    assert emu.http.post("/_emulator/config", content=b"[1]", headers={"content-type": "application/json"}).status_code == 400
    assert emu.http.get("/_emulator/config").json()["burst"] == 10


def test_health_and_in_process_helpers(make_server: Callable[..., EmulatorServer]) -> None:
    server = make_server(rate=1000.0, burst=1000)
    with EmulatorClient(server.url) as emu:
        assert emu.http.get("/_emulator/health").json() == {"status": "ok"}
        emu.get_catalog_item("B07N4M94X4")
        assert server.calls() == emu.calls()
        assert server.calls()["by_operation"]["getCatalogItem"] == {"200": 1}
        options = server.configure(fault_rate=1.0)
        assert options.fault_rate == 1.0
        assert emu.get_catalog_item("B07N4M94X4").status_code in (500, 503)
        server.reset()
        assert server.calls()["total"] == 0
    assert server.url.startswith("http://127.0.0.1:") and server.port > 0


def test_server_context_manager_releases_the_port() -> None:
    with EmulatorServer() as server:
        url = server.url
        assert httpx.get(f"{url}/_emulator/health").status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/_emulator/health", timeout=2)


def test_a_bucket_judges_a_call_as_of_its_arrival_not_when_a_busy_server_gets_to_it() -> None:
    clock = FakeClock()
    bucket = TokenBucket(5.0, 1, clock)
    assert bucket.try_acquire(at=clock())
    # The next call arrived 0.1 s later (half a token back) but was judged 0.3 s later: it is throttled,
    # as SP-API's edge throttles it, and the log (stamped on arrival) agrees.
    arrived = clock() + 0.1
    clock.advance(0.3)
    assert not bucket.try_acquire(at=arrived)
    # One that arrived before the last call judged is judged as of that call: no refill runs backwards.
    assert not bucket.try_acquire(at=arrived - 0.05)
    assert bucket.try_acquire(at=arrived + 0.2)
