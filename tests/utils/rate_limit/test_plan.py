"""The GCRA step (plan.Bucket) alone, and through every store on a fake clock: burst, refill, margin."""

from __future__ import annotations

import pytest

from tests.utils.rate_limit.fakes import FakeClock
from utils.rate_limit import Bucket, CallLimiter, Plan


def slots(bucket: Bucket, asked_at: list[int], tat: int = 0) -> list[int]:
    """The slot each call gets, asked in order at the given times (ms), from a bucket with TAT `tat`."""
    given = []
    for start in asked_at:
        slot, tat = bucket.slot(tat, start)
        given.append(slot)
    return given


def test_the_emission_interval_is_one_over_the_rate_stretched_by_the_margin_in_whole_milliseconds():
    assert Bucket.paced(Plan(2.0, 2), 0.0) == Bucket(500, 2)
    assert Bucket.paced(Plan(2.0, 2), 0.05) == Bucket(527, 2)  # 1000 / 1.9 = 526.3: rounded up, never faster
    assert Bucket.paced(Plan(0.5, 1), 0.0).emission_ms == 2000
    assert Bucket.paced(Plan(5000.0, 1), 0.0).emission_ms == 1  # at least a millisecond


def test_a_full_bucket_gives_its_burst_at_once_then_one_call_per_emission():
    assert slots(Bucket(500, 2), [1000] * 5) == [1000, 1000, 1500, 2000, 2500]
    assert slots(Bucket(500, 3), [1000] * 5) == [1000, 1000, 1000, 1500, 2000]
    assert slots(Bucket(500, 1), [1000] * 3) == [1000, 1500, 2000]


def test_the_bucket_refills_one_call_per_emission_up_to_its_burst():
    bucket = Bucket(500, 2)
    _, tat = bucket.slot(0, 1000)
    _, tat = bucket.slot(tat, 1000)  # the burst spent: TAT 2000
    assert tat == 2000
    assert bucket.slot(tat, 1500) == (1500, 2500)  # one call's worth back after one emission
    assert bucket.slot(tat, 1499)[0] == 1500  # not a millisecond sooner
    # Quiet for longer than the burst takes to refill: the whole burst again, and no more.
    assert slots(bucket, [10_000] * 3, tat=tat) == [10_000, 10_000, 10_500]


def test_the_tat_after_a_call_says_when_the_bucket_without_it_is_full():
    bucket = Bucket(500, 2)
    slot, tat = bucket.slot(0, 1000)
    assert (slot, tat - bucket.emission_ms) == (1000, 1000)  # it was full: full again at once without the call
    slot, tat = bucket.slot(tat, 1000)
    assert (slot, tat - bucket.emission_ms) == (1000, 1500)  # the first call's token is back at 1500


def test_each_plan_has_its_own_bucket():
    assert Bucket(527, 2).name("NA/getCatalogItem") == "NA/getCatalogItem|527ms|2"
    assert Bucket(527, 1).name("NA/getCatalogItem") != Bucket(527, 2).name("NA/getCatalogItem")


def limiter_on(store, clock: FakeClock, plan: Plan, margin: float = 0.0) -> CallLimiter:
    return CallLimiter(window_calls=1000, window_seconds=60, default_plan=plan, margin=margin, store=store, clock=clock, sleep=clock.sleep)


def call_times(limiter: CallLimiter, clock: FakeClock, n: int) -> list[float]:
    times = []
    for _ in range(n):
        limiter.acquire("NA/getCatalogItem", max_wait=60)
        times.append(round(clock() - 1000, 6))
    return times


def test_every_store_runs_the_same_gcra_burst_then_refill(store_factory):
    # Redis runs the step as Lua, the others in Python: the same slots on the fake clock.
    clock = FakeClock()
    limiter = limiter_on(store_factory(), clock, Plan(2.0, 3))
    assert call_times(limiter, clock, 5) == [0.0, 0.0, 0.0, 0.5, 1.0]
    clock.sleep(0.75)  # 1.75: one and a half calls refilled since the last (at 1.0)
    assert call_times(limiter, clock, 3) == [1.75, 2.0, 2.5]
    clock.sleep(10)  # long quiet: the whole burst, never more
    assert call_times(limiter, clock, 4) == [12.5, 12.5, 12.5, 13.0]


@pytest.mark.parametrize(("margin", "gap"), [(0.0, 0.5), (0.05, 0.527), (0.2, 0.625)])
def test_every_store_paces_the_margin_under_the_plan(store_factory, margin, gap):
    clock = FakeClock()
    times = call_times(limiter_on(store_factory(), clock, Plan(2.0, 1), margin), clock, 4)
    assert [round(b - a, 6) for a, b in zip(times, times[1:], strict=False)] == [gap, gap, gap]
