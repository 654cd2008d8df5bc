"""Admission of SP-API calls, shared by threads, gunicorn workers and hosts, at a pace that adapts.

Two limits apply to every call, checked at the moment the request goes on the wire:

* the operation's usage plan, a token bucket per (region, operation) (Catalog Items
  2022-04-01: rate 2 requests/s, burst 2), paced a small margin under the plan;
* a sliding window over all calls: at most `window_calls` in any `window_seconds`.

Callers reserve their slot and sleep until it: slots go first come, first served across
threads, workers and hosts, so no caller starves, and each call costs one store operation
instead of a poll per wake-up. The plan's algorithm is pyrate-limiter's GCRA (a token bucket
kept as one timestamp), asked for the first time it admits a call. State lives in a `LimiterStore`:

* `memory`: this process only;
* `sqlite`: a file shared by every worker on the machine; each reservation (GCRA step and
  window check) is one `BEGIN IMMEDIATE` transaction, with the clock read under the lock.
  (pyrate-limiter's own SQLiteBucket is a log: its floor for 5 calls at 2/s burst 2 is
  2.0 s against the token bucket's 1.5 s, and it cannot reserve ahead);
* `redis`: shared by every host: pyrate-limiter's GCRA Lua script (with a read of the state it
  leaves, in one MULTI) and RedisBucket (the window's sliding log).

Adaptive pacing. Each operation has a `Pace` in the same store, so every worker sees it:

* SP-API's `x-amzn-RateLimit-Limit` header sets the plan's rate (a seller's plan may differ
  from the documented one);
* each plan has its own bucket, so a changed plan starts afresh; a lower announced plan first
  holds calls until SP-API's bucket would be full again at the new rate;
* a 429 halves the pace at once and holds calls for one interval (SP-API's bucket is empty),
  and the burst drops to 1 until the pace is whole again: the 429 says our model of
  SP-API's bucket was wrong, so we stop spending its burst. A 429 for a call sent before
  the last slowdown says nothing new and is ignored;
* each `recovery_seconds` without a 429, the pace steps up by a quarter, back to the plan.

Late callers. A busy machine runs a caller after its slot: it wakes late, or the HTTP client's
own work and a new connection's connect hold it up between admission and the wire. Within a
queue that costs nothing (SP-API's bucket is not full: the token is there whenever the call
comes). But a call that leaves after its bucket would have been full again wastes the refill
meanwhile (a full bucket refills into nothing), while the calls reserved behind it were spaced
as if it had left on time: one of them can find SP-API's bucket empty (issue 5's soak: three
calls in 0.48 s at burst 2). Each reservation says when its bucket, without the call, is full
(`full_at`, from the GCRA state), and the limiter looks at the clock once more as the call goes
on the wire (`leaving`); a call later than LATE_SHARE of the margin's room past that time gives
its slot back and reserves again. So every call leaves within that allowance of a time GCRA would
have admitted it at, and the calls as sent stay within the plan itself, not only within the
paced rate, as long as the way from the wire to SP-API's clock varies by less than the rest of
the room. A call on time pays nothing: no store operation beyond its reservation.

The wait loop is ours, so the clock and sleep are parameters (tests run on a fake clock) and
a caller that would wait past its deadline is told at once instead of hanging; a slowdown
while a caller sleeps voids its slot, and it reserves again at the new pace. If the
shared store fails (Redis down, disk full), the limiter carries on with a process-local store
and logs why: pacing continues, and a 429 from the overlap is retried and slows the pace.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import logging
import math
import os
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from pyrate_limiter import GCRA, Rate, RateItem
from pyrate_limiter.abstracts.algorithm import State

from utils.sqlite import immediate_transaction

log = logging.getLogger(__name__)

BACKENDS = ("memory", "sqlite", "redis")
# A 429 multiplies the pace by this; each quiet recovery period multiplies it by RECOVERY_STEP.
SLOWDOWN = 0.5
RECOVERY_STEP = 1.25
MIN_FACTOR = 1 / 64
# A call may leave this share of the margin's room (1/(rate × (1 − margin)) − 1/rate: 27 ms at
# 2/s and 5%) after its bucket would be full again; the rest absorbs what follows the wire, which
# the limiter cannot see: the network and the upstream reading its clock (up to 14 ms in the soak).
LATE_SHARE = 0.5
_GCRA = GCRA()
_LEAK_EVERY_MS = 10_000
_STORE_ERROR_LOG_EVERY = 60.0
# How long Redis keeps a key's GCRA state after its last use.
_STATE_TTL_MS = 600_000
# After a store failure, pace on the process-local fallback this long before trying the store again.
_STORE_RETRY_AFTER = 5.0


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


@dataclass(frozen=True)
class Pace:
    """What is known of one operation's plan, shared by every worker through the store."""

    rate: float
    burst: int
    # True once SP-API announced the rate (x-amzn-RateLimit-Limit); else the configured one.
    announced: bool = False
    # Share of the rate in use after 429s (1 = the whole plan), and when it was last cut.
    factor: float = 1.0
    throttled_at: float = 0.0
    # No call before this clock time: SP-API's bucket was empty at the last 429.
    hold_until: float = 0.0

    def to_json(self) -> str:
        """The pace as JSON, for a shared store."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str | bytes) -> Pace:
        """The pace stored by `to_json`."""
        return cls(**json.loads(text))

    def factor_at(self, now: float, recovery_seconds: float) -> float:
        """The factor in force at `now`: the stored one, stepped up once per quiet recovery period."""
        if self.factor >= 1 or recovery_seconds <= 0:
            return min(self.factor, 1.0)
        quiet_periods = max(0, math.floor((now - self.throttled_at) / recovery_seconds + 1e-9))
        return min(1.0, self.factor * RECOVERY_STEP**quiet_periods)

    def plan_at(self, now: float, recovery_seconds: float) -> Plan:
        """The plan to pace by at `now`: burst 1 while slowed, the whole burst once recovered."""
        factor = self.factor_at(now, recovery_seconds)
        return Plan(self.rate * factor, self.burst if factor >= 1 else 1)


def _ms(seconds: float) -> int:
    # The epsilon keeps a time computed from a millisecond slot (slot_ms / 1000) on that same millisecond.
    return math.floor(seconds * 1000 + 1e-6)


@dataclass(frozen=True)
class Reservation:
    """A slot reserved at `at` (limiter clock, seconds); or none (`at` None) and the earliest time to ask again.

    `full_at` (never before `at`) is when the plan's bucket, without this call, would be full again:
    until then the call may leave late at no cost. Later, SP-API's bucket sits full and its refill is
    lost, while the calls reserved behind this one were spaced as if it had left on time.
    """

    at: float | None
    earliest: float
    full_at: float = math.inf

    @classmethod
    def made(cls, slot_ms: int, full_at_us: int) -> Reservation:
        return cls(slot_ms / 1000, slot_ms / 1000, max(slot_ms / 1000, full_at_us / 1_000_000))

    @classmethod
    def refused(cls, earliest_ms: int) -> Reservation:
        return cls(None, earliest_ms / 1000)


def _emission_us(rate: Rate) -> int:
    """Microseconds per call under `rate`, rounded as pyrate-limiter's GCRA rounds them."""
    return max(1, math.ceil(rate.interval * 1000 / rate.limit))


def _full_at_us(rates: list[Rate], state_after: State) -> int:
    """When the buckets, without the call that left `state_after`, would be full again (or the call's slot, if later).

    GCRA's state after a call at t is max(state before, t) + one emission; the tightest rate decides.
    """
    return min(int(tat) - _emission_us(rate) for rate, tat in zip(rates, state_after, strict=True))


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


def _gcra_slot(rates: list[Rate], state: State | None, start_ms: int) -> tuple[State, int]:
    """The first time at or after `start_ms` that pyrate-limiter's GCRA admits a call, and its state after that call."""
    state = state if state is not None and len(state) == len(rates) else _GCRA.initial(rates)
    slot_ms = start_ms
    while True:
        new_state, decision = _GCRA.step(rates, state, slot_ms, 1)
        if decision.allowed:
            return new_state, slot_ms
        slot_ms += max(decision.retry_after_ms or 1, 1)


class _WindowLog:
    """The call window as a sorted log of slot times (slots may be reserved ahead, out of order across keys).

    A slot at t is allowed while fewer than `limit` slots lie in [t - span, t + span]: every window
    that contains t then holds fewer than `limit` others. Exact when t is the latest slot, cautious otherwise.
    """

    def __init__(self, rate: Rate) -> None:
        self.limit, self.span = rate.limit, rate.interval
        self.times: list[int] = []

    def earliest(self, slot_ms: int) -> int:
        """`slot_ms` if the window allows it, else the next time worth asking again."""
        low = bisect.bisect_left(self.times, slot_ms - self.span)
        high = bisect.bisect_right(self.times, slot_ms + self.span)
        if high - low < self.limit:
            return slot_ms
        return max(slot_ms + 1, self.times[low] + self.span + 1)

    def add(self, slot_ms: int) -> None:
        bisect.insort(self.times, slot_ms)
        del self.times[: bisect.bisect_left(self.times, slot_ms - 2 * self.span)]


class LimiterStore(ABC):
    """Where the limiter's state lives: GCRA state per key, the call window, and each key's Pace."""

    backend: str = ""
    location: str = ""

    @abstractmethod
    def reserve(self, key: str, rates: list[Rate], clock: Callable[[], float], not_before: float, latest: float) -> Reservation:
        """Reserve the first slot at or after `not_before` that `key`'s plan and the call window allow.

        Slots are handed out in the order callers ask, across threads, processes and hosts, so no
        caller starves. None is reserved if the first slot is after `latest`. The clock is read
        once the store is locked, so waiting for the lock never makes a slot look older than it is.
        """

    @abstractmethod
    def read_pace(self, key: str) -> Pace | None:
        """`key`'s pace, or None if nothing has been learned yet."""

    @abstractmethod
    def update_pace(self, key: str, change: Callable[[Pace | None], Pace | None]) -> Pace | None:
        """Apply `change` to `key`'s pace atomically (None from `change` keeps it); return the result."""

    @abstractmethod
    def paces(self) -> dict[str, Pace]:
        """Every stored pace, by key."""

    def close(self) -> None:  # noqa: B027 - optional
        """Release connections."""


class MemoryStore(LimiterStore):
    """State in this process, guarded by a lock."""

    backend = "memory"
    location = "this process"

    def __init__(self, window: Rate) -> None:
        self._lock = threading.Lock()
        self._states: dict[str, State] = {}
        self._window = _WindowLog(window)
        self._paces: dict[str, Pace] = {}

    def reserve(self, key: str, rates: list[Rate], clock: Callable[[], float], not_before: float, latest: float) -> Reservation:
        with self._lock:
            new_state, slot_ms = _gcra_slot(rates, self._states.get(key), _ms(max(clock(), not_before)))
            if slot_ms > _ms(latest):
                return Reservation.refused(slot_ms)
            earliest = self._window.earliest(slot_ms)
            if earliest != slot_ms:
                return Reservation.refused(earliest)
            self._window.add(slot_ms)
            self._states[key] = new_state
            return Reservation.made(slot_ms, _full_at_us(rates, new_state))

    def read_pace(self, key: str) -> Pace | None:
        with self._lock:
            return self._paces.get(key)

    def update_pace(self, key: str, change: Callable[[Pace | None], Pace | None]) -> Pace | None:
        with self._lock:
            new = change(self._paces.get(key))
            if new is not None:
                self._paces[key] = new
            return self._paces.get(key)

    def paces(self) -> dict[str, Pace]:
        with self._lock:
            return dict(self._paces)


class SQLiteStore(LimiterStore):
    """State in a WAL-mode SQLite file shared by every process on the machine.

    One connection per process, used under a lock; every admission is one `BEGIN IMMEDIATE`
    transaction (the write lock is taken first), so read-step-write is atomic across processes.
    """

    backend = "sqlite"

    def __init__(self, path: Path, window: Rate) -> None:
        self.location = str(path)
        self._path = path
        self._window = window
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._inherited: sqlite3.Connection | None = None
        self._pid = 0
        self._leaked_at = 0

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock, immediate_transaction(self._connection()) as conn:
            yield conn

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        # Autocommit reads take no write lock; WAL readers never wait for writers.
        with self._lock:
            yield self._connection()

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():
            # A connection must not cross a fork: each gunicorn worker opens its own, and keeps
            # (never uses, never closes) one it inherited, as SQLite asks.
            self._inherited = self._conn
            self._path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self._path, timeout=10, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            # Pacing state is worth nothing after a crash: never wait for the disk between admitting a call and sending it.
            conn.execute("PRAGMA synchronous=OFF")
            conn.execute("CREATE TABLE IF NOT EXISTS gcra (key TEXT PRIMARY KEY, state TEXT NOT NULL)")
            conn.execute("CREATE TABLE IF NOT EXISTS pace (key TEXT PRIMARY KEY, pace TEXT NOT NULL)")
            conn.execute("CREATE TABLE IF NOT EXISTS window_calls (ts INTEGER NOT NULL)")
            conn.execute("CREATE INDEX IF NOT EXISTS window_calls_ts ON window_calls (ts)")
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    def reserve(self, key: str, rates: list[Rate], clock: Callable[[], float], not_before: float, latest: float) -> Reservation:
        with self._transaction() as conn:
            row = conn.execute("SELECT state FROM gcra WHERE key = ?", (key,)).fetchone()
            stored = tuple(json.loads(row[0])) if row else None
            new_state, slot_ms = _gcra_slot(rates, stored, _ms(max(clock(), not_before)))
            if slot_ms > _ms(latest):
                return Reservation.refused(slot_ms)
            earliest = self._window_earliest(conn, slot_ms)
            if earliest != slot_ms:
                return Reservation.refused(earliest)
            conn.execute("INSERT INTO window_calls (ts) VALUES (?)", (slot_ms,))
            conn.execute(
                "INSERT INTO gcra (key, state) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET state = excluded.state",
                (key, json.dumps(list(new_state))),
            )
            return Reservation.made(slot_ms, _full_at_us(rates, new_state))

    def _window_earliest(self, conn: sqlite3.Connection, slot_ms: int) -> int:
        """_WindowLog's rule on the window_calls table, inside the reservation's transaction."""
        span, limit = self._window.interval, self._window.limit
        if slot_ms - self._leaked_at > _LEAK_EVERY_MS:
            conn.execute("DELETE FROM window_calls WHERE ts < ?", (slot_ms - 2 * span,))
            self._leaked_at = slot_ms
        count, oldest = conn.execute(
            "SELECT COUNT(*), MIN(ts) FROM window_calls WHERE ts >= ? AND ts <= ?", (slot_ms - span, slot_ms + span)
        ).fetchone()
        if count < limit:
            return slot_ms
        return max(slot_ms + 1, oldest + span + 1)

    def read_pace(self, key: str) -> Pace | None:
        with self._reading() as conn:
            row = conn.execute("SELECT pace FROM pace WHERE key = ?", (key,)).fetchone()
        return Pace.from_json(row[0]) if row else None

    def update_pace(self, key: str, change: Callable[[Pace | None], Pace | None]) -> Pace | None:
        with self._transaction() as conn:
            row = conn.execute("SELECT pace FROM pace WHERE key = ?", (key,)).fetchone()
            old = Pace.from_json(row[0]) if row else None
            new = change(old)
            if new is None:
                return old
            conn.execute(
                "INSERT INTO pace (key, pace) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET pace = excluded.pace",
                (key, new.to_json()),
            )
            return new

    def paces(self) -> dict[str, Pace]:
        with self._reading() as conn:
            rows = conn.execute("SELECT key, pace FROM pace ORDER BY key").fetchall()
        return {key: Pace.from_json(text) for key, text in rows}

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None


class RedisStore(LimiterStore):
    """State in Redis, shared by every host: pyrate-limiter's GCRA (its Lua script) and RedisBucket."""

    backend = "redis"
    PREFIX = "fba:ratelimit:"

    def __init__(self, url: str, window: Rate, location: str) -> None:
        import redis

        self.location = location
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        # No retries inside redis-py (its default is 10 with backoff): a failure goes to the fallback at once.
        self._redis = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0, retry=Retry(NoBackoff(), 0))
        self._window_rate = window
        self._window: Any = None
        self._gcra_script = _GCRA.redis_script() or ""
        self._gcra_sha = hashlib.sha1(self._gcra_script.encode()).hexdigest()
        self._lock = threading.Lock()
        self._leaked_at = 0

    def reserve(self, key: str, rates: list[Rate], clock: Callable[[], float], not_before: float, latest: float) -> Reservation:
        from pyrate_limiter import RedisBucket

        with self._lock:
            if self._window is None:
                self._window = RedisBucket.init([self._window_rate], self._redis, self.PREFIX + "window")
        # Each check is one atomic script in Redis; a denied check reports when the plan admits,
        # and the next check reserves that slot unless another client took it first.
        slot_ms = _ms(max(clock(), not_before))
        while True:
            retry_after_ms, state = self._gcra_check(self.PREFIX + "gcra:" + key, rates, slot_ms)
            if retry_after_ms is None:
                break
            slot_ms += retry_after_ms
            if slot_ms > _ms(latest):
                return Reservation.refused(slot_ms)
        # The window's script counts every slot from slot - span on, future ones included: cautious.
        # If it refuses, the plan's slot is spent unused, which only slows us.
        item = RateItem("window", slot_ms)
        with self._lock:
            if slot_ms - self._leaked_at > _LEAK_EVERY_MS:
                self._window.leak(slot_ms)
                self._leaked_at = slot_ms
            if not self._window.put(item):
                return Reservation.refused(slot_ms + max(self._window.waiting(item), 1))
        return Reservation.made(slot_ms, _full_at_us(rates, state))

    def _gcra_check(self, name: str, rates: list[Rate], slot_ms: int) -> tuple[int | None, State]:
        """A call at `slot_ms` through pyrate-limiter's GCRA script, and the state that leaves, read in the same MULTI.

        (None, the state after the call) if admitted, else (ms until the plan admits it, the state).
        RedisStateStore.check runs the same script but keeps the state to itself.
        """
        from redis.exceptions import NoScriptError

        # The script's arguments: the header RedisStateStore sends, then the algorithm's own. Slots are
        # reserved up to REQUEST_TIMEOUT ahead: keep the state well past that (the library's default
        # TTL, two bucket drains, could forget a reservation still to come).
        args = [slot_ms, 1, _STATE_TTL_MS, len(rates), *_GCRA.redis_args(rates)]
        fields = [f"tat{i + 1}" for i in range(len(rates))]
        try:
            reply, stored = self._gcra_pipeline(name, args, fields).execute()
        except NoScriptError:
            # A new (or restarted) Redis: load the script, then run it again.
            self._redis.script_load(self._gcra_script)
            reply, stored = self._gcra_pipeline(name, args, fields).execute()
        state = _GCRA.decode([value.decode() for value in stored]) if all(stored) else _GCRA.initial(rates)
        index, retry_after_ms = int(reply[0]), int(reply[1])
        return (None if index < 0 else max(retry_after_ms, 1)), state

    def _gcra_pipeline(self, name: str, args: list[int], fields: list[str]) -> Any:
        pipe = self._redis.pipeline(transaction=True)
        pipe.evalsha(self._gcra_sha, 1, name, *args)
        pipe.hmget(name, fields)
        return pipe

    def read_pace(self, key: str) -> Pace | None:
        text = self._redis.get(self.PREFIX + "pace:" + key)
        return Pace.from_json(text) if text else None

    def update_pace(self, key: str, change: Callable[[Pace | None], Pace | None]) -> Pace | None:
        name = self.PREFIX + "pace:" + key
        result: list[Pace | None] = [None]

        def apply(pipe: Any) -> None:
            text = pipe.get(name)
            old = Pace.from_json(text) if text else None
            new = change(old)
            result[0] = old if new is None else new
            if new is not None:
                pipe.multi()
                pipe.set(name, new.to_json())

        # WATCH/MULTI: redis-py runs `apply` again if another client changed the key meanwhile.
        self._redis.transaction(apply, name)
        return result[0]

    def paces(self) -> dict[str, Pace]:
        names = sorted(self._redis.scan_iter(match=self.PREFIX + "pace:*", count=100))
        texts = self._redis.mget(names) if names else []
        prefix = len(self.PREFIX + "pace:")
        return {name.decode()[prefix:]: Pace.from_json(text) for name, text in zip(names, texts, strict=True) if text}

    def close(self) -> None:
        self._redis.close()


def window_rate(calls: int, seconds: float) -> Rate:
    """The sliding window's rate: `calls` in any `seconds`."""
    return Rate(calls, max(1, round(seconds * 1000)))


def build_store(backend: str, *, data_dir: str, redis_url: str, redis_label: str, window_calls: int, window_seconds: float) -> LimiterStore:
    """The store for RATE_LIMIT_BACKEND `backend`."""
    window = window_rate(window_calls, window_seconds)
    if backend == "memory":
        return MemoryStore(window)
    if backend == "sqlite":
        return SQLiteStore(Path(data_dir) / "ratelimit.sqlite", window)
    if backend == "redis":
        return RedisStore(redis_url, window, redis_label)
    raise ValueError(f"unknown rate limit backend {backend!r}; expected one of {', '.join(BACKENDS)}")


class CallLimiter:
    """Admits calls under a per-operation token bucket and a global sliding window, at an adaptive pace."""

    def __init__(
        self,
        *,
        window_calls: int,
        window_seconds: float,
        default_plan: Plan,
        margin: float = 0.05,
        recovery_seconds: float = 60.0,
        store: LimiterStore | None = None,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        window = window_rate(window_calls, window_seconds)
        self.store = store or MemoryStore(window)
        # Shared state holds times that other processes and hosts compare: wall-clock time.
        self._clock = clock or (time.monotonic if isinstance(self.store, MemoryStore) else time.time)
        self._sleep = sleep
        self._margin = margin
        self._recovery = recovery_seconds
        self._default_plan = default_plan
        # Used only while the shared store is failing.
        self._fallback = MemoryStore(window)
        self._failing_since: float | None = None
        self._failed_at = -math.inf
        self._last_store_error_log = -math.inf
        self._logged_plans: dict[str, Plan] = {}
        self._log_lock = threading.Lock()

    @property
    def backend(self) -> str:
        """The configured store's backend name."""
        return self.store.backend

    # -- the pace ---------------------------------------------------------------------------

    def pace(self, key: str) -> Pace:
        """`key`'s pace: learned (shared by every worker), else the configured plan."""
        return self._with_store(lambda store: store.read_pace(key)) or self._default_pace()

    def _default_pace(self) -> Pace:
        return Pace(self._default_plan.rate, self._default_plan.burst)

    def plan(self, key: str) -> Plan:
        """The plan the limiter paces `key` by now (before the safety margin)."""
        return self.pace(key).plan_at(self._clock(), self._recovery)

    def set_plan(self, key: str, plan: Plan) -> None:
        """Take `plan` as `key`'s plan, as if SP-API had announced it; the factor returns to 1."""
        self._update(key, lambda old: Pace(plan.rate, plan.burst, announced=True))

    def observe(self, key: str, *, status: int, rate_limit_header: str | None, sent_at: float) -> None:
        """Learn from one SP-API response to a call for `key` that went out at `sent_at` (limiter clock)."""
        announced = _parse_rate(rate_limit_header)
        if announced is not None:
            current, now = self.pace(key), self._clock()
            if not (current.announced and math.isclose(current.rate, announced, rel_tol=1e-6)):
                self._update(key, lambda old: _announce(old or current, announced, now))
        if status == 429:
            now, default = self._clock(), self._default_pace()
            self._update(key, lambda old: _slow_down(old or default, now, sent_at, self._recovery))

    def snapshot(self) -> dict[str, Any]:
        """Backend, location and every known operation's pace, for /health."""
        now = self._clock()
        paces = self._with_store(lambda store: store.paces())
        operations = {}
        for key, pace in sorted(paces.items()):
            plan = pace.plan_at(now, self._recovery)
            operations[key] = {
                "plan_rate": pace.rate,
                "plan_source": "x-amzn-RateLimit-Limit" if pace.announced else "SP_API_RATE",
                "pace_rate": round(plan.rate * (1 - self._margin), 4),
                "burst": plan.burst,
                "factor": round(pace.factor_at(now, self._recovery), 4),
                "slowed_by_429": pace.factor_at(now, self._recovery) < 1,
            }
        return {
            "backend": self.store.backend,
            "location": self.store.location,
            "store_ok": self._failing_since is None,
            "default_plan": {"rate": self._default_plan.rate, "burst": self._default_plan.burst},
            "operations": operations,
        }

    def _update(self, key: str, change: Callable[[Pace | None], Pace | None]) -> None:
        before = self.pace(key)
        after = self._with_store(lambda store: store.update_pace(key, change)) or before
        self._log_plan_change(key, after)

    def _log_plan_change(self, key: str, pace: Pace) -> None:
        plan = pace.plan_at(self._clock(), self._recovery)
        with self._log_lock:
            previous = self._logged_plans.get(key, Plan(self._default_plan.rate, self._default_plan.burst))
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

    def _rates(self, plan: Plan) -> list[Rate]:
        # One emission per interval: the interval is 1/rate stretched by the margin.
        interval_ms = math.ceil(1000 / (plan.rate * (1 - self._margin)))
        return [Rate(1, interval_ms, burst=plan.burst)]

    def _late_allowance(self, plan: Plan) -> float:
        """How long after its bucket would be full a call for `plan` may still leave: LATE_SHARE of the margin's room."""
        room = _emission_us(self._rates(plan)[0]) / 1_000_000 - 1 / plan.rate
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
        return self._admit(admission.key, admission.started, admission.deadline)

    def _admit(self, key: str, start: float, deadline: float) -> Admission:
        while True:
            pace = self.pace(key)
            now = self._clock()
            self._log_plan_change(key, pace)
            plan = pace.plan_at(max(now, pace.hold_until), self._recovery)
            reservation = self._reserve(key, pace, plan, deadline)
            if reservation.at is None:
                if reservation.earliest > deadline:
                    raise RateLimited(reservation.earliest - now)
                self._sleep(max(0.001, reservation.earliest - self._clock()))  # always progress
                continue
            delay = reservation.at - self._clock()
            if delay > 0:
                self._sleep(delay)
                if self.pace(key).throttled_at != pace.throttled_at:
                    continue  # a 429 while it slept: the slot is void
            admission = Admission(key, start, deadline, self._clock(), reservation.full_at, self._late_allowance(plan))
            if self._on_time(admission):
                return admission

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

    def _reserve(self, key: str, pace: Pace, plan: Plan, deadline: float) -> Reservation:
        rates = self._rates(plan)
        # One bucket per plan: a changed plan starts a fresh bucket (after any hold its change set).
        bucket = f"{key}|{rates[0].interval}ms|{rates[0].burst}"
        return self._with_store(lambda store: store.reserve(bucket, rates, self._clock, pace.hold_until, deadline))

    def now(self) -> float:
        """The limiter's clock (the one `observe`'s `sent_at` is on)."""
        return self._clock()

    def close(self) -> None:
        """Close the store's connections."""
        self.store.close()

    def _with_store(self, operation: Callable[[LimiterStore], Any]) -> Any:
        """Run `operation` on the store; on a store failure, on the process-local fallback (for a while)."""
        if self._failing_since is not None and time.monotonic() - self._failed_at < _STORE_RETRY_AFTER:
            return operation(self._fallback)
        try:
            result = operation(self.store)
        except Exception as exc:  # sqlite3, OSError, redis errors: keep pacing locally
            now = self._failed_at = time.monotonic()
            if self._failing_since is None:
                self._failing_since = now
            if now - self._last_store_error_log >= _STORE_ERROR_LOG_EVERY:
                self._last_store_error_log = now
                log.error(
                    "rate limit store %s (%s) failed, pacing this process alone until it is back: %s: %s",
                    self.store.backend,
                    self.store.location,
                    type(exc).__name__,
                    exc,
                )
            return operation(self._fallback)
        if self._failing_since is not None:
            self._failing_since = None
            log.warning("rate limit store %s (%s) is back", self.store.backend, self.store.location)
        return result


def _parse_rate(header: str | None) -> float | None:
    """The rate in an x-amzn-RateLimit-Limit header ("2.0"), or None if absent or not a positive number."""
    if not header:
        return None
    try:
        value = float(header.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) and value > 0 else None


def _announce(pace: Pace, rate: float, now: float) -> Pace | None:
    """SP-API announced `rate` at `now`: the plan follows it, at full pace (the announcement is fresher than any 429).

    A lower plan than assumed may find SP-API's bucket empty, and the new plan's bucket starts
    full: hold calls until SP-API's would be full again at the new rate.
    """
    if pace.announced and math.isclose(pace.rate, rate, rel_tol=1e-6):
        return None
    hold_until = max(pace.hold_until, now + pace.burst / rate) if rate < pace.rate else pace.hold_until
    return Pace(rate, pace.burst, announced=True, hold_until=hold_until)


def _slow_down(pace: Pace, now: float, sent_at: float, recovery: float) -> Pace | None:
    """A 429 at `now` for a call sent at `sent_at`: halve the pace and hold one interval, unless already done since."""
    if sent_at < pace.throttled_at:
        return None  # sent at the old pace; this slowdown is already in force
    factor = max(MIN_FACTOR, pace.factor_at(now, recovery) * SLOWDOWN)
    return replace(pace, factor=factor, throttled_at=now, hold_until=now + 1 / (pace.rate * factor))
