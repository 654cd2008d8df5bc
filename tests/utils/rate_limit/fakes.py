"""A fake clock, and a store that counts what the limiter asks of it."""

from __future__ import annotations

import threading
from collections import Counter

from utils.rate_limit import LimiterStore, Pace, Reservation


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


class CountingStore(LimiterStore):
    """A store that counts every operation asked of it, by name (`notices` are not operations: they cost no round trip)."""

    def __init__(self, inner: LimiterStore) -> None:
        self.inner = inner
        self.backend, self.location, self.notices = inner.backend, inner.location, inner.notices
        self.calls: Counter[str] = Counter()

    def reserve(self, key, bucket, pace, clock, not_before, latest) -> Reservation:
        self.calls["reserve"] += 1
        return self.inner.reserve(key, bucket, pace, clock, not_before, latest)

    def take(self, key, bucket, clock) -> float | None:
        self.calls["take"] += 1
        return self.inner.take(key, bucket, clock)

    def read_pace(self, key: str) -> Pace | None:
        self.calls["read_pace"] += 1
        return self.inner.read_pace(key)

    def update_pace(self, key, change) -> Pace | None:
        self.calls["update_pace"] += 1
        return self.inner.update_pace(key, change)

    def paces(self) -> dict[str, Pace]:
        self.calls["paces"] += 1
        return self.inner.paces()

    def close(self) -> None:
        self.inner.close()
