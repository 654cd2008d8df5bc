"""A token bucket, the algorithm SP-API usage plans are documented with (rate = refill/s, burst = capacity)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    """Holds up to `capacity` tokens, refills continuously at `rate` tokens/s, starts full; thread-safe."""

    def __init__(self, rate: float, capacity: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.rate = float(rate)
        self.capacity = int(capacity)
        self._tokens = float(capacity)
        self._stamp = clock()

    def try_acquire(self, at: float | None = None) -> bool:
        """Take one token if there is a whole one at `at` (the call's arrival; default now); False means the call is throttled (429).

        Calls are judged when they arrive, as SP-API's edge does, not when a busy server gets to them;
        one that arrived before the last call judged is judged at that call's moment.
        """
        with self._lock:
            now = max(self._clock() if at is None else at, self._stamp)
            self._tokens = min(float(self.capacity), self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False

    def reset(self, rate: float | None = None, capacity: int | None = None) -> None:
        """Optionally change rate/capacity, and refill to full."""
        with self._lock:
            if rate is not None:
                self.rate = float(rate)
            if capacity is not None:
                self.capacity = int(capacity)
            self._tokens = float(self.capacity)
            self._stamp = self._clock()

    @property
    def tokens(self) -> float:
        """Tokens available now (for diagnostics)."""
        with self._lock:
            return min(float(self.capacity), self._tokens + (self._clock() - self._stamp) * self.rate)
