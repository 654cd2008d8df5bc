"""The emulator's mutable state: options, usage-plan buckets, seeded faults, LWA tokens and the call log."""

from __future__ import annotations

import random
import secrets
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from emulator.options import EmulatorOptions, apply_changes
from emulator.plans import CATALOG_OPERATIONS, GET_CATALOG_ITEM, LWA_TOKEN, OPERATIONS, PLANNED_OPERATIONS, SEARCH_CATALOG_ITEMS
from emulator.ratelimit import TokenBucket
from emulator.search import IdentifierCache

__all__ = ["CATALOG_OPERATIONS", "GET_CATALOG_ITEM", "LWA_TOKEN", "OPERATIONS", "SEARCH_CATALOG_ITEMS", "EmulatorState", "Faults"]

# The detailed call list keeps the most recent entries only, so a long `make run` does not grow
# without bound; `total` and `by_operation` count every call since the last reset.
MAX_CALLS_KEPT = 50_000
# Expired access tokens are remembered this long so clients get "expired" rather than "invalid".
_EXPIRED_TOKEN_MEMORY = 24 * 3600.0
_MAX_TOKENS = 100_000


@dataclass(frozen=True)
class Faults:
    """What the seeded random source decided for one admitted SP-API call."""

    drop: bool
    status: int | None
    slow: bool


class EmulatorState:
    """Thread-safe state shared by every request of one emulator app; `clock` times the buckets and token expiry."""

    def __init__(self, options: EmulatorOptions, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._options = apply_changes(options, {})  # a private copy
        self._rng = random.Random(self._options.seed)
        self._buckets = {op: TokenBucket(*self._options.plan(op), clock) for op in PLANNED_OPERATIONS}
        self._tokens: dict[str, float] = {}  # access token -> expiry on self._clock
        self._calls: deque[dict[str, Any]] = deque(maxlen=MAX_CALLS_KEPT)
        self._total = 0
        self._by_operation: dict[str, Counter[str]] = {op: Counter() for op in OPERATIONS}
        self.identifiers = IdentifierCache()

    @property
    def options(self) -> EmulatorOptions:
        """The current options (treat as read-only; change them with configure)."""
        with self._lock:
            return self._options

    def configure(self, **changes: Any) -> EmulatorOptions:
        """Apply option changes at once; an operation whose plan changes gets its bucket refilled at the new size."""
        with self._lock:
            old = self._options
            new = apply_changes(old, changes)
            self._options = new
            for operation, bucket in self._buckets.items():
                if new.plan(operation) != old.plan(operation):
                    bucket.reset(*new.plan(operation))
            if new.seed != old.seed:
                self._rng.seed(new.seed)
            return new

    def reset(self) -> None:
        """Clear the call log, refill the buckets and re-seed the random source; tokens stay valid."""
        with self._lock:
            self._calls.clear()
            self._total = 0
            self._by_operation = {op: Counter() for op in OPERATIONS}
            for operation, bucket in self._buckets.items():
                bucket.reset(*self._options.plan(operation))
            self._rng.seed(self._options.seed)

    # ------------------------------------------------------------------ LWA tokens

    def issue_token(self) -> tuple[str, int]:
        """A new access token and the lifetime announced for it (announced_token_ttl, else token_ttl)."""
        token = "Atza|" + secrets.token_urlsafe(48)
        with self._lock:
            ttl = self._options.token_ttl
            announced = ttl if self._options.announced_token_ttl is None else self._options.announced_token_ttl
            now = self._clock()
            self._tokens[token] = now + ttl
            stale = [t for t, expiry in self._tokens.items() if expiry < now - _EXPIRED_TOKEN_MEMORY]
            for t in stale:
                del self._tokens[t]
            while len(self._tokens) > _MAX_TOKENS:
                del self._tokens[next(iter(self._tokens))]
        return token, announced

    def token_problem(self, token: str | None) -> str | None:
        """None if `token` is a live token this emulator issued, else "invalid" or "expired"."""
        if not token:
            return "invalid"
        with self._lock:
            expiry = self._tokens.get(token)
        if expiry is None:
            return "invalid"
        return "expired" if self._clock() >= expiry else None

    # ------------------------------------------------------------------ usage plan and faults

    def now(self) -> float:
        """The moment on the buckets' clock (a call's arrival, to judge it by)."""
        return self._clock()

    def admit(self, operation: str, arrived: float | None = None) -> bool:
        """Take a token from the operation's bucket as of `arrived` (from `now()`; default now); False means 429 QuotaExceeded."""
        return self._buckets[operation].try_acquire(arrived)

    def draw_faults(self) -> Faults:
        """Drop, fault and slow draws for one admitted call, from the seeded source, in that order."""
        with self._lock:
            options = self._options
            # Always three draws (plus the status pick) so one knob does not shift the others' sequence.
            drop = self._rng.random() < options.drop_rate
            fault = self._rng.random() < options.fault_rate
            status = self._rng.choice(options.fault_statuses) if fault else None
            slow = self._rng.random() < options.slow_rate
        return Faults(drop=drop, status=None if drop else status, slow=slow and not drop and status is None)

    def draw_item_fault(self) -> bool:
        """Whether one item of a batch answers a per-item server error inside the 200, from the seeded source."""
        with self._lock:
            return self._rng.random() < self._options.item_fault_rate

    def draw_token_fault(self) -> bool:
        """Whether this token request fails with 500, from the seeded source."""
        with self._lock:
            return self._rng.random() < self._options.token_fault_rate

    # ------------------------------------------------------------------ call log

    def record(
        self,
        *,
        arrived: float,
        operation: str,
        status: int | str,
        asins: list[str],
        marketplace_id: str | None,
        request_id: str,
        identifiers_type: str | None = None,
    ) -> None:
        """Log one call that reached the emulator (`asins` holds a search's identifiers, of `identifiers_type`)."""
        entry = {
            "time": arrived,
            "operation": operation,
            "status": status,
            "asins": asins,
            "identifiers_type": identifiers_type,
            "marketplace_id": marketplace_id,
            "request_id": request_id,
        }
        with self._lock:
            self._calls.append(entry)
            self._total += 1
            self._by_operation.setdefault(operation, Counter())[str(status)] += 1

    def calls(self) -> dict[str, Any]:
        """The call log as GET /_emulator/calls answers it (calls ordered by arrival time)."""
        with self._lock:
            calls = sorted((dict(c, asins=list(c["asins"])) for c in self._calls), key=lambda c: c["time"])
            return {
                "total": self._total,
                "by_operation": {op: dict(counts) for op, counts in self._by_operation.items()},
                "calls": calls,
            }
