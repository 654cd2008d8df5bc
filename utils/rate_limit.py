"""Thread-safe admission of SP-API calls.

Two limits apply to every call, checked at the moment the request goes on the wire:

* the operation's usage plan, a token bucket per (region, operation) (Catalog Items
  2022-04-01: rate 2 requests/s, burst 2), paced a small margin under the plan;
* a sliding window over all calls: at most `window_calls` in any `window_seconds`.

The buckets are pyrate-limiter's (GCRA token bucket and sliding-window log). The wait
loop is ours, so that the clock and sleep are parameters (tests run on a fake clock) and
a caller that would wait past its deadline is told at once instead of hanging.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from pyrate_limiter import GCRA, InMemoryBucket, Rate, RateItem, StateBucket


class RateLimited(Exception):
    """Admission would take longer than the caller may wait."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate limit: next slot in {retry_after:.1f}s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Plan:
    """A usage plan: sustained requests per second and burst size."""

    rate: float
    burst: int


class CallLimiter:
    """Admits calls under a per-operation token bucket and a global sliding window."""

    def __init__(
        self,
        *,
        window_calls: int,
        window_seconds: float,
        default_plan: Plan,
        margin: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._margin = margin
        self._default_plan = default_plan
        self._lock = threading.Lock()
        self._window = InMemoryBucket([Rate(window_calls, max(1, round(window_seconds * 1000)))])
        self._buckets: dict[str, StateBucket] = {}
        self._plans: dict[str, Plan] = {}
        self._leaked_at = 0

    def plan(self, key: str) -> Plan:
        """The plan in force for `key` (an operation, e.g. "NA/searchCatalogItems")."""
        return self._plans.get(key, self._default_plan)

    def set_plan(self, key: str, plan: Plan) -> None:
        """Replace the plan for `key`; the bucket restarts full at the new pace."""
        with self._lock:
            self._plans[key] = plan
            self._buckets.pop(key, None)

    def _bucket(self, key: str) -> StateBucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            plan = self.plan(key)
            # One emission per interval: the interval is 1/rate stretched by the margin.
            interval_ms = math.ceil(1000 / (plan.rate * (1 - self._margin)))
            bucket = StateBucket([Rate(1, interval_ms, burst=plan.burst)], algorithm=GCRA())
            self._buckets[key] = bucket
        return bucket

    def _try_admit(self, key: str) -> float:
        """Take a slot now if both limits allow; else return seconds until one may."""
        now_ms = math.floor(self._clock() * 1000)
        with self._lock:
            if now_ms - self._leaked_at > 1000:
                self._window.leak(now_ms)
                self._leaked_at = now_ms
            bucket = self._bucket(key)
            item = RateItem(key, now_ms)
            if not bucket.put(item):
                return max(bucket.waiting(item), 1) / 1000
            if not self._window.put(RateItem("window", now_ms)):
                # The plan's slot is spent unused; that only slows us, never overruns SP-API.
                return max(self._window.waiting(RateItem("window", now_ms)), 1) / 1000
            return 0.0

    def acquire(self, key: str, max_wait: float) -> float:
        """Block until a call for `key` may go out; return seconds waited.

        Raises RateLimited, without waiting, when the next slot is further away than
        what remains of `max_wait`.
        """
        start = self._clock()
        deadline = start + max_wait
        while True:
            wait = self._try_admit(key)
            if wait == 0:
                return self._clock() - start
            remaining = deadline - self._clock()
            if wait > remaining:
                raise RateLimited(wait)
            self._sleep(wait)
