"""CallLimiter: SP-API calls admitted under each operation's plan and the call window, waiting for their slot; and KeyQuota.

Admission costs one store operation when nothing has changed: the reservation checks the pace
the caller paces by (this process keeps the last one each store answer gave), takes the slot
and gives the stored pace back. A response announcing the plan already in force costs nothing.
Only a change costs more: a 429, a newly announced plan, another process's change (the next
reservation finds its pace stale and asks again), a caller too late for its slot.

A caller sleeps until its slot. A slowdown (a 429) while it sleeps voids the slot: this process's
own slowdowns it finds in what this process knows, another's in the store's notices (no store
operation); only when the notices say a pace did or may have changed does it read the pace.

Late callers. A busy machine runs a caller after its slot: it wakes late, or the HTTP client's
own work and a new connection's connect hold it up between admission and the wire. Within a
queue that costs nothing (SP-API's bucket is not full: the token is there whenever the call
comes). But a call that leaves after its bucket would have been full again wastes the refill
meanwhile (a full bucket refills into nothing), while the calls reserved behind it were spaced
as if it had left on time: one of them can find SP-API's bucket empty (issue 5's soak: three
calls in 0.48 s at burst 2). Each reservation says when its bucket, without the call, is full
(`full_at`), and the limiter looks at the clock once more as the call goes on the wire
(`leaving`); a call later than LATE_SHARE of the margin's room past that time gives its slot back
and reserves again, with its whole `max_wait` from then on (the lateness is this machine's, not
the plan's: a caller is refused only when the plan has no slot for it within `max_wait`, never
because connecting took long). So every call leaves within that allowance of a time GCRA would
have admitted it at, and the calls as sent stay within the plan itself, not only within the paced rate, as long
as the way from the wire to SP-API's clock varies by less than the rest of the room. A call on
time pays nothing: no store operation beyond its reservation.

If the shared store fails (Redis down, disk full), the limiter carries on with a process-local
store and logs why: pacing continues, and a 429 from the overlap is retried and slows the pace.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from utils.rate_limit.plan import Bucket, Pace, Plan, announce, is_announced, parse_rate, slow_down
from utils.rate_limit.stores import LimiterStore, MemoryStore, Reservation, Window

log = logging.getLogger(__name__)

# A call may leave this share of the margin's room (1/(rate × (1 − margin)) − 1/rate: 27 ms at
# 2/s and 5%) after its bucket would be full again; the rest absorbs what follows the wire, which
# the limiter cannot see: the network and the upstream reading its clock (up to 14 ms in the soak).
LATE_SHARE = 0.5
_STORE_ERROR_LOG_EVERY = 60.0
# After a store failure, use the process-local fallback this long before trying the store again.
_STORE_RETRY_AFTER = 5.0

T = TypeVar("T")


class RateLimited(Exception):
    """Admission would take longer than the caller may wait."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate limit: next slot in {retry_after:.1f}s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Admission:
    """A call for `key` let through at `admitted_at`; it may leave until `allowance` after `full_at` (limiter clock)."""

    key: str
    started: float  # when the caller first asked
    deadline: float  # the latest it may be admitted (started + max_wait)
    admitted_at: float
    full_at: float  # its reservation's: when the bucket, without it, would be full again
    allowance: float

    @property
    def waited(self) -> float:
        """Seconds from asking to admission."""
        return self.admitted_at - self.started

    def renewed_deadline(self, now: float) -> float:
        """The deadline of a new reservation after this slot is given back at `now`: the whole wait allowed again."""
        return max(self.deadline, now + (self.deadline - self.started))


class StoreGuard:
    """A shared store, and a process-local one to carry on with while the shared one fails (logged; tried again every few seconds)."""

    def __init__(self, store: LimiterStore, fallback: LimiterStore, meanwhile: str) -> None:
        self.store = store
        self._fallback = fallback
        self._meanwhile = meanwhile  # what the log says happens until the store is back
        self._failing_since: float | None = None
        self._failed_at = -math.inf
        self._last_error_log = -math.inf

    @property
    def ok(self) -> bool:
        """False while the shared store is failing."""
        return self._failing_since is None

    def run(self, operation: Callable[[LimiterStore], T]) -> T:
        """Run `operation` on the store; on a store failure, on the process-local fallback (for a while)."""
        if self._failing_since is not None and time.monotonic() - self._failed_at < _STORE_RETRY_AFTER:
            return operation(self._fallback)
        try:
            result = operation(self.store)
        except Exception as exc:  # sqlite3, OSError, redis errors: carry on locally
            now = self._failed_at = time.monotonic()
            if self._failing_since is None:
                self._failing_since = now
            if now - self._last_error_log >= _STORE_ERROR_LOG_EVERY:
                self._last_error_log = now
                log.error(
                    "rate limit store %s (%s) failed, %s: %s: %s",
                    self.store.backend,
                    self.store.location,
                    self._meanwhile,
                    type(exc).__name__,
                    exc,
                )
            return operation(self._fallback)
        if self._failing_since is not None:
            self._failing_since = None
            log.warning("rate limit store %s (%s) is back", self.store.backend, self.store.location)
        return result


class CallLimiter:
    """Admits calls under a per-operation token bucket and a global sliding window, at an adaptive pace."""

    def __init__(
        self,
        *,
        window_calls: int,
        window_seconds: float,
        default_plan: Plan,
        operation_plans: Mapping[str, Plan] | None = None,
        margin: float = 0.05,
        recovery_seconds: float = 60.0,
        store: LimiterStore | None = None,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        window = Window.of(window_calls, window_seconds)
        self.store = store or MemoryStore(window)
        # Shared state holds times that other processes and hosts compare: wall-clock time.
        self._clock = clock or (time.monotonic if isinstance(self.store, MemoryStore) else time.time)
        self._sleep = sleep
        self._margin = margin
        self._recovery = recovery_seconds
        self._default_plan = default_plan
        # The documented plan of each operation other than the one SP_API_RATE/SP_API_BURST describe (by name).
        self._operation_plans = dict(operation_plans or {})
        self._guard = StoreGuard(self.store, MemoryStore(window), "pacing this process alone until it is back")
        # The pace each store answer last gave for a key (None: none stored); a key absent was never asked about.
        self._known: dict[str, Pace | None] = {}
        self._logged_plans: dict[str, Plan] = {}
        self._log_lock = threading.Lock()

    @property
    def backend(self) -> str:
        """The configured store's backend name."""
        return self.store.backend

    # -- the pace ---------------------------------------------------------------------------

    def pace(self, key: str) -> Pace:
        """`key`'s pace as stored now (shared by every worker), else the configured plan; one store read."""
        stored = self._guard.run(lambda store: store.read_pace(key))
        self._known[key] = stored
        return stored or self._default_pace(key)

    def _known_pace(self, key: str) -> Pace:
        """`key`'s pace as the last store answer gave it; read only if this process never asked."""
        if key in self._known:
            return self._known[key] or self._default_pace(key)
        return self.pace(key)

    def _default_pace(self, key: str) -> Pace:
        plan = self.default_plan(key)
        return Pace(plan.rate, plan.burst)

    def default_plan(self, key: str) -> Plan:
        """The plan `key` ("region/operation") starts from: its operation's documented plan, else SP_API_RATE/SP_API_BURST."""
        return self._operation_plans.get(key.rpartition("/")[2], self._default_plan)

    def plan(self, key: str) -> Plan:
        """The plan the limiter paces `key` by now (before the safety margin)."""
        return self.pace(key).plan_at(self._clock(), self._recovery)

    def set_plan(self, key: str, plan: Plan) -> None:
        """Take `plan` as `key`'s plan, as if SP-API had announced it; the factor returns to 1."""
        self._update(key, lambda old: Pace(plan.rate, plan.burst, announced=True))

    def observe(self, key: str, *, status: int, rate_limit_header: str | None, sent_at: float) -> None:
        """Learn from one SP-API response to a call for `key` that went out at `sent_at` (limiter clock).

        The header is compared with the pace the call's reservation gave: no store operation unless it differs.
        """
        announced = parse_rate(rate_limit_header)
        if announced is not None and not is_announced(self._known_pace(key), announced):
            now = self._clock()
            self._update(key, lambda old: announce(old or self._default_pace(key), announced, now))
        if status == 429:
            now, default = self._clock(), self._default_pace(key)
            self._update(key, lambda old: slow_down(old or default, now, sent_at, self._recovery))

    def snapshot(self) -> dict[str, Any]:
        """Backend, location and every known operation's pace, for /health."""
        now = self._clock()
        paces = self._guard.run(lambda store: store.paces())
        self._known.update(paces)
        operations = {}
        for key, pace in sorted(paces.items()):
            plan = pace.plan_at(now, self._recovery)
            operations[key] = {
                "plan_rate": pace.rate,
                "plan_source": self._plan_source(key, pace),
                "pace_rate": round(plan.rate * (1 - self._margin), 4),
                "burst": plan.burst,
                "factor": round(pace.factor_at(now, self._recovery), 4),
                "slowed_by_429": pace.factor_at(now, self._recovery) < 1,
            }
        return {
            "backend": self.store.backend,
            "location": self.store.location,
            "store_ok": self._guard.ok,
            "default_plan": {"rate": self._default_plan.rate, "burst": self._default_plan.burst},
            "operations": operations,
        }

    def _plan_source(self, key: str, pace: Pace) -> str:
        """Where `key`'s plan comes from: SP-API's header, the operation's documented usage plan, or SP_API_RATE."""
        if pace.announced:
            return "x-amzn-RateLimit-Limit"
        return "usage plan" if key.rpartition("/")[2] in self._operation_plans else "SP_API_RATE"

    def _update(self, key: str, change: Callable[[Pace | None], Pace | None]) -> None:
        after = self._guard.run(lambda store: store.update_pace(key, change))
        self._known[key] = after
        self._log_plan_change(key, after or self._default_pace(key))

    def _log_plan_change(self, key: str, pace: Pace) -> None:
        plan = pace.plan_at(self._clock(), self._recovery)
        with self._log_lock:
            previous = self._logged_plans.get(key, self.default_plan(key))
            if plan == previous:
                return
            self._logged_plans[key] = plan
        why = "after 429s" if plan.rate < pace.rate else ("announced by SP-API" if pace.announced else "configured")
        log.info(
            "SP-API pace for %s: %.3g requests/s, burst %d (plan %.3g/s %s; was %.3g/s)",
            key,
            plan.rate,
            plan.burst,
            pace.rate,
            why,
            previous.rate,
        )

    # -- admission ---------------------------------------------------------------------------

    def _late_allowance(self, plan: Plan) -> float:
        """How long after its bucket would be full a call for `plan` may still leave: LATE_SHARE of the margin's room."""
        room = Bucket.paced(plan, self._margin).emission_ms / 1000 - 1 / plan.rate
        return LATE_SHARE * max(0.0, room)

    def acquire(self, key: str, max_wait: float) -> float:
        """Block until a call for `key` may go out, and send it at once; return seconds waited (see `admit`)."""
        return self.admit(key, max_wait).waited

    def admit(self, key: str, max_wait: float) -> Admission:
        """Block until a call for `key` may go out; the admission says until when it may leave.

        The caller reserves its slot (first come, first served across every worker sharing the
        store) and sleeps until it. Raises RateLimited, without waiting, when the first free slot
        is further away than `max_wait`. A slowdown (a 429) while it sleeps voids the slot; so
        does waking too late after its bucket would be full again (see "Late callers" above).
        Either way it reserves again. Pass the admission to `leaving` as the call goes on the wire.
        """
        start = self._clock()
        return self._admit(key, start, start + max_wait)

    def leaving(self, admission: Admission) -> Admission:
        """Look at the clock as the call goes on the wire: `admission` if it is on time, else a new one (waited for).

        Between admission and the wire lie the HTTP client's own work and, on a new connection, the
        connect: a call held up there is as late as one that woke late, and gives its slot back too.
        """
        if self._on_time(admission):
            return admission
        return self._admit(admission.key, admission.started, admission.renewed_deadline(self._clock()))

    def _admit(self, key: str, start: float, deadline: float) -> Admission:
        while True:
            expected = self._known.get(key)
            pace = expected or self._default_pace(key)
            now = self._clock()
            self._log_plan_change(key, pace)
            plan = pace.plan_at(max(now, pace.hold_until), self._recovery)
            store, mark, reservation = self._reserve(key, expected, pace, plan, deadline)
            self._known[key] = reservation.pace
            if reservation.stale:
                continue  # another process changed the pace: pace by the stored one
            if reservation.at is None:
                if reservation.earliest > deadline:
                    raise RateLimited(reservation.earliest - now)
                self._sleep(max(0.001, reservation.earliest - self._clock()))  # always progress
                continue
            delay = reservation.at - self._clock()
            if delay > 0:
                self._sleep(delay)
                if self._slowed_while_asleep(key, pace, store, mark):
                    continue  # a 429 while it slept: the slot is void
            admission = Admission(key, start, deadline, self._clock(), reservation.full_at, self._late_allowance(plan))
            if self._on_time(admission):
                return admission
            deadline = admission.renewed_deadline(self._clock())

    def _reserve(
        self, key: str, expected: Pace | None, pace: Pace, plan: Plan, deadline: float
    ) -> tuple[LimiterStore, int | None, Reservation]:
        """One reservation, on the store or its fallback; with the store that answered and its notices' mark from just before."""
        bucket = Bucket.paced(plan, self._margin)

        def reserve(store: LimiterStore) -> tuple[LimiterStore, int | None, Reservation]:
            mark = store.notices.mark()
            # Not before any hold the pace sets (a 429's, a lower plan's).
            return store, mark, store.reserve(key, bucket, expected, self._clock, pace.hold_until, deadline)

        return self._guard.run(reserve)

    def _slowed_while_asleep(self, key: str, pace: Pace, store: LimiterStore, mark: int | None) -> bool:
        """True if a 429 slowed `key` since its slot was reserved under `pace`."""
        if (self._known.get(key) or self._default_pace(key)).throttled_at != pace.throttled_at:
            return True  # this process has seen the slowdown (its own 429, or another caller's store answer)
        if not store.notices.changed_since(mark):
            return False  # no pace changed anywhere meanwhile: nothing to read
        return self.pace(key).throttled_at != pace.throttled_at

    def _on_time(self, admission: Admission) -> bool:
        """True if the call may leave now; else say that its slot is given back."""
        late = self._clock() - admission.full_at
        if late <= admission.allowance:
            return True
        log.info(
            "SP-API slot for %s given back: the call would leave %.0f ms after its bucket was full (%.0f ms allowed); reserving again",
            admission.key,
            late * 1000,
            admission.allowance * 1000,
        )
        return False

    def now(self) -> float:
        """The limiter's clock (the one `observe`'s `sent_at` is on)."""
        return self._clock()

    def close(self) -> None:
        """Close the store's connections."""
        self.store.close()


class KeyQuota:
    """API_KEY_RATE requests per second per API key (burst: one second's worth), counted in a limiter store.

    On the sqlite or redis store every worker and host counts against the one quota. Never waits:
    one store operation per request. Its buckets are the store's quota buckets, apart from the
    SP-API operations' and outside their call window.
    """

    def __init__(self, store: LimiterStore, rate: float, *, clock: Callable[[], float] = time.time) -> None:
        self._bucket = Bucket(max(1, math.ceil(1000 / rate)), max(1, math.ceil(rate)))
        self._clock = clock
        self._guard = StoreGuard(store, MemoryStore(Window(1, 1)), "counting API key quotas in this process alone until it is back")

    @property
    def store_ok(self) -> bool:
        """False while the shared store is failing (quotas then count per process)."""
        return self._guard.ok

    def retry_after(self, key_id: str) -> float | None:
        """None if `key_id` may make a request now (and counts it), else seconds until it may."""
        return self._guard.run(lambda store: store.take(key_id, self._bucket, self._clock))
