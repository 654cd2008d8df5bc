"""FakeClock: seconds that move only when a test says so, for the clocks the code takes as parameters."""

from __future__ import annotations

import threading


class FakeClock:
    """A clock (like time.time or time.monotonic) standing at `start` until `advance`; thread-safe."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._lock = threading.Lock()
        self.now = start

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by `seconds`."""
        with self._lock:
            self.now += seconds
