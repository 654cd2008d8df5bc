"""A circuit breaker per SP-API region (pybreaker): after sustained upstream failure, fail fast for a while.

A lookup counts as a failure only when SP-API (or Login with Amazon) was unreachable or broken
after the retries: connection errors, 5xx, timeouts. A 404, a 429 or a refused credential says
SP-API is up. After `failures` such lookups in a row the region's circuit opens: calls fail at
once with UPSTREAM_UNAVAILABLE for `cooldown` seconds; then one probe call goes through
(half-open) and its success closes the circuit. The state is per process.

pybreaker times the cooldown with datetime.now(); `_ClockedStorage` (a pybreaker storage, its
documented extension point) records the opening on the injected clock instead, so tests can move
time on a fake clock.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pybreaker

from utils.marketplaces import REGIONS
from utils.timestamps import iso_utc

log = logging.getLogger(__name__)

T = TypeVar("T")


class _LogStateChanges(pybreaker.CircuitBreakerListener):
    def state_change(self, cb: pybreaker.CircuitBreaker, old_state: Any, new_state: Any) -> None:
        level = logging.INFO if new_state.name == pybreaker.STATE_CLOSED else logging.WARNING
        log.log(level, "SP-API circuit %s: %s -> %s", cb.name, old_state.name if old_state else None, new_state.name)


class _ClockedStorage(pybreaker.CircuitMemoryStorage):
    """pybreaker's memory storage, with the opening time taken from `clock` (seconds, like time.time)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        super().__init__(pybreaker.STATE_CLOSED)
        self._clock = clock
        self.opened_at_seconds: float | None = None

    @property
    def opened_at(self) -> datetime | None:
        """The opening as pybreaker's datetime.now() would have seen it: now, less the seconds elapsed on `clock`."""
        if self.opened_at_seconds is None:
            return None
        return datetime.now(UTC) - timedelta(seconds=self._clock() - self.opened_at_seconds)

    @opened_at.setter
    def opened_at(self, _pybreaker_now: datetime) -> None:
        self.opened_at_seconds = self._clock()


class RegionCircuits:
    """One pybreaker.CircuitBreaker per region; `is_outage` says which exceptions count as failures, `clock` times the cooldown."""

    def __init__(
        self,
        *,
        failures: int,
        cooldown: float,
        is_outage: Callable[[BaseException], bool],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cooldown = cooldown
        # Seconds, like time.time (the snapshot shows `opened_at` on it); a test may swap in a fake one before the first call.
        self.clock = clock
        self._storages = {region: _ClockedStorage(self._now) for region in REGIONS}
        self._breakers = {
            region: pybreaker.CircuitBreaker(
                fail_max=failures,
                reset_timeout=cooldown,
                exclude=[lambda exc: not is_outage(exc)],
                listeners=[_LogStateChanges()],
                state_storage=self._storages[region],
                name=region,
                throw_new_error_on_trip=False,
            )
            for region in REGIONS
        }

    def _now(self) -> float:
        # Late-bound, so a clock swapped in after construction reaches the storages too.
        return self.clock()

    def call(self, region: str, fn: Callable[[], T]) -> T:
        """`fn()` through the region's breaker; raises pybreaker.CircuitBreakerError while it is open.

        pybreaker's `call` holds the breaker's lock while `fn` runs: with the circuit closed that would
        send one SP-API call at a time per region and process, every operation's (and the limiter's
        wait) queued behind it. So a closed circuit lets calls run side by side through `calling()`,
        which takes the lock only to check the state and count the outcome; an open or half-open one
        goes through `call`, so that one probe at a time decides whether it closes.
        """
        breaker = self._breakers[region]
        if breaker.current_state == pybreaker.STATE_CLOSED:
            with breaker.calling():
                return fn()
        return breaker.call(fn)

    def any_open(self) -> bool:
        """True while any region's circuit is not closed."""
        return any(b.current_state != pybreaker.STATE_CLOSED for b in self._breakers.values())

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Each region's state (closed, open, half_open), consecutive failures and when it opened."""
        view = {}
        for region, breaker in self._breakers.items():
            opened = self._storages[region].opened_at_seconds if breaker.current_state != pybreaker.STATE_CLOSED else None
            view[region] = {
                "state": breaker.current_state.replace("-", "_"),
                "consecutive_failures": breaker.fail_counter,
                "opened_at": iso_utc(opened),
            }
        return view
