"""The pace follows what SP-API says: its announced plan (x-amzn-RateLimit-Limit) and its 429s.

Timing is read from the emulator's call log: the arrival time of each call.
"""

from __future__ import annotations

from tests.helpers.data import synthetic_asins
from tests.helpers.emulator_log import calls_by_status, operation_calls, worst_overrun


def search_gaps(emulator) -> list[float]:
    times = [c["time"] for c in operation_calls(emulator, "searchCatalogItems")]
    return [b - a for a, b in zip(times, times[1:], strict=False)]


def pace(client, operation: str = "NA/searchCatalogItems") -> dict:
    return client.get("/health").get_json()["rate_limiter"]["operations"][operation]


def test_a_lower_announced_plan_slows_the_pace(make_app, emulator):
    emulator.configure(rate=1.0, burst=2)  # announces 1.0 where the service assumed 2/s
    client = make_app().test_client()
    client.post("/asin/batch/US", json={"asins": synthetic_asins(1)})  # the first answer tells the plan
    assert pace(client)["plan_rate"] == 1.0 and pace(client)["plan_source"] == "x-amzn-RateLimit-Limit"

    body = client.post("/asin/batch/US", json={"asins": synthetic_asins(80, start=1)}).get_json()
    assert body["successful"] == 80
    assert calls_by_status(emulator, "searchCatalogItems") == {"200": 5}  # no 429: the pace followed
    # Replayed against the announced plan (1/s, burst 2), the calls never exceed it: at the assumed
    # 2/s the four calls of the second batch would arrive within 1.1 s, two more than 1/s allows.
    # (Judged over intervals, not single gaps: a call sent late by a busy machine shortens the gap after it.)
    times = [c["time"] for c in operation_calls(emulator, "searchCatalogItems")]
    assert worst_overrun(times, rate=1.0, burst=2) <= 0.05


def test_a_higher_announced_plan_is_used(make_app, emulator):
    emulator.configure(rate=10.0, burst=3)  # a burst above the assumed 2 leaves room for arrival jitter
    client = make_app(max_batch_size=200).test_client()
    client.get("/asin/B07N4M94X4")
    client.post("/asin/batch/US", json={"asins": synthetic_asins(1)})
    body = client.post("/asin/batch/US", json={"asins": synthetic_asins(200, start=1)}).get_json()
    assert body["successful"] == 200
    assert calls_by_status(emulator, "searchCatalogItems") == {"200": 11}
    # At the configured 2/s the calls after the burst would be 0.53 s apart; at the announced 10/s, 0.105 s.
    gaps = search_gaps(emulator)[2:]
    assert sum(gaps) / len(gaps) < 0.3  # the mean: one call sent late by a busy machine lengthens one gap
    assert pace(client)["pace_rate"] == 9.5


def test_429s_from_a_plan_cut_without_notice_slow_the_pace_and_nothing_is_lost(make_app, emulator):
    # The emulator keeps announcing 2/s but grants 1/s with no burst: only the 429s tell.
    emulator.configure(rate=1.0, burst=1, announced_rate=2.0)
    client = make_app(max_retries=3, retry_delay_base=1.0, retry_delay_max=0.1).test_client()
    body = client.post("/asin/batch/US", json={"asins": synthetic_asins(100)}).get_json()
    assert body["successful"] == 100
    statuses = [c["status"] for c in operation_calls(emulator, "searchCatalogItems")]
    assert statuses.count(200) == 5 and 1 <= statuses.count(429) <= 3
    # After the last 429 the pace stays under what SP-API grants: no more 429s.
    assert statuses[-1] == 200
    slowed = pace(client)
    assert slowed["slowed_by_429"] and slowed["pace_rate"] <= 0.95 and slowed["burst"] == 1
