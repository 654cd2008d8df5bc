"""Where the limiter's state lives: `memory` (this process), `sqlite` (every process on the machine), `redis` (every host).

A store keeps each plan's GCRA bucket (its theoretical arrival time, in ms), the call window
shared by every SP-API operation (the slots reserved, in ms), each operation's `Pace`, and,
apart from all of these, the buckets of the per-API-key quota. One store operation is one round
trip (one SQLite transaction or statement, one Redis command):

* `reserve`: one admission. The store checks that the caller paces by the stored pace, takes the
  first slot GCRA and the window allow, and answers with the stored pace: SQLite, one `BEGIN
  IMMEDIATE` transaction with the clock read under the lock; Redis, one EVALSHA of our script. A
  caller whose pace is stale gets the stored one instead of a slot and asks again, so the pace is
  never read apart from a reservation when nothing has changed.
* `take`: one request under an API key's quota, now or never (its own buckets: no window, no pace).
* `read_pace`, `update_pace`, `paces`: the pace alone (a 429, a newly announced plan, /health).

Each store also has `notices`: how a caller asleep on its slot learns, without a store operation,
that a pace changed meanwhile (a 429 voids its slot). Memory: a counter. SQLite: a counter in a
small file that every process on the machine maps into memory, bumped after each committed change.
Redis: a channel each process subscribes to, on which each change is published with it; a sleeper
reads what has arrived on that socket. When notices cannot vouch (not subscribed yet, Redis gone),
they say "maybe", and the caller reads the pace.
"""

from __future__ import annotations

import bisect
import logging
import math
import mmap
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from utils.rate_limit.plan import Bucket, Pace, to_ms
from utils.redis_client import redis_client
from utils.sqlite import SQLiteFile

log = logging.getLogger(__name__)

BACKENDS = ("memory", "sqlite", "redis")
# SQLite: old rows of the window (and full buckets) are deleted by one reservation per process this often.
_LEAK_EVERY_MS = 10_000
# How long Redis keeps a plan's bucket after its last reservation: slots are reserved up to
# REQUEST_TIMEOUT ahead, and a forgotten bucket would give a reserved slot again.
_STATE_TTL_MS = 600_000
# After notices fail (Redis gone), try to subscribe again only after this long; log it at most this often.
_NOTICES_RETRY_AFTER = 5.0
_NOTICES_LOG_EVERY = 60.0


@dataclass(frozen=True)
class Window:
    """The sliding window over every SP-API call: at most `calls` in any `span_ms`."""

    calls: int
    span_ms: int

    @classmethod
    def of(cls, calls: int, seconds: float) -> Window:
        """RATE_LIMIT_CALLS in any RATE_LIMIT_WINDOW seconds."""
        return cls(calls, max(1, round(seconds * 1000)))

    def earliest(self, slot_ms: int, count: int, first_ms: int | None) -> int:
        """`slot_ms` if it may be taken with `count` slots within a span of it, else when to ask again.

        A slot at t is allowed while fewer than `calls` slots lie in [t - span, t + span]: every window
        containing t then holds fewer than `calls` others. Exact when t is the latest slot, cautious
        otherwise (slots are reserved ahead, out of order across operations). `first_ms` is the
        earliest of those slots: nothing changes before it leaves the window.
        """
        if count < self.calls or first_ms is None:
            return slot_ms
        return max(slot_ms + 1, first_ms + self.span_ms + 1)


@dataclass(frozen=True)
class Reservation:
    """A store's answer to `reserve`, with `pace`, the key's stored pace as it answered (None: nothing learned yet).

    `at`: the slot reserved (limiter clock, seconds); or None, and then either `stale` (the caller's
    pace was not the stored one: nothing reserved, ask again with `pace`) or `earliest`, the first
    time worth asking again. `full_at` (never before `at`) is when the plan's bucket, without this
    call, would be full again: until then the call may leave late at no cost. Later, SP-API's
    bucket sits full and its refill is lost, while the calls reserved behind this one were spaced
    as if it had left on time.
    """

    at: float | None
    earliest: float
    full_at: float = math.inf
    pace: Pace | None = None
    stale: bool = False

    @classmethod
    def made(cls, slot_ms: int, full_at_ms: int, pace: Pace | None) -> Reservation:
        """The slot at `slot_ms`; the bucket without it is full at `full_at_ms`."""
        return cls(slot_ms / 1000, slot_ms / 1000, max(slot_ms, full_at_ms) / 1000, pace)

    @classmethod
    def refused(cls, earliest_ms: int, pace: Pace | None) -> Reservation:
        """No slot; ask again at `earliest_ms`."""
        return cls(None, earliest_ms / 1000, pace=pace)

    @classmethod
    def stale_pace(cls, pace: Pace | None) -> Reservation:
        """No slot: the caller paces by another pace than `pace`, the stored one."""
        return cls(None, -math.inf, pace=pace, stale=True)


class PaceNotices(ABC):
    """How a caller learns, without a store operation, whether a pace may have changed since a moment it marked."""

    @abstractmethod
    def mark(self) -> int | None:
        """A token for now; None if these notices cannot vouch for what follows."""

    def changed_since(self, mark: int | None) -> bool:
        """False only if no pace changed since `mark`; True if one did, or may have."""
        return mark is None or self.mark() != mark

    def close(self) -> None:  # noqa: B027 - optional
        """Release what the notices hold."""


class LimiterStore(ABC):
    """Where the limiter's state lives: buckets, the call window, each key's Pace, the API-key quota."""

    backend: str = ""
    location: str = ""
    notices: PaceNotices

    @abstractmethod
    def reserve(
        self, key: str, bucket: Bucket, pace: Pace | None, clock: Callable[[], float], not_before: float, latest: float
    ) -> Reservation:
        """Reserve for `key` the first slot at or after `not_before` that `bucket` and the call window allow.

        Only if `pace` is `key`'s stored pace (None: none stored); else a stale answer with the stored
        one. Slots are handed out in the order callers ask, across threads, processes and hosts, so no
        caller starves. None is reserved if the first slot is after `latest`. The clock is read once
        the store is locked, so waiting for the lock never makes a slot look older than it is.
        """

    @abstractmethod
    def take(self, key: str, bucket: Bucket, clock: Callable[[], float]) -> float | None:
        """Let one request under quota `key` through now if `bucket` allows it (None), else seconds until it would."""

    @abstractmethod
    def read_pace(self, key: str) -> Pace | None:
        """`key`'s pace, or None if nothing has been learned yet."""

    @abstractmethod
    def update_pace(self, key: str, change: Callable[[Pace | None], Pace | None]) -> Pace | None:
        """Apply `change` to `key`'s pace atomically (None from `change` keeps it), and give notice; return the result."""

    @abstractmethod
    def paces(self) -> dict[str, Pace]:
        """Every stored pace, by key."""

    def close(self) -> None:  # noqa: B027 - optional
        """Release connections."""


# -- memory ------------------------------------------------------------------------------------


class _CountedNotices(PaceNotices):
    """Pace changes in this process: a counter bumped by the store."""

    def __init__(self) -> None:
        self.count = 0

    def mark(self) -> int:
        """The changes so far."""
        return self.count


class _WindowLog:
    """The call window as a sorted list of slot times."""

    def __init__(self, window: Window) -> None:
        self.window = window
        self.times: list[int] = []

    def earliest(self, slot_ms: int) -> int:
        """`slot_ms` if the window allows it, else the next time worth asking again."""
        span = self.window.span_ms
        low = bisect.bisect_left(self.times, slot_ms - span)
        high = bisect.bisect_right(self.times, slot_ms + span)
        return self.window.earliest(slot_ms, high - low, self.times[low] if high > low else None)

    def add(self, slot_ms: int, now_ms: int) -> None:
        """Count a call at `slot_ms`, and forget those no window from `now_ms` on can still hold."""
        bisect.insort(self.times, slot_ms)
        del self.times[: bisect.bisect_left(self.times, now_ms - 2 * self.window.span_ms)]


class MemoryStore(LimiterStore):
    """State in this process, guarded by a lock."""

    backend = "memory"
    location = "this process"

    def __init__(self, window: Window) -> None:
        self._lock = threading.Lock()
        self._tats: dict[str, int] = {}
        self._quota_tats: dict[str, int] = {}
        self._window = _WindowLog(window)
        self._paces: dict[str, Pace] = {}
        self.notices = _CountedNotices()

    def reserve(
        self, key: str, bucket: Bucket, pace: Pace | None, clock: Callable[[], float], not_before: float, latest: float
    ) -> Reservation:
        with self._lock:
            stored = self._paces.get(key)
            if stored != pace:
                return Reservation.stale_pace(stored)
            name, now_ms = bucket.name(key), to_ms(clock())
            slot_ms, tat_ms = bucket.slot(self._tats.get(name, 0), max(now_ms, to_ms(not_before)))
            if slot_ms > to_ms(latest):
                return Reservation.refused(slot_ms, stored)
            earliest = self._window.earliest(slot_ms)
            if earliest != slot_ms:
                return Reservation.refused(earliest, stored)
            self._window.add(slot_ms, now_ms)
            self._tats[name] = tat_ms
            return Reservation.made(slot_ms, tat_ms - bucket.emission_ms, stored)

    def take(self, key: str, bucket: Bucket, clock: Callable[[], float]) -> float | None:
        with self._lock:
            now_ms = to_ms(clock())
            slot_ms, tat_ms = bucket.slot(self._quota_tats.get(key, 0), now_ms)
            if slot_ms > now_ms:
                return (slot_ms - now_ms) / 1000
            self._quota_tats[key] = tat_ms
            return None

    def read_pace(self, key: str) -> Pace | None:
        with self._lock:
            return self._paces.get(key)

    def update_pace(self, key: str, change: Callable[[Pace | None], Pace | None]) -> Pace | None:
        with self._lock:
            new = change(self._paces.get(key))
            if new is not None:
                self._paces[key] = new
                self.notices.count += 1
            return self._paces.get(key)

    def paces(self) -> dict[str, Pace]:
        with self._lock:
            return dict(self._paces)


# -- sqlite ------------------------------------------------------------------------------------


class _FileNotices(PaceNotices):
    """Pace changes on this machine: a counter in a small file that every process maps into memory.

    Bumped after the change is committed, so a process that sees the new count reads the new pace.
    Reading it is a read of shared memory, not an SQLite statement. The mapping is shared, so it
    may cross a fork.
    """

    _SIZE = 8

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._map: mmap.mmap | None = None

    def _mapped(self) -> mmap.mmap:
        with self._lock:
            if self._map is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    if os.fstat(fd).st_size < self._SIZE:
                        os.ftruncate(fd, self._SIZE)
                    self._map = mmap.mmap(fd, self._SIZE)
                finally:
                    os.close(fd)
            return self._map

    def mark(self) -> int | None:
        """The count in the file; None if it cannot be mapped."""
        try:
            return int.from_bytes(self._mapped()[: self._SIZE], "little")
        except (OSError, ValueError) as exc:  # no directory, no space: then a sleeper reads the pace
            log.debug("pace notices in %s unavailable: %s: %s", self.path, type(exc).__name__, exc)
            return None

    def bump(self) -> None:
        """Say that a pace changed (once it is committed)."""
        try:
            view = self._mapped()
            with self._lock:
                count = int.from_bytes(view[: self._SIZE], "little")
                view[: self._SIZE] = ((count + 1) % 2**64).to_bytes(self._SIZE, "little")
        except (OSError, ValueError) as exc:
            # The other processes cannot map the file either, and so read the pace after a sleep.
            log.warning("pace notices in %s not written: %s: %s", self.path, type(exc).__name__, exc)

    def close(self) -> None:
        """Unmap the file from this process."""
        with self._lock:
            if self._map is not None:
                self._map.close()
                self._map = None


class SQLiteStore(LimiterStore):
    """State in a WAL-mode SQLite file shared by every process on the machine (utils/sqlite.py's SQLiteFile).

    Every reservation is one `BEGIN IMMEDIATE` transaction (the write lock first), so
    read-step-write is atomic across processes.
    """

    backend = "sqlite"
    # A transaction here lasts well under a millisecond: waiting this long for another process's means
    # the file is stuck, and the limiter then paces this process alone rather than fail its calls.
    BUSY_TIMEOUT = 10.0
    _SCHEMA = (
        "CREATE TABLE IF NOT EXISTS buckets (key TEXT PRIMARY KEY, tat_ms INTEGER NOT NULL);"
        "CREATE TABLE IF NOT EXISTS quota_buckets (key TEXT PRIMARY KEY, tat_ms INTEGER NOT NULL);"
        "CREATE TABLE IF NOT EXISTS pace (key TEXT PRIMARY KEY, pace TEXT NOT NULL);"
        "CREATE TABLE IF NOT EXISTS window_calls (ts INTEGER NOT NULL);"
        "CREATE INDEX IF NOT EXISTS window_calls_ts ON window_calls (ts);"
    )

    def __init__(self, path: Path, window: Window) -> None:
        # Pacing state is worth nothing after a crash: never wait for the disk between admitting a call and sending it.
        self._file = SQLiteFile(path, busy_timeout=self.BUSY_TIMEOUT, synchronous="OFF", schema=self._SCHEMA)
        self.location = self._file.location
        self._window = window
        # This process's threads queue for the write lock here, handed over at once, rather than in
        # SQLite's busy handler, which polls in sleeps of up to 100 ms.
        self._lock = threading.Lock()
        self._leaked_at = 0
        self.notices = _FileNotices(path.with_name(path.stem + ".pace-changes"))

    def reserve(
        self, key: str, bucket: Bucket, pace: Pace | None, clock: Callable[[], float], not_before: float, latest: float
    ) -> Reservation:
        with self._lock, self._file.transaction() as conn:
            row = conn.execute("SELECT pace FROM pace WHERE key = ?", (key,)).fetchone()
            stored = Pace.from_json(row[0]) if row else None
            if stored != pace:
                return Reservation.stale_pace(stored)
            name, now_ms = bucket.name(key), to_ms(clock())
            self._leak(conn, now_ms)
            row = conn.execute("SELECT tat_ms FROM buckets WHERE key = ?", (name,)).fetchone()
            slot_ms, tat_ms = bucket.slot(row[0] if row else 0, max(now_ms, to_ms(not_before)))
            if slot_ms > to_ms(latest):
                return Reservation.refused(slot_ms, stored)
            span = self._window.span_ms
            count, first = conn.execute(
                "SELECT COUNT(*), MIN(ts) FROM window_calls WHERE ts >= ? AND ts <= ?", (slot_ms - span, slot_ms + span)
            ).fetchone()
            earliest = self._window.earliest(slot_ms, count, first)
            if earliest != slot_ms:
                return Reservation.refused(earliest, stored)
            conn.execute("INSERT INTO window_calls (ts) VALUES (?)", (slot_ms,))
            conn.execute(
                "INSERT INTO buckets (key, tat_ms) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET tat_ms = excluded.tat_ms", (name, tat_ms)
            )
            return Reservation.made(slot_ms, tat_ms - bucket.emission_ms, stored)

    def _leak(self, conn: Any, now_ms: int) -> None:
        """Now and then, forget slots no window from `now_ms` on can hold, and buckets full by then (a missing bucket is full)."""
        if now_ms - self._leaked_at <= _LEAK_EVERY_MS:
            return
        conn.execute("DELETE FROM window_calls WHERE ts < ?", (now_ms - 2 * self._window.span_ms,))
        conn.execute("DELETE FROM buckets WHERE tat_ms <= ?", (now_ms,))
        conn.execute("DELETE FROM quota_buckets WHERE tat_ms <= ?", (now_ms,))
        self._leaked_at = now_ms

    def take(self, key: str, bucket: Bucket, clock: Callable[[], float]) -> float | None:
        with self._lock, self._file.transaction() as conn:
            now_ms = to_ms(clock())
            row = conn.execute("SELECT tat_ms FROM quota_buckets WHERE key = ?", (key,)).fetchone()
            slot_ms, tat_ms = bucket.slot(row[0] if row else 0, now_ms)
            if slot_ms > now_ms:
                return (slot_ms - now_ms) / 1000
            conn.execute(
                "INSERT INTO quota_buckets (key, tat_ms) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET tat_ms = excluded.tat_ms",
                (key, tat_ms),
            )
            return None

    def read_pace(self, key: str) -> Pace | None:
        # An autocommit read: no write lock, and WAL readers never wait for the writer.
        row = self._file.connection().execute("SELECT pace FROM pace WHERE key = ?", (key,)).fetchone()
        return Pace.from_json(row[0]) if row else None

    def update_pace(self, key: str, change: Callable[[Pace | None], Pace | None]) -> Pace | None:
        with self._lock:
            with self._file.transaction() as conn:
                row = conn.execute("SELECT pace FROM pace WHERE key = ?", (key,)).fetchone()
                old = Pace.from_json(row[0]) if row else None
                new = change(old)
                if new is None:
                    return old
                conn.execute(
                    "INSERT INTO pace (key, pace) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET pace = excluded.pace", (key, new.to_json())
                )
            self.notices.bump()
            return new

    def paces(self) -> dict[str, Pace]:
        rows = self._file.connection().execute("SELECT key, pace FROM pace ORDER BY key").fetchall()
        return {key: Pace.from_json(text) for key, text in rows}

    def close(self) -> None:
        self._file.close()
        self.notices.close()


# -- redis -------------------------------------------------------------------------------------

# One admission in one round trip: the caller's pace checked against the stored one, then
# Bucket.slot and Window.earliest (plan.py, above) on Redis's data. Whole milliseconds throughout:
# exact in a Lua double.
# KEYS: the operation's pace, its plan's bucket (TAT), the call window (a sorted set of slots), its sequence.
# ARGV: the caller's pace as JSON ('' for none), start, latest, emission, burst, window span, window calls, bucket TTL,
#       now (start may be later: a hold); slots no window from now on can hold are dropped.
# Returns {0, 0, 0, pace}: stale pace; {1, earliest, 0, pace}: no slot; {2, slot, full_at, pace}: reserved.
_RESERVE_LUA = """
local pace = redis.call('GET', KEYS[1]) or ''
if pace ~= ARGV[1] then
  return {0, 0, 0, pace}
end
local start, latest = tonumber(ARGV[2]), tonumber(ARGV[3])
local emission, burst = tonumber(ARGV[4]), tonumber(ARGV[5])
local span, calls = tonumber(ARGV[6]), tonumber(ARGV[7])
local tat = tonumber(redis.call('GET', KEYS[2]) or '0')
local slot = math.max(start, tat - (burst - 1) * emission)
if slot > latest then
  return {1, slot, 0, pace}
end
local low, high = slot - span, slot + span
if redis.call('ZCOUNT', KEYS[3], low, high) >= calls then
  local first = redis.call('ZRANGEBYSCORE', KEYS[3], low, high, 'WITHSCORES', 'LIMIT', 0, 1)
  return {1, math.max(slot + 1, tonumber(first[2]) + span + 1), 0, pace}
end
local full_at = math.max(tat, slot)
redis.call('SET', KEYS[2], string.format('%.0f', full_at + emission), 'PX', ARGV[8])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. string.format('%.0f', tonumber(ARGV[9]) - 2 * span))
redis.call('ZADD', KEYS[3], slot, string.format('%.0f', slot) .. ':' .. redis.call('INCR', KEYS[4]))
redis.call('PEXPIRE', KEYS[3], 2 * span + tonumber(ARGV[8]))
return {2, slot, full_at, pace}
"""

# One request under an API key's quota, now or never: Bucket.slot alone.
# KEYS[1]: the key's bucket (TAT). ARGV: now, emission, burst (ms). Returns -1 if let through, else ms until it would be.
_TAKE_LUA = """
local now, emission, burst = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local allowed_at = tat - (burst - 1) * emission
if allowed_at > now then
  return allowed_at - now
end
local new_tat = math.max(tat, now) + emission
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', string.format('%.0f', new_tat - now))
return -1
"""


class _ChannelNotices(PaceNotices):
    """Pace changes on every host: a Redis channel each process subscribes to, read without a round trip.

    Each change is published with it (in the same MULTI); what has arrived waits on the
    subscription's socket until a sleeper reads it. Each (re)subscription counts as a change, so a
    mark from before a gap never matches after it; until Redis confirms the subscription, and after
    it fails, the notices cannot vouch for anything.
    """

    def __init__(self, client: redis.Redis, channel: str, timeout: float) -> None:
        self.channel = channel
        self._client = client
        self._timeout = timeout
        self._lock = threading.Lock()
        self._pubsub: Any = None
        self._pid = 0
        self._count = 0
        self._retry_at = -math.inf
        self._logged_at = -math.inf

    def mark(self) -> int | None:
        """Changes seen so far, after reading what has arrived; None while not subscribed."""
        with self._lock:
            try:
                pubsub = self._subscription()
                if pubsub is None:
                    return None
                while (message := pubsub.get_message(timeout=0.0)) is not None:
                    self._count += message["type"] == "message"
                return self._count
            except (redis.RedisError, OSError) as exc:
                self._lost(exc)
                return None

    def _subscription(self) -> Any:
        if self._pubsub is not None and self._pid == os.getpid():
            return self._pubsub
        # Inherited across a fork, a subscription is the parent's socket: never read it here.
        self._pubsub = None
        if time.monotonic() < self._retry_at:
            return None
        pubsub = self._client.pubsub()
        try:
            pubsub.subscribe(self.channel)
            confirmed = pubsub.get_message(timeout=self._timeout)
            if confirmed is None or confirmed["type"] != "subscribe":
                raise redis.ConnectionError(f"no confirmation of the subscription to {self.channel}")
        except BaseException:
            pubsub.close()
            raise
        self._pubsub, self._pid = pubsub, os.getpid()
        self._count += 1
        return pubsub

    def _lost(self, exc: BaseException) -> None:
        self.close_subscription()
        self._count += 1
        now = self._retry_at = time.monotonic()
        self._retry_at += _NOTICES_RETRY_AFTER
        if now - self._logged_at >= _NOTICES_LOG_EVERY:
            self._logged_at = now
            log.warning(
                "pace notices from Redis (%s) lost, a caller that slept reads the pace until they are back: %s: %s",
                self.channel,
                type(exc).__name__,
                exc,
            )

    def close_subscription(self) -> None:
        """Drop this process's subscription."""
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None and self._pid == os.getpid():
            try:
                pubsub.close()
            except (redis.RedisError, OSError):
                pass  # the connection is being dropped because it failed

    def close(self) -> None:
        """Drop this process's subscription."""
        with self._lock:
            self.close_subscription()


class RedisStore(LimiterStore):
    """State in Redis, shared by every host: each reservation one EVALSHA of our script (GCRA, window, pace)."""

    backend = "redis"
    PREFIX = "fba:ratelimit:"
    # Each command gives up after this long (utils/redis_client.py: no retries), and the limiter paces locally.
    TIMEOUT = 1.0

    def __init__(self, url: str, window: Window, location: str) -> None:
        self.location = location
        self._redis = redis_client(url, timeout=self.TIMEOUT)
        self._window = window
        # redis-py's Script: EVALSHA, and SCRIPT LOAD only when Redis answers NOSCRIPT (new, restarted or flushed).
        self._reserve = self._redis.register_script(_RESERVE_LUA)
        self._take = self._redis.register_script(_TAKE_LUA)
        self.notices = _ChannelNotices(self._redis, self.PREFIX + "pace-changes", self.TIMEOUT)
        # The stored text of the pace last seen per key: the script compares texts, so send back the very bytes.
        self._texts: dict[str, tuple[Pace, str]] = {}

    def _pace_key(self, key: str) -> str:
        return self.PREFIX + "pace:" + key

    def _text_of(self, key: str, pace: Pace | None) -> str:
        if pace is None:
            return ""
        seen = self._texts.get(key)
        return seen[1] if seen is not None and seen[0] == pace else pace.to_json()

    def _pace_of(self, key: str, text: bytes | str, sent: str, pace: Pace | None) -> Pace | None:
        text = text.decode() if isinstance(text, bytes) else text
        if not text:
            self._texts.pop(key, None)
            return None
        if text == sent and pace is not None:
            return pace
        stored = Pace.from_json(text)
        self._texts[key] = (stored, text)
        return stored

    def reserve(
        self, key: str, bucket: Bucket, pace: Pace | None, clock: Callable[[], float], not_before: float, latest: float
    ) -> Reservation:
        sent = self._text_of(key, pace)
        keys = [self._pace_key(key), self.PREFIX + "tat:" + bucket.name(key), self.PREFIX + "calls", self.PREFIX + "calls:sequence"]
        now_ms = to_ms(clock())
        window = self._window
        args = [sent, max(now_ms, to_ms(not_before)), to_ms(latest), bucket.emission_ms, bucket.burst, window.span_ms, window.calls]
        args += [_STATE_TTL_MS, now_ms]
        code, first_ms, full_at_ms, text = self._reserve(keys=keys, args=args)
        stored = self._pace_of(key, text, sent, pace)
        if code == 0:
            return Reservation.stale_pace(stored)
        if code == 1:
            return Reservation.refused(int(first_ms), stored)
        return Reservation.made(int(first_ms), int(full_at_ms), stored)

    def take(self, key: str, bucket: Bucket, clock: Callable[[], float]) -> float | None:
        wait_ms = int(self._take(keys=[self.PREFIX + "quota:" + key], args=[to_ms(clock()), bucket.emission_ms, bucket.burst]))
        return None if wait_ms < 0 else wait_ms / 1000

    def read_pace(self, key: str) -> Pace | None:
        text = self._redis.get(self._pace_key(key))
        return Pace.from_json(text) if text else None

    def update_pace(self, key: str, change: Callable[[Pace | None], Pace | None]) -> Pace | None:
        name = self._pace_key(key)
        result: list[Pace | None] = [None]

        def apply(pipe: Any) -> None:
            text = pipe.get(name)
            old = Pace.from_json(text) if text else None
            new = change(old)
            result[0] = old if new is None else new
            if new is not None:
                pipe.multi()
                pipe.set(name, new.to_json())
                pipe.publish(self.notices.channel, key)

        # WATCH/MULTI: redis-py runs `apply` again if another client changed the key meanwhile.
        self._redis.transaction(apply, name)
        return result[0]

    def paces(self) -> dict[str, Pace]:
        names = sorted(self._redis.scan_iter(match=self.PREFIX + "pace:*", count=100))
        texts = self._redis.mget(names) if names else []
        prefix = len(self.PREFIX + "pace:")
        return {name.decode()[prefix:]: Pace.from_json(text) for name, text in zip(names, texts, strict=True) if text}

    def close(self) -> None:
        self.notices.close()
        self._redis.close()


def build_store(backend: str, *, data_dir: str, redis_url: str, redis_label: str, window_calls: int, window_seconds: float) -> LimiterStore:
    """The store for RATE_LIMIT_BACKEND `backend`."""
    window = Window.of(window_calls, window_seconds)
    if backend == "memory":
        return MemoryStore(window)
    if backend == "sqlite":
        return SQLiteStore(Path(data_dir) / "ratelimit.sqlite", window)
    if backend == "redis":
        return RedisStore(redis_url, window, redis_label)
    raise ValueError(f"unknown rate limit backend {backend!r}; expected one of {', '.join(BACKENDS)}")
