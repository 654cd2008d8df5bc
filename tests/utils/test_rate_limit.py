"""CallLimiter on a fake clock: the plan, the sliding window, and the deadline."""

from __future__ import annotations

import logging
import threading

import pytest

from utils.rate_limit import BACKENDS, CallLimiter, LimiterStore, Plan, RateLimited, build_store


class FakeClock:
    """A clock that only moves when someone sleeps on it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


def _store_factory(request, tmp_path):
    redis_url = request.getfixturevalue("redis_url") if request.param == "redis" else ""

    def build(calls: int, window: float) -> LimiterStore:
        return build_store(
            request.param, data_dir=str(tmp_path), redis_url=redis_url, redis_label=redis_url, window_calls=calls, window_seconds=window
        )

    return build


@pytest.fixture(params=BACKENDS)
def store_factory(request, tmp_path):
    """Build a LimiterStore of each backend: memory, a sqlite file in tmp_path, a real redis-server."""
    return _store_factory(request, tmp_path)


@pytest.fixture(params=[b for b in BACKENDS if b != "memory"])
def shared_store_factory(request, tmp_path):
    """Build a LimiterStore of each backend that several processes can share: sqlite and redis."""
    return _store_factory(request, tmp_path)


@pytest.fixture
def make_limiter(store_factory):
    def build(clock: FakeClock, *, calls=1000, window=60.0, rate=2.0, burst=2, margin=0.0, recovery=60.0) -> CallLimiter:
        return CallLimiter(
            window_calls=calls,
            window_seconds=window,
            default_plan=Plan(rate, burst),
            margin=margin,
            recovery_seconds=recovery,
            store=store_factory(calls, window),
            clock=clock,
            sleep=clock.sleep,
        )

    return build


def admitted_times(limiter: CallLimiter, clock: FakeClock, n: int, key: str = "NA/getCatalogItem") -> list[float]:
    times = []
    for _ in range(n):
        limiter.acquire(key, max_wait=1e6)
        times.append(clock())
    return times


def max_in_any_window(times: list[float], window: float) -> int:
    return max(sum(1 for t in times if start <= t < start + window) for start in times)


def test_plan_allows_the_burst_then_the_rate(make_limiter):
    clock = FakeClock()
    times = admitted_times(make_limiter(clock, rate=2, burst=2), clock, 6)
    gaps = [round(b - a, 3) for a, b in zip(times, times[1:], strict=False)]
    assert gaps == [0.0, 0.5, 0.5, 0.5, 0.5]


def test_margin_paces_under_the_plan(make_limiter):
    clock = FakeClock()
    times = admitted_times(make_limiter(clock, rate=2, burst=2, margin=0.05), clock, 12)
    # 10 calls after the burst at 2/s * 0.95 take at least 10 / 1.9 s.
    assert times[-1] - times[0] >= 10 / 1.9 - 0.01
    assert times[-1] - times[0] < 10 / 2 * 1.1


def test_sliding_window_never_exceeds_the_limit(make_limiter):
    clock = FakeClock()
    limiter = make_limiter(clock, calls=5, window=10, rate=100, burst=100)
    times = admitted_times(limiter, clock, 23)
    assert max_in_any_window(times, 10) == 5
    # And it is not slower than it needs to be: 23 calls need four more full windows.
    assert times[-1] - times[0] == pytest.approx(40, abs=0.1)


def test_operations_have_separate_buckets_but_share_the_window(make_limiter):
    clock = FakeClock()
    limiter = make_limiter(clock, calls=3, window=10, rate=1, burst=1)
    limiter.acquire("NA/getCatalogItem", 0)
    limiter.acquire("NA/searchCatalogItems", 0)  # another operation's bucket is full
    limiter.acquire("EU/searchCatalogItems", 0)  # another region's too
    with pytest.raises(RateLimited):
        limiter.acquire("FE/searchCatalogItems", 0)  # but the window is spent


def test_a_caller_that_would_wait_too_long_is_told_at_once(make_limiter):
    clock = FakeClock()
    limiter = make_limiter(clock, rate=0.1, burst=1)
    limiter.acquire("NA/getCatalogItem", max_wait=1)
    before = clock()
    with pytest.raises(RateLimited) as caught:
        limiter.acquire("NA/getCatalogItem", max_wait=5)
    assert clock() == before  # it did not sleep first
    assert caught.value.retry_after == pytest.approx(10, abs=0.01)


def test_set_plan_changes_the_pace(make_limiter):
    clock = FakeClock()
    limiter = make_limiter(clock, rate=2, burst=1)
    limiter.set_plan("NA/getCatalogItem", Plan(rate=10, burst=1))
    times = admitted_times(limiter, clock, 3)
    assert [round(b - a, 3) for a, b in zip(times, times[1:], strict=False)] == [0.1, 0.1]
    assert limiter.plan("NA/getCatalogItem") == Plan(10, 1)


def gaps(times: list[float]) -> list[float]:
    return [round(b - a, 3) for a, b in zip(times, times[1:], strict=False)]


KEY = "NA/searchCatalogItems"


def test_the_plan_follows_the_announced_rate_and_says_so(make_limiter, caplog):
    clock = FakeClock()
    limiter = make_limiter(clock, rate=2, burst=1)
    caplog.set_level(logging.INFO, logger="utils.rate_limit")
    limiter.observe(KEY, status=200, rate_limit_header="0.5", sent_at=clock())
    assert limiter.plan(KEY) == Plan(0.5, 1)
    assert gaps(admitted_times(limiter, clock, 3, KEY)) == [2.0, 2.0]
    assert "SP-API pace for NA/searchCatalogItems: 0.5 requests/s" in caplog.text
    # A seller with a higher plan gets more; garbage in the header changes nothing.
    limiter.observe(KEY, status=200, rate_limit_header="5.0", sent_at=clock())
    limiter.observe(KEY, status=200, rate_limit_header="fast", sent_at=clock())
    assert limiter.plan(KEY) == Plan(5.0, 1)


def test_a_429_halves_the_pace_at_once_and_it_recovers_after_quiet_periods(make_limiter):
    clock = FakeClock()
    limiter = make_limiter(clock, rate=2, burst=2, recovery=60)
    sent = clock()
    limiter.acquire(KEY, 10)
    clock.sleep(0.1)  # the answer takes a while
    limiter.observe(KEY, status=429, rate_limit_header="2.0", sent_at=sent)
    # Half the pace, burst 1, and nothing for one interval: SP-API's bucket is empty.
    assert limiter.plan(KEY) == Plan(1.0, 1)
    assert gaps([clock(), *admitted_times(limiter, clock, 3, KEY)]) == [1.0, 1.0, 1.0]
    # More 429s for calls sent before that slowdown change nothing; one sent after halves again.
    limiter.observe(KEY, status=429, rate_limit_header="2.0", sent_at=sent)
    assert limiter.plan(KEY) == Plan(1.0, 1)
    limiter.observe(KEY, status=429, rate_limit_header="2.0", sent_at=clock())
    assert limiter.plan(KEY) == Plan(0.5, 1)
    # Each quiet minute steps the pace up by a quarter, back to the whole plan and its burst.
    rates = []
    for _ in range(5):
        clock.sleep(60)
        rates.append(limiter.plan(KEY).rate)
    assert rates == [0.625, 0.78125, 0.9765625, 1.220703125, 1.52587890625]
    clock.sleep(60 * 2)
    assert limiter.plan(KEY) == Plan(2.0, 2)


def test_workers_sharing_a_store_share_the_plan_and_the_slowdown(shared_store_factory):
    clock = FakeClock()
    plan = {"window_calls": 1000, "window_seconds": 60, "default_plan": Plan(2, 2), "margin": 0}
    workers = [CallLimiter(**plan, store=shared_store_factory(1000, 60), clock=clock, sleep=clock.sleep) for _ in range(2)]
    # Interleaved callers on two workers still get the one plan between them.
    times = []
    for i in range(8):
        workers[i % 2].acquire(KEY, 10)
        times.append(clock())
    assert gaps(times) == [0.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]
    # A 429 seen by one worker slows the other at once.
    workers[0].observe(KEY, status=429, rate_limit_header=None, sent_at=clock())
    assert workers[1].plan(KEY) == Plan(1.0, 1)
    assert workers[1].snapshot()["operations"][KEY]["slowed_by_429"] is True


def test_a_broken_shared_store_falls_back_to_pacing_this_process(tmp_path, caplog):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the data directory should be")
    clock = FakeClock()
    store = build_store("sqlite", data_dir=str(blocker / "data"), redis_url="", redis_label="", window_calls=1000, window_seconds=60)
    limiter = CallLimiter(window_calls=1000, window_seconds=60, default_plan=Plan(2, 1), margin=0, store=store, clock=clock)
    limiter._sleep = clock.sleep
    assert gaps(admitted_times(limiter, clock, 3)) == [0.5, 0.5]
    assert limiter.snapshot()["store_ok"] is False
    assert "rate limit store sqlite" in caplog.text and "pacing this process alone" in caplog.text


def test_a_429_while_a_caller_sleeps_on_its_slot_voids_the_slot(make_limiter):
    clock = FakeClock()
    limiter = make_limiter(clock, rate=2, burst=1)
    start = clock()

    def sleep_while_another_worker_gets_a_429(seconds: float) -> None:
        limiter.observe(KEY, status=429, rate_limit_header=None, sent_at=clock())
        limiter._sleep = clock.sleep
        clock.sleep(seconds)

    limiter.acquire(KEY, 10)  # at once: the bucket is full
    limiter._sleep = sleep_while_another_worker_gets_a_429
    limiter.acquire(KEY, 10)  # its slot at +0.5 s is void: it goes after the hold, 1 s at the halved pace
    assert clock() - start == pytest.approx(1.0)
    assert limiter.plan(KEY) == Plan(1.0, 1)
