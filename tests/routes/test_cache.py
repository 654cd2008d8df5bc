"""What a user notices of the result cache and of shared in-flight lookups, counted in the emulator's log."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.helpers.data import synthetic_asins
from tests.helpers.emulator_log import calls_by_status, operation_calls


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_a_second_batch_is_answered_from_the_cache(make_app, emulator, backend, request):
    overrides = {"cache_backend": backend}
    if backend == "redis":
        overrides["redis_url"] = request.getfixturevalue("redis_url")
    client = make_app(**overrides).test_client()
    asins = synthetic_asins(30) + ["NF00000001"]
    first = client.post("/asin/batch/US", json={"asins": asins}).get_json()
    assert first["api_calls"] == 2 and first["cached"] == 0
    assert {entry["cached"] for entry in first["results"]} == {False}

    second = client.post("/asin/batch/US", json={"asins": asins}).get_json()
    assert second["api_calls"] == 0 and second["cached"] == 31
    assert len(operation_calls(emulator, "searchCatalogItems")) == 2  # none more
    assert [e["cached"] for e in second["results"]] == [True] * 31
    # The same answers, NOT_FOUND included, with the time they were fetched.
    strip = [{k: v for k, v in e.items() if k != "cached"} for e in second["results"]]
    assert strip == [{k: v for k, v in e.items() if k != "cached"} for e in first["results"]]
    assert second["results"][-1]["error"]["code"] == "NOT_FOUND"

    # A single lookup of a cached ASIN does not call SP-API either; a cached NOT_FOUND is still a 404.
    single = client.get(f"/asin/{asins[0]}")
    assert single.status_code == 200 and single.get_json()["cached"] is True
    not_found = client.get("/asin/NF00000001")
    assert not_found.status_code == 404 and not_found.get_json()["cached"] is True
    assert operation_calls(emulator, "getCatalogItem") == []

    health = client.get("/health").get_json()["cache"]
    assert health["backend"] == backend
    assert (health["hits"], health["misses"]) == (33, 31)


def test_only_the_uncached_asins_of_a_batch_are_fetched(client, emulator):
    client.post("/asin/batch/US", json={"asins": synthetic_asins(20)})
    body = client.post("/asin/batch/US", json={"asins": synthetic_asins(25)}).get_json()
    assert (body["cached"], body["api_calls"]) == (20, 1)
    second_call = operation_calls(emulator, "searchCatalogItems")[1]
    assert second_call["asins"] == synthetic_asins(5, start=20)


def test_refresh_bypasses_the_cache(client, emulator):
    asins = synthetic_asins(3)
    client.post("/asin/batch/US", json={"asins": asins})
    refreshed = client.post("/asin/batch/US", json={"asins": asins, "refresh": True}).get_json()
    assert refreshed["api_calls"] == 1 and refreshed["cached"] == 0
    assert client.get(f"/asin/{asins[0]}").get_json()["cached"] is True
    single = client.get(f"/asin/{asins[0]}?refresh=true").get_json()
    assert single["cached"] is False
    assert client.post("/asin/US", json={"asin": asins[0], "refresh": True}).get_json()["cached"] is False
    assert calls_by_status(emulator, "searchCatalogItems") == {"200": 2}
    assert calls_by_status(emulator, "getCatalogItem") == {"200": 2}


@pytest.mark.parametrize("refresh", ["maybe", "2"])
def test_a_bad_refresh_value_is_a_clear_400(client, refresh):
    response = client.get(f"/asin/B07N4M94X4?refresh={refresh}")
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "INVALID_REQUEST"
    batch = client.post("/asin/batch/US", json={"asins": ["B07N4M94X4"], "refresh": refresh})
    assert batch.status_code == 400 and "refresh" in batch.get_json()["error"]["message"]


def test_failures_other_than_not_found_are_not_cached(make_app, emulator):
    emulator.configure(fault_rate=1.0, fault_statuses=[500])
    client = make_app(max_retries=0).test_client()
    assert client.get("/asin/B0TEST0001").status_code == 502
    emulator.configure(fault_rate=0.0)
    response = client.get("/asin/B0TEST0001")
    assert response.status_code == 200 and response.get_json()["cached"] is False


def test_a_broken_sqlite_cache_still_answers_from_sp_api(make_app, emulator, tmp_path, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("DATA_DIR cannot be created below a file")
    client = make_app(data_dir=str(blocker / "data")).test_client()
    for _ in range(2):
        body = client.post("/asin/batch/US", json={"asins": synthetic_asins(3)}).get_json()
        assert body["successful"] == 3 and body["cached"] == 0
    assert len(operation_calls(emulator, "searchCatalogItems")) == 2  # nothing was kept, nothing failed
    assert client.get("/health").get_json()["cache"]["errors"] > 0
    assert "cache" in caplog.text.lower()


def test_redis_down_still_answers_from_sp_api(make_app, emulator):
    from emulator.process import free_port

    client = make_app(cache_backend="redis", redis_url=f"redis://127.0.0.1:{free_port()}/0").test_client()
    response = client.get("/asin/B07N4M94X4")
    assert response.status_code == 200 and response.get_json()["Title"]
    assert client.get("/health").get_json()["cache"]["errors"] > 0


def test_concurrent_requests_for_one_uncached_asin_share_one_call(make_app, emulator):
    emulator.configure(latency_ms=400)  # long enough for all eight to overlap
    app = make_app()
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: app.test_client().get("/asin/B0SHARED01"), range(8)))
    assert [r.status_code for r in responses] == [200] * 8
    assert len({r.get_json()["fetched_at"] for r in responses}) == 1
    assert len(operation_calls(emulator, "getCatalogItem")) == 1


def test_a_batch_waits_for_an_asin_another_request_is_fetching(make_app, emulator):
    emulator.configure(latency_ms=400)
    app = make_app()
    asins = synthetic_asins(10)
    with ThreadPoolExecutor(4) as pool:
        single = pool.submit(app.test_client().get, f"/asin/{asins[0]}")
        batches = [pool.submit(app.test_client().post, "/asin/batch/US", json={"asins": asins}) for _ in range(3)]
        bodies = [b.result().get_json() for b in batches]
    assert single.result().status_code == 200
    assert all(body["successful"] == 10 for body in bodies)
    fetched = [asin for call in emulator.calls()["calls"] if call["operation"] != "lwaToken" for asin in call["asins"]]
    assert sorted(fetched) == sorted(asins)  # each ASIN went to SP-API exactly once
