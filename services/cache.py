"""The result cache: per-(marketplace, ASIN) lookup results, and their datasets, kept in SQLite, Redis, or nowhere.

Successes are kept `ttl` seconds and NOT_FOUND answers `not_found_ttl` seconds; no other failure
is kept (a THROTTLED answer is about that moment, not about the ASIN). Each stored record carries
its own expiry time, judged against the injected clock; the backend's own expiry (Redis EX, a
periodic SQLite DELETE) only cleans up.

A cache failure never fails a lookup: the error is logged (one WARNING per minute at most),
counted in `stats()["errors"]`, and the call answers as a miss so the ASIN goes to SP-API.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast
from urllib.parse import urlsplit

import redis

from services import errors
from services.entries import LookupEntry
from utils import metrics
from utils.redaction import mask_url_password
from utils.redis_client import redis_client
from utils.sqlite import SQLiteFile

log = logging.getLogger(__name__)

BACKENDS = ("sqlite", "redis", "none")
# Bump when the stored record's shape changes: old records are then simply never read.
FORMAT_VERSION = "v1"
SQLITE_FILENAME = "result-cache.sqlite"
# At most one warning line per cache in this many seconds; the rest are counted and reported with the next.
WARNING_INTERVAL = 60.0


def cache_key(marketplace_id: str, asin: str) -> str:
    """The key of one ASIN's result in one marketplace (the same in SQLite and Redis)."""
    return f"fba:cache:{FORMAT_VERSION}:{marketplace_id}:{asin}"


def _decode(text: str | bytes) -> tuple[float, LookupEntry]:
    """(expires_at, entry) of a stored record; ValueError if it is not one."""
    try:
        record = json.loads(text)
        expires_at, entry = float(record["expires_at"]), record["entry"]
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"stored value is not a cache record ({type(exc).__name__}: {exc})") from None
    if not isinstance(entry, dict):
        raise ValueError("stored value is not a cache record (its entry is not an object)")
    return expires_at, cast(LookupEntry, entry)


class ResultCache:
    """Lookup results by (marketplace, ASIN); subclasses store them. Counters are per process."""

    backend = "none"
    # Errors of the backend that mean "answer as a miss", never "fail the request".
    failures: tuple[type[BaseException], ...] = ()
    # After the backend cannot be opened or reached, leave it alone this long before trying again.
    retry_after = 30.0

    def __init__(self, *, ttl: float, not_found_ttl: float, clock: Callable[[], float] = time.time) -> None:
        self.ttl = ttl
        self.not_found_ttl = not_found_ttl
        self._clock = clock
        self._lock = threading.Lock()
        # Held while the backend is opened (and connections listed), so threads racing to open do it once.
        self._open_lock = threading.Lock()
        self._hits = 0
        self._misses = 0
        self._errors = 0
        self._resting_until: float | None = None
        self._next_warning_at: float | None = None
        self._suppressed = 0

    @property
    def location(self) -> str | None:
        """Where the entries live (file path or URL, never with a password), for stats and logs."""
        return None

    def get_many(self, marketplace_id: str, asins: Sequence[str], *, count: bool = True) -> dict[str, LookupEntry]:
        """The live cached entries among `asins`, each a copy marked `"cached": True`; a miss on any backend error.

        `count=False` leaves the hit/miss counters alone (a second look at the same ASINs).
        """
        keys = {cache_key(marketplace_id, asin): asin for asin in dict.fromkeys(asins)}
        if not keys:
            return {}
        stored = self._attempt("get_many", marketplace_id, len(keys), lambda: self._read(list(keys))) or {}
        now = self._clock()
        found: dict[str, LookupEntry] = {}
        unreadable: list[ValueError] = []
        for key, text in stored.items():
            try:
                expires_at, entry = _decode(text)
            except ValueError as exc:
                unreadable.append(exc)
                continue
            if expires_at > now:
                found[keys[key]] = {**entry, "cached": True}
        if unreadable:
            self._failed("get_many", marketplace_id, len(unreadable), unreadable[0])
        if count:
            with self._lock:
                self._hits += len(found)
                self._misses += len(keys) - len(found)
            metrics.count_cache_lookups(len(found), len(keys) - len(found))
        return found

    def put_many(self, marketplace_id: str, entries: Mapping[str, Mapping[str, Any]], *, ttl: float | None = None) -> None:
        """Store successes for `ttl` and NOT_FOUND answers for `not_found_ttl`; nothing else, and never raise.

        With `ttl` given, `entries` are datasets (services/datasets.py) under their own keys: those
        without an error are kept that long, and no error is kept.
        """
        now = self._clock()
        rows: list[tuple[str, str, float, float]] = []
        for asin, entry in entries.items():
            keep = self._ttl_of(entry) if ttl is None else (ttl if ttl > 0 and "error" not in entry else None)
            if keep is None:
                continue
            try:
                text = json.dumps({"expires_at": now + keep, "entry": entry}, separators=(",", ":"))
            except (TypeError, ValueError) as exc:  # not JSON: the entry is answered, just not kept
                self._failed("put_many", marketplace_id, 1, exc)
                continue
            rows.append((cache_key(marketplace_id, asin), text, keep, now + keep))
        if rows:
            self._attempt("put_many", marketplace_id, len(rows), lambda: self._write(rows, now))

    def stats(self) -> dict[str, Any]:
        """This process's counters and the cache's settings."""
        with self._lock:
            lookups = self._hits + self._misses
            return {
                "backend": self.backend,
                "location": self.location,
                "hits": self._hits,
                "misses": self._misses,
                "hit_ratio": round(self._hits / lookups, 4) if lookups else None,
                "errors": self._errors,
                "ttl_seconds": self.ttl,
                "not_found_ttl_seconds": self.not_found_ttl,
            }

    def close(self) -> None:
        """Release connections; a later call opens new ones."""

    def _ttl_of(self, entry: Mapping[str, Any]) -> float | None:
        if entry.get("success") is True:
            ttl = self.ttl
        elif isinstance(entry.get("error"), Mapping) and entry["error"].get("code") == errors.NOT_FOUND:
            ttl = self.not_found_ttl
        else:
            return None
        return ttl if ttl > 0 else None

    def _attempt(self, operation: str, marketplace_id: str, count: int, action: Callable[[], Any]) -> Any:
        """`action()`, or None after logging and counting a backend failure (or while the backend rests)."""
        now = self._clock()
        resting_until = self._resting_until
        # A clock set back (wall time) must not make the rest last longer than retry_after.
        if resting_until is not None and 0 < resting_until - now <= self.retry_after:
            return None
        try:
            self._open()
        except self.failures as exc:
            self._resting_until = now + self.retry_after
            self._failed("open", marketplace_id, count, exc, f"; not trying again for {self.retry_after:.0f} s")
            return None
        try:
            result = action()
        except self.failures as exc:
            rest = self._is_outage(exc)
            if rest:
                self._resting_until = now + self.retry_after
            self._failed(operation, marketplace_id, count, exc, f"; not trying again for {self.retry_after:.0f} s" if rest else "")
            return None
        self._resting_until = None
        return result

    def _failed(self, operation: str, marketplace_id: str, count: int, exc: BaseException, note: str = "") -> None:
        now = self._clock()
        metrics.count_cache_error(operation)
        with self._lock:
            self._errors += 1
            next_at = self._next_warning_at
            if next_at is not None and 0 < next_at - now <= WARNING_INTERVAL:
                self._suppressed += 1
                return
            suppressed, self._suppressed = self._suppressed, 0
            self._next_warning_at = now + WARNING_INTERVAL
        log.warning(
            "result cache %s at %s: %s failed (%d ASINs, marketplace %s), answered as a miss%s: %s: %s%s",
            self.backend,
            self.location,
            operation,
            count,
            marketplace_id,
            note,
            type(exc).__name__,
            self._redact(str(exc)),
            f" ({suppressed} more cache warnings suppressed in the last {WARNING_INTERVAL:.0f} s)" if suppressed else "",
        )

    def _redact(self, text: str) -> str:
        return text

    def _is_outage(self, exc: BaseException) -> bool:
        """True when `exc` says the backend is unreachable, so it should rest before the next try."""
        return False

    def _open(self) -> None:
        """Make the backend usable in this process (idempotent, cheap once done); raise one of `failures` if it cannot be."""

    def _read(self, keys: list[str]) -> dict[str, str | bytes]:
        """The stored record text of each key that has one."""
        return {}

    def _write(self, rows: list[tuple[str, str, float, float]], now: float) -> None:
        """Store (key, record text, ttl seconds, expires_at) rows."""


class NullResultCache(ResultCache):
    """CACHE_BACKEND=none: every lookup is a miss and nothing is stored."""

    def put_many(self, marketplace_id: str, entries: Mapping[str, Mapping[str, Any]], *, ttl: float | None = None) -> None:
        """Store nothing."""


class SqliteResultCache(ResultCache):
    """A WAL-mode SQLite file under DATA_DIR, shared by every worker process and thread on the machine (utils/sqlite.py)."""

    backend = "sqlite"
    failures = (sqlite3.Error, OSError)
    # Writers wait this long for the file's write lock before the put is dropped (logged): a lookup
    # never waits on the cache longer than it would on SP-API's answer.
    busy_timeout = 1.0
    # Expired rows are deleted by one put in each process this often.
    cleanup_interval = 600.0
    _SCHEMA = (
        "CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, record TEXT NOT NULL, expires_at REAL NOT NULL);"
        "CREATE INDEX IF NOT EXISTS results_expires_at ON results (expires_at);"
    )
    # Well under SQLite's limit of host parameters in one statement.
    _MAX_KEYS_PER_SELECT = 500

    def __init__(self, data_dir: str, **options: Any) -> None:
        super().__init__(**options)
        self._file = SQLiteFile(os.path.join(data_dir, SQLITE_FILENAME), busy_timeout=self.busy_timeout, schema=self._SCHEMA)
        self._next_cleanup = 0.0

    @property
    def location(self) -> str:
        """The SQLite file's path."""
        return self._file.location

    def close(self) -> None:
        """Close every connection this process opened."""
        self._file.close()

    def _open(self) -> None:
        self._file.open()

    def _read(self, keys: list[str]) -> dict[str, str | bytes]:
        conn = self._file.connection()
        stored: dict[str, str | bytes] = {}
        for start in range(0, len(keys), self._MAX_KEYS_PER_SELECT):
            chunk = keys[start : start + self._MAX_KEYS_PER_SELECT]
            marks = ",".join("?" * len(chunk))
            stored.update(conn.execute(f"SELECT key, record FROM results WHERE key IN ({marks})", chunk).fetchall())
        return stored

    def _write(self, rows: list[tuple[str, str, float, float]], now: float) -> None:
        with self._file.transaction() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO results (key, record, expires_at) VALUES (?, ?, ?)",
                [(key, text, expires_at) for key, text, _ttl, expires_at in rows],
            )
            if not 0 < self._next_cleanup - now <= self.cleanup_interval:
                conn.execute("DELETE FROM results WHERE expires_at <= ?", (now,))
                self._next_cleanup = now + self.cleanup_interval


class RedisResultCache(ResultCache):
    """Redis at REDIS_URL: MGET to read, one pipeline of SET ... EX to write; shared by every host."""

    backend = "redis"
    failures = (redis.RedisError, OSError, ValueError)
    # A Redis that is down costs one short timeout, then is left alone for a few seconds.
    retry_after = 5.0
    socket_timeout = 0.5

    def __init__(self, redis_url: str, **options: Any) -> None:
        super().__init__(**options)
        self._url = redis_url
        self._label = mask_url_password(redis_url)
        try:
            self._password = urlsplit(redis_url).password or ""
        except ValueError:  # a URL that bad is reported when the client cannot be built
            self._password = ""
        self._client: redis.Redis | None = None

    @property
    def location(self) -> str:
        """REDIS_URL with any password masked."""
        return self._label

    def close(self) -> None:
        """Disconnect this process's connection pool."""
        if self._client is not None:
            self._client.close()

    def _redact(self, text: str) -> str:
        text = text.replace(self._url, self._label)
        return text.replace(self._password, "***") if self._password else text

    def _is_outage(self, exc: BaseException) -> bool:
        return isinstance(exc, redis.ConnectionError | redis.TimeoutError | OSError)

    def _open(self) -> None:
        if self._client is not None:
            return
        with self._open_lock:
            # Once only: a second client, dropped, would close its pool under a thread still using it.
            if self._client is None:
                self._client = redis_client(self._url, timeout=self.socket_timeout)

    def _read(self, keys: list[str]) -> dict[str, str | bytes]:
        assert self._client is not None
        values = self._client.mget(keys)
        return {key: value for key, value in zip(keys, values, strict=True) if value is not None}

    def _write(self, rows: list[tuple[str, str, float, float]], now: float) -> None:
        assert self._client is not None
        pipeline = self._client.pipeline(transaction=False)
        for key, text, ttl, _expires_at in rows:
            pipeline.set(key, text, ex=max(1, math.ceil(ttl)))
        pipeline.execute()


def build_cache(
    *,
    backend: str,
    data_dir: str,
    redis_url: str,
    ttl: float,
    not_found_ttl: float,
    clock: Callable[[], float] = time.time,
) -> ResultCache:
    """The result cache for CACHE_BACKEND (sqlite, redis or none); it opens lazily, so this never touches disk or network."""
    options: dict[str, Any] = {"ttl": ttl, "not_found_ttl": not_found_ttl, "clock": clock}
    name = backend.strip().lower()
    if name == "sqlite":
        return SqliteResultCache(data_dir, **options)
    if name == "redis":
        return RedisResultCache(redis_url, **options)
    if name == "none":
        return NullResultCache(**options)
    raise ValueError(f"unknown cache backend {backend!r}: expected one of {', '.join(BACKENDS)}")
