"""Admission of SP-API calls, shared by threads, gunicorn workers and hosts, at a pace that adapts.

Two limits apply to every call, checked at the moment the request goes on the wire:

* the operation's usage plan, a token bucket per (region, operation) (Catalog Items
  2022-04-01: rate 2 requests/s, burst 2), paced a small margin under the plan;
* a sliding window over all calls: at most `window_calls` in any `window_seconds`.

The algorithms are pyrate-limiter's: GCRA (a token bucket kept as one timestamp) for the
plan, a sliding-window log for the window. Their state lives in a `LimiterStore`:

* `memory`: this process only;
* `sqlite`: a file shared by every worker on the machine; each admission (GCRA step and
  window check) is one `BEGIN IMMEDIATE` transaction, with the clock read under the lock.
  (pyrate-limiter's own SQLiteBucket is a log: its floor for 5 calls at 2/s burst 2 is
  2.0 s against the token bucket's 1.5 s, and it takes a second lock for the window);
* `redis`: shared by every host: pyrate-limiter's RedisStateStore (GCRA in Lua) and RedisBucket.

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

The wait loop is ours, so the clock and sleep are parameters (tests run on a fake clock) and
a caller that would wait past its deadline is told at once instead of hanging. If the
shared store fails (Redis down, disk full), the limiter carries on with a process-local store
and logs why: pacing continues, and a 429 from the overlap is retried and slows the pace.
"""

from __future__ import annotations

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

from pyrate_limiter import GCRA, InMemoryBucket, Rate, RateItem
from pyrate_limiter.abstracts.algorithm import Decision, SlidingWindowLog, State
from pyrate_limiter.abstracts.store import StateStore

log = logging.getLogger(__name__)

BACKENDS = ("memory", "sqlite", "redis")
# A 429 multiplies the pace by this; each quiet recovery period multiplies it by RECOVERY_STEP.
SLOWDOWN = 0.5
RECOVERY_STEP = 1.25
MIN_FACTOR = 1 / 64
_GCRA = GCRA()
_WINDOW = SlidingWindowLog()
_LEAK_EVERY_MS = 10_000
_STORE_ERROR_LOG_EVERY = 60.0
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


def _wait(decision: Decision) -> float:
    """Seconds until a denied call may go (0 when admitted)."""
    if decision.allowed:
        return 0.0
    return max(decision.retry_after_ms or 1, 1) / 1000


def _ms(seconds: float) -> int:
    return math.floor(seconds * 1000)


class LimiterStore(ABC):
    """Where the limiter's state lives: GCRA state per key, the call window, and each key's Pace."""

    backend: str = ""
    location: str = ""

    @abstractmethod
    def admit(self, key: str, rates: list[Rate], clock: Callable[[], float]) -> float:
        """Take a slot of `key`'s plan and of the call window; 0 if taken, else seconds until one may be.

        The clock is read once the store is locked, so that waiting for the lock never makes
        an admission look older than it is.
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
        self._window = InMemoryBucket([window])
        self._paces: dict[str, Pace] = {}
        self._leaked_at = 0

    def admit(self, key: str, rates: list[Rate], clock: Callable[[], float]) -> float:
        with self._lock:
            now_ms = _ms(clock())
            state = self._states.get(key)
            new_state, decision = _GCRA.step(rates, state if state and len(state) == len(rates) else _GCRA.initial(rates), now_ms, 1)
            if not decision.allowed:
                return _wait(decision)
            if now_ms - self._leaked_at > _LEAK_EVERY_MS:
                self._window.leak(now_ms)
                self._leaked_at = now_ms
            item = RateItem("window", now_ms)
            if not self._window.put(item):
                return max(self._window.waiting(item), 1) / 1000
            self._states[key] = new_state
            return 0.0

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
        with self._lock:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

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

    def admit(self, key: str, rates: list[Rate], clock: Callable[[], float]) -> float:
        with self._transaction() as conn:
            now_ms = _ms(clock())
            row = conn.execute("SELECT state FROM gcra WHERE key = ?", (key,)).fetchone()
            stored = tuple(json.loads(row[0])) if row else ()
            new_state, decision = _GCRA.step(rates, stored if len(stored) == len(rates) else _GCRA.initial(rates), now_ms, 1)
            if not decision.allowed:
                return _wait(decision)
            wait = self._admit_window(conn, now_ms)
            if wait:
                return wait
            conn.execute(
                "INSERT INTO gcra (key, state) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET state = excluded.state",
                (key, json.dumps(list(new_state))),
            )
            return 0.0

    def _admit_window(self, conn: sqlite3.Connection, now_ms: int) -> float:
        """pyrate-limiter's sliding-window log on the window_calls table, inside the admission's transaction."""
        rate = self._window
        if now_ms - self._leaked_at > _LEAK_EVERY_MS:
            conn.execute("DELETE FROM window_calls WHERE ts < ?", (_WINDOW.leak_bound([rate], now_ms),))
            self._leaked_at = now_ms
        (count,) = conn.execute("SELECT COUNT(*) FROM window_calls WHERE ts >= ?", (_WINDOW.window_start(rate, now_ms),)).fetchone()

        def peek(offset: int) -> int | None:
            found = conn.execute("SELECT ts FROM window_calls ORDER BY ts DESC LIMIT 1 OFFSET ?", (offset,)).fetchone()
            return found[0] if found else None

        decision = _WINDOW.decide([rate], [count], 1, now_ms, peek)
        if decision.allowed:
            conn.execute("INSERT INTO window_calls (ts) VALUES (?)", (now_ms,))
        return _wait(decision)

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
    """State in Redis, shared by every host: pyrate-limiter's RedisStateStore (GCRA in Lua) and RedisBucket."""

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
        self._states: dict[str, StateStore] = {}
        self._lock = threading.Lock()
        self._leaked_at = 0

    def admit(self, key: str, rates: list[Rate], clock: Callable[[], float]) -> float:
        from pyrate_limiter import RedisBucket
        from pyrate_limiter.buckets.redis_state import RedisStateStore

        with self._lock:
            state = self._states.get(key)
            if state is None:
                state = self._states[key] = RedisStateStore(self._redis, self.PREFIX + "gcra:" + key)
            if self._window is None:
                self._window = RedisBucket.init([self._window_rate], self._redis, self.PREFIX + "window")
        # Redis runs each script atomically; the GCRA slot is spent even if the window then says no,
        # which only slows us.
        now_ms = _ms(clock())
        wait = _wait(state.check(_GCRA, rates, now_ms, 1))
        if wait:
            return wait
        with self._lock:
            if now_ms - self._leaked_at > _LEAK_EVERY_MS:
                self._window.leak(now_ms)
                self._leaked_at = now_ms
            item = RateItem("window", now_ms)
            return 0.0 if self._window.put(item) else max(self._window.waiting(item), 1) / 1000

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

    def _try_admit(self, key: str) -> float:
        """Take a slot now if the pace and both limits allow; else return seconds until one may."""
        pace = self.pace(key)
        now = self._clock()
        if pace.hold_until > now:
            return pace.hold_until - now
        self._log_plan_change(key, pace)
        rates = self._rates(pace.plan_at(now, self._recovery))
        # One bucket per plan: a changed plan starts a fresh bucket (after the hold its change set).
        bucket = f"{key}|{rates[0].interval}ms|{rates[0].burst}"
        return self._with_store(lambda store: store.admit(bucket, rates, self._clock))

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
