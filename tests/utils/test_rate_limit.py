"""CallLimiter on a fake clock: the plan, the sliding window, and the deadline."""

from __future__ import annotations

import threading

import pytest

from utils.rate_limit import CallLimiter, Plan, RateLimited


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


def make_limiter(clock: FakeClock, *, calls: int = 1000, window: float = 60, rate: float = 2, burst: int = 2, margin: float = 0.0):
    return CallLimiter(
        window_calls=calls, window_seconds=window, default_plan=Plan(rate, burst), margin=margin, clock=clock, sleep=clock.sleep
    )


def admitted_times(limiter: CallLimiter, clock: FakeClock, n: int, key: str = "NA/getCatalogItem") -> list[float]:
    times = []
    for _ in range(n):
        limiter.acquire(key, max_wait=1e6)
        times.append(clock())
    return times


def max_in_any_window(times: list[float], window: float) -> int:
    return max(sum(1 for t in times if start <= t < start + window) for start in times)


def test_plan_allows_the_burst_then_the_rate():
    clock = FakeClock()
    times = admitted_times(make_limiter(clock, rate=2, burst=2), clock, 6)
    gaps = [round(b - a, 3) for a, b in zip(times, times[1:], strict=False)]
    assert gaps == [0.0, 0.5, 0.5, 0.5, 0.5]


def test_margin_paces_under_the_plan():
    clock = FakeClock()
    times = admitted_times(make_limiter(clock, rate=2, burst=2, margin=0.05), clock, 12)
    # 10 calls after the burst at 2/s * 0.95 take at least 10 / 1.9 s.
    assert times[-1] - times[0] >= 10 / 1.9 - 0.01
    assert times[-1] - times[0] < 10 / 2 * 1.1


def test_sliding_window_never_exceeds_the_limit():
    clock = FakeClock()
    limiter = make_limiter(clock, calls=5, window=10, rate=100, burst=100)
    times = admitted_times(limiter, clock, 23)
    assert max_in_any_window(times, 10) == 5
    # And it is not slower than it needs to be: 23 calls need four more full windows.
    assert times[-1] - times[0] == pytest.approx(40, abs=0.01)


def test_operations_have_separate_buckets_but_share_the_window():
    clock = FakeClock()
    limiter = make_limiter(clock, calls=3, window=10, rate=1, burst=1)
    limiter.acquire("NA/getCatalogItem", 0)
    limiter.acquire("NA/searchCatalogItems", 0)  # another operation's bucket is full
    limiter.acquire("EU/searchCatalogItems", 0)  # another region's too
    with pytest.raises(RateLimited):
        limiter.acquire("FE/searchCatalogItems", 0)  # but the window is spent


def test_a_caller_that_would_wait_too_long_is_told_at_once():
    clock = FakeClock()
    limiter = make_limiter(clock, rate=0.1, burst=1)
    limiter.acquire("NA/getCatalogItem", max_wait=1)
    before = clock()
    with pytest.raises(RateLimited) as caught:
        limiter.acquire("NA/getCatalogItem", max_wait=5)
    assert clock() == before  # it did not sleep first
    assert caught.value.retry_after == pytest.approx(10, abs=0.01)


def test_set_plan_changes_the_pace():
    clock = FakeClock()
    limiter = make_limiter(clock, rate=2, burst=1)
    limiter.set_plan("NA/getCatalogItem", Plan(rate=10, burst=1))
    times = admitted_times(limiter, clock, 3)
    assert [round(b - a, 3) for a, b in zip(times, times[1:], strict=False)] == [0.1, 0.1]
    assert limiter.plan("NA/getCatalogItem") == Plan(10, 1)
