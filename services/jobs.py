"""Durable batch jobs: a list of any size, stored item by item, looked up in chunks by the batch service.

A job and each of its items live in a store (SQLite under DATA_DIR by default; Redis with
JOB_BACKEND=redis, see services/jobs_redis.py). An item's result is written only after SP-API
(or the cache) answered it, in the same transaction that advances the job's counts, so a
worker killed at any moment loses at most the lookups in flight and marks nothing done that
was not. In the embedded default, every gunicorn worker runs a `JobRunner` thread; a job is
claimed by one worker at a time with a lease, and a claim held by a process that no longer
exists on this host (kill -9, a crash) is taken over at once.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from services import errors
from services.asin_service import AsinService
from utils import metrics
from utils.marketplaces import UnknownCountry, resolve_country
from utils.sqlite import immediate_transaction

log = logging.getLogger(__name__)

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
# A job being uploaded: invisible to runners and listings until its last item is stored.
RECEIVING = "receiving"
FINISHED = frozenset({DONE, FAILED, CANCELLED})
# searchCatalogItems answers up to 20 identifiers a call (Catalog Items 2022-04-01 model).
CHUNK = 20
# Failures worth asking again later, rather than storing as the item's answer.
TRANSIENT_CODES = frozenset({errors.THROTTLED, errors.TIMEOUT, errors.UPSTREAM_UNAVAILABLE, errors.UPSTREAM_ERROR})
MAX_ATTEMPTS = 4
# Seconds a claim lasts without progress before another worker may take the job over.
LEASE_SECONDS = 300.0


class JobError(Exception):
    """A job request the store refuses: too many items, or an unknown job."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class JobStoreUnavailable(JobError):
    """The job store cannot be read or written (DATA_DIR unwritable, disk full, Redis down)."""

    def __init__(self, detail: str) -> None:
        super().__init__(503, "JOBS_UNAVAILABLE", f"Batch jobs are unavailable: {detail}; single and batch lookups still work")


def translate_store_errors(kinds: tuple[type[BaseException], ...], what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: a store method's `kinds` of exception become JobStoreUnavailable (a 503 for the client), logged once here."""

    def decorate(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return method(*args, **kwargs)
            except kinds as exc:
                log.error("job store (%s) failed in %s: %s", what, method.__name__, exc)
                raise JobStoreUnavailable(f"the {what} job store failed ({type(exc).__name__})") from exc

        return wrapper

    return decorate


class UnavailableJobStore:
    """Stands in for a job store that could not be opened: every call answers 503, the rest of the service runs."""

    backend = "sqlite"

    def __init__(self, location: str, reason: str) -> None:
        self.location = location
        self._reason = reason

    def __getattr__(self, name: str) -> Callable[..., Any]:
        def unavailable(*args: Any, **kwargs: Any) -> Any:
            raise JobStoreUnavailable(self._reason)

        return unavailable

    def close(self) -> None:
        """Nothing to close."""


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Job:
    """One job's row: what was asked, where it stands, and its counts."""

    id: str
    country: str
    identifier_type: str
    refresh: bool
    source: str
    status: str
    total: int
    done: int
    succeeded: int
    failed: int
    cached: int
    created_at: float
    started_at: float | None
    finished_at: float | None
    updated_at: float
    # The current run (since the last claim): for the rate and ETA.
    run_started_at: float | None
    run_done_start: int
    error: str | None

    @property
    def finished(self) -> bool:
        """True once the job is done, failed or cancelled."""
        return self.status in FINISHED

    def rate(self, now: float) -> float | None:
        """Items per second in the current run, or None when not running or too early to tell."""
        if self.status != RUNNING or self.run_started_at is None:
            return None
        elapsed = now - self.run_started_at
        processed = self.done - self.run_done_start
        return processed / elapsed if elapsed > 0 and processed > 0 else None

    def view(self, now: float) -> dict[str, Any]:
        """The job as JSON: status, counts, progress, rate and ETA."""
        rate = self.rate(now)
        remaining = self.total - self.done
        try:
            marketplace_id: str | None = resolve_country(self.country).marketplace_id
        except UnknownCountry:
            marketplace_id = None
        return {
            "id": self.id,
            "status": self.status,
            "country": self.country,
            "marketplace_id": marketplace_id,
            "identifier_type": self.identifier_type,
            "refresh": self.refresh,
            "source": self.source,
            "counts": {
                "total": self.total,
                "done": self.done,
                "succeeded": self.succeeded,
                "failed": self.failed,
                "cached": self.cached,
                "pending": remaining,
            },
            "progress_percent": round(100 * self.done / self.total, 1) if self.total else 100.0,
            "asins_per_second": round(rate, 2) if rate else None,
            # A rate exists only while running.
            "eta_seconds": 0.0 if self.finished else (round(remaining / rate, 1) if rate else None),
            "created_at": _iso(self.created_at),
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "error": self.error,
        }


@dataclass(frozen=True)
class PendingItem:
    """An item not answered yet: its position in the list, its input, and how often it was tried."""

    position: int
    input: str
    attempts: int


class JobStore(Protocol):
    """What the routes, the CLI and JobService ask of a job store (sqlite or redis); safe from any thread or process.

    How a store's work is handed out differs (claims in SQLiteJobStore, RQ parts in RedisJobStore),
    so those methods are each store's own.
    """

    backend: str
    location: str

    def create(self, country: str, identifier_type: str, values: Iterable[str], *, refresh: bool, source: str, max_items: int) -> Job:
        """Store a new queued job with one item per value (in order); JobError if empty or over `max_items`."""

    def get(self, job_id: str) -> Job | None:
        """The job, or None."""

    def list(self, limit: int) -> list[Job]:
        """The most recent jobs, newest first."""

    def cancel(self, job_id: str) -> Job | None:
        """Cancel an unfinished job; the job as it now stands, or None if there is no such job."""

    def results(self, job_id: str) -> Iterator[tuple[int, str, dict[str, Any]]]:
        """(position, input, entry) of every answered item, in input order."""

    def active_counts(self) -> dict[str, int]:
        """For /health: how much work waits or runs."""

    def close(self) -> None:
        """Release connections."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    country TEXT NOT NULL,
    identifier_type TEXT NOT NULL,
    refresh INTEGER NOT NULL,
    source TEXT NOT NULL,
    status TEXT NOT NULL,
    total INTEGER NOT NULL DEFAULT 0,
    done INTEGER NOT NULL DEFAULT 0,
    succeeded INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    cached INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    updated_at REAL NOT NULL,
    run_started_at REAL,
    run_done_start INTEGER NOT NULL DEFAULT 0,
    owner TEXT,
    lease_until REAL NOT NULL DEFAULT 0,
    error TEXT
);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, created_at);
CREATE INDEX IF NOT EXISTS jobs_by_update ON jobs (updated_at);
CREATE TABLE IF NOT EXISTS job_items (
    job_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    input TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    entry TEXT,
    PRIMARY KEY (job_id, position)
) WITHOUT ROWID;
"""

_JOB_COLUMNS = (
    "id, country, identifier_type, refresh, source, status, total, done, succeeded, failed, cached, "
    "created_at, started_at, finished_at, updated_at, run_started_at, run_done_start, error"
)
# Items stored per transaction while a job is created: an upload never holds the write lock long.
_INSERT_BATCH = 2000
_RESULTS_PAGE = 500


def _job(row: tuple[Any, ...]) -> Job:
    values = list(row)
    values[3] = bool(values[3])
    return Job(*values)


def new_job_id() -> str:
    """A job id: 32 hex characters, unguessable."""
    return uuid.uuid4().hex


def process_owner() -> str:
    """This process's claim name: host, pid and a random part (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _owner_gone(owner: str | None, host: str) -> bool:
    """True when `owner` is a process of this host that no longer exists."""
    if not owner:
        return True
    parts = owner.split(":")
    if len(parts) != 3 or parts[0] != host or not parts[1].isdigit():
        return False
    return not metrics.pid_alive(int(parts[1]))


def item_batches(values: Iterable[str], max_items: int, size: int) -> Iterator[list[str]]:
    """`values` in lists of up to `size`, read as they come; JobError past `max_items`, or if there are none."""
    batch: list[str] = []
    total = 0
    for value in values:
        if total >= max_items:
            raise JobError(413, "JOB_TOO_LARGE", f"the job has more than MAX_JOB_SIZE={max_items} items; split the list")
        batch.append(value)
        total += 1
        if len(batch) >= size:
            yield batch
            batch = []
    if total == 0:
        raise JobError(400, "EMPTY_JOB", "the job has no items: send at least one ASIN or identifier")
    if batch:
        yield batch


def counts_of(entries: Iterable[dict[str, Any]]) -> tuple[int, int, int]:
    """(succeeded, failed, cached) among answered entries."""
    succeeded = failed = cached = 0
    for entry in entries:
        if entry.get("success"):
            succeeded += 1
        else:
            failed += 1
        if entry.get("cached"):
            cached += 1
    return succeeded, failed, cached


class SQLiteJobStore:
    """Jobs in one SQLite file (WAL): shared by every worker process on this machine."""

    backend = "sqlite"

    def __init__(self, path: str | Path, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.location = str(self.path)
        self._clock = clock
        self._local = threading.local()
        self._host = socket.gethostname()
        self._connection().executescript(_SCHEMA)

    def _connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        return immediate_transaction(self._connection())

    def close(self) -> None:
        """Close this thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    @translate_store_errors((sqlite3.Error, OSError), "SQLite")
    def create(self, country: str, identifier_type: str, values: Iterable[str], *, refresh: bool, source: str, max_items: int) -> Job:
        """Store a new queued job with one item per value (in order); JobError if over `max_items`."""
        job_id = new_job_id()
        now = self._clock()
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO jobs (id, country, identifier_type, refresh, source, status, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (job_id, country, identifier_type, int(refresh), source, RECEIVING, now, now),
            )
        total = 0
        try:
            for batch in item_batches(values, max_items, _INSERT_BATCH):
                self._insert([(job_id, total + offset, value) for offset, value in enumerate(batch)])
                total += len(batch)
        except BaseException:
            self._delete(job_id)
            raise
        with self._transaction() as conn:
            conn.execute("UPDATE jobs SET status = ?, total = ?, updated_at = ? WHERE id = ?", (QUEUED, total, self._clock(), job_id))
        job = self.get(job_id)
        assert job is not None
        return job

    def _insert(self, batch: list[tuple[str, int, str]]) -> None:
        with self._transaction() as conn:
            conn.executemany("INSERT INTO job_items (job_id, position, input) VALUES (?, ?, ?)", batch)
            conn.execute("UPDATE jobs SET updated_at = ? WHERE id = ?", (self._clock(), batch[0][0]))

    def _delete(self, job_id: str) -> None:
        with self._transaction() as conn:
            conn.execute("DELETE FROM job_items WHERE job_id = ?", (job_id,))
            conn.execute("DELETE FROM jobs WHERE id = ?", (job_id,))

    @translate_store_errors((sqlite3.Error, OSError), "SQLite")
    def get(self, job_id: str) -> Job | None:
        """The job, or None (also for one still being uploaded)."""
        row = self._connection().execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ? AND status != ?", (job_id, RECEIVING)).fetchone()
        return _job(row) if row else None

    @translate_store_errors((sqlite3.Error, OSError), "SQLite")
    def list(self, limit: int) -> list[Job]:
        """The most recent jobs, newest first."""
        rows = (
            self._connection()
            .execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE status != ? ORDER BY created_at DESC LIMIT ?", (RECEIVING, limit))
            .fetchall()
        )
        return [_job(row) for row in rows]

    @translate_store_errors((sqlite3.Error, OSError), "SQLite")
    def cancel(self, job_id: str) -> Job | None:
        """Cancel an unfinished job; the job as it now stands, or None if there is no such job."""
        now = self._clock()
        with self._transaction() as conn:
            conn.execute(
                "UPDATE jobs SET status = ?, finished_at = ?, updated_at = ?, owner = NULL WHERE id = ? AND status IN (?, ?)",
                (CANCELLED, now, now, job_id, QUEUED, RUNNING),
            )
        return self.get(job_id)

    def results(self, job_id: str) -> Iterator[tuple[int, str, dict[str, Any]]]:
        """(position, input, entry) of every answered item, in input order, read a page at a time."""
        after = -1
        while True:
            rows = (
                self._connection()
                .execute(
                    "SELECT position, input, entry FROM job_items WHERE job_id = ? AND position > ? AND entry IS NOT NULL "
                    "ORDER BY position LIMIT ?",
                    (job_id, after, _RESULTS_PAGE),
                )
                .fetchall()
            )
            for position, value, entry in rows:
                yield position, value, json.loads(entry)
            if len(rows) < _RESULTS_PAGE:
                return
            after = rows[-1][0]

    @translate_store_errors((sqlite3.Error, OSError), "SQLite")
    def active_counts(self) -> dict[str, int]:
        """How many jobs are queued and running."""
        rows = self._connection().execute("SELECT status, COUNT(*) FROM jobs WHERE status IN (?, ?) GROUP BY status", (QUEUED, RUNNING))
        counts = dict(rows.fetchall())
        return {"queued": counts.get(QUEUED, 0), "running": counts.get(RUNNING, 0)}

    @translate_store_errors((sqlite3.Error, OSError), "SQLite")
    def claim(self, owner: str, lease: float = LEASE_SECONDS) -> Job | None:
        """Take the oldest runnable job: queued, or running under a lapsed claim or a dead process's."""
        now = self._clock()
        with self._transaction() as conn:
            rows = conn.execute(
                "SELECT id, owner, lease_until FROM jobs WHERE status IN (?, ?) ORDER BY created_at", (QUEUED, RUNNING)
            ).fetchall()
            for job_id, holder, lease_until in rows:
                if holder and lease_until > now and not _owner_gone(holder, self._host):
                    continue
                conn.execute(
                    "UPDATE jobs SET status = ?, owner = ?, lease_until = ?, started_at = COALESCE(started_at, ?), "
                    "run_started_at = ?, run_done_start = done, updated_at = ? WHERE id = ?",
                    (RUNNING, owner, now + lease, now, now, now, job_id),
                )
                if holder:
                    log.info("job %s: taking over from %s, whose claim lapsed or whose process is gone", job_id, holder)
                row = conn.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
                return _job(row)
        return None

    @translate_store_errors((sqlite3.Error, OSError), "SQLite")
    def pending(self, job_id: str, limit: int) -> list[PendingItem]:
        """Up to `limit` unanswered items, lowest position first."""
        rows = (
            self._connection()
            .execute(
                "SELECT position, input, attempts FROM job_items WHERE job_id = ? AND entry IS NULL ORDER BY position LIMIT ?",
                (job_id, limit),
            )
            .fetchall()
        )
        return [PendingItem(*row) for row in rows]

    @translate_store_errors((sqlite3.Error, OSError), "SQLite")
    def record(
        self, job_id: str, owner: str, answered: dict[int, dict[str, Any]], retried: Iterable[int], lease: float = LEASE_SECONDS
    ) -> Job | None:
        """Store answers and count retries, renewing `owner`'s claim; None when `owner` no longer holds the job."""
        now = self._clock()
        with self._transaction() as conn:
            row = conn.execute("SELECT owner, status FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None or row[0] != owner:
                return None
            stored: list[dict[str, Any]] = []
            for position, entry in answered.items():
                cursor = conn.execute(
                    "UPDATE job_items SET entry = ? WHERE job_id = ? AND position = ? AND entry IS NULL",
                    (json.dumps(entry, separators=(",", ":")), job_id, position),
                )
                if cursor.rowcount:
                    stored.append(entry)
            conn.executemany(
                "UPDATE job_items SET attempts = attempts + 1 WHERE job_id = ? AND position = ?", [(job_id, p) for p in retried]
            )
            succeeded, failed, cached = counts_of(stored)
            conn.execute(
                "UPDATE jobs SET done = done + ?, succeeded = succeeded + ?, failed = failed + ?, cached = cached + ?, "
                "lease_until = ?, updated_at = ? WHERE id = ?",
                (len(stored), succeeded, failed, cached, now + lease, now, job_id),
            )
            job = _job(conn.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone())
        metrics.count_job_items(succeeded, failed, cached)
        return job

    @translate_store_errors((sqlite3.Error, OSError), "SQLite")
    def finish(self, job_id: str, owner: str, status: str, error: str | None = None) -> None:
        """Mark the job finished (unless it was cancelled meanwhile) and let go of it."""
        now = self._clock()
        with self._transaction() as conn:
            cursor = conn.execute(
                "UPDATE jobs SET status = ?, error = ?, finished_at = ?, updated_at = ?, owner = NULL "
                "WHERE id = ? AND owner = ? AND status = ?",
                (status, error, now, now, job_id, owner, RUNNING),
            )
        if cursor.rowcount:
            metrics.count_job_event(status)

    @translate_store_errors((sqlite3.Error, OSError), "SQLite")
    def release(self, owner: str) -> None:
        """Let go of every job `owner` holds, so another worker (or this one, restarted) resumes it at once."""
        with self._transaction() as conn:
            conn.execute("UPDATE jobs SET owner = NULL, lease_until = 0 WHERE owner = ? AND status = ?", (owner, RUNNING))

    @translate_store_errors((sqlite3.Error, OSError), "SQLite")
    def purge(self, older_than: float) -> int:
        """Delete jobs (and their items) untouched since `older_than`; how many."""
        with self._transaction() as conn:
            ids = [row[0] for row in conn.execute("SELECT id FROM jobs WHERE updated_at < ?", (older_than,)).fetchall()]
            for job_id in ids:
                conn.execute("DELETE FROM job_items WHERE job_id = ?", (job_id,))
                conn.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
        return len(ids)


def lookup_step(service: AsinService, job: Job, items: list[PendingItem]) -> dict[int, dict[str, Any]]:
    """Look up `items` of `job` through the batch service; each entry by position, with its input."""
    entries = service.lookup_list([item.input for item in items], job.identifier_type, job.country, refresh=job.refresh)
    return {item.position: {"input": item.input, **entry} for item, entry in zip(items, entries, strict=True)}


def split_transient(
    entries: dict[int, dict[str, Any]], items: list[PendingItem], max_attempts: int = MAX_ATTEMPTS
) -> tuple[dict[int, dict[str, Any]], list[int], float]:
    """(answers to store, positions to try again, seconds to wait first) after one step."""
    attempts = {item.position: item.attempts for item in items}
    answered: dict[int, dict[str, Any]] = {}
    retried: list[int] = []
    wait = 0.0
    for position, entry in entries.items():
        error = entry.get("error") or {}
        if not entry.get("success") and error.get("code") in TRANSIENT_CODES and attempts[position] + 1 < max_attempts:
            retried.append(position)
            backoff = 5.0 * 2 ** attempts[position]
            wait = max(wait, min(60.0, max(backoff, float(error.get("retry_after_seconds") or 0))))
        else:
            answered[position] = entry
    return answered, retried, wait


class JobRunner:
    """Claims jobs from a SQLiteJobStore and looks their items up, a step of chunks at a time, in a thread."""

    def __init__(
        self,
        store: SQLiteJobStore,
        service: AsinService,
        *,
        step: int,
        retention: float,
        poll_seconds: float = 2.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self._service = service
        self._step = step
        self._retention = retention
        self._poll = poll_seconds
        self._clock = clock
        self.owner = process_owner()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_purge = 0.0

    def start(self) -> None:
        """Run jobs in a daemon thread until `stop`."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="jobs", daemon=True)
        self._thread.start()
        log.info("job runner %s started (store %s)", self.owner, self.store.location)

    def wake(self) -> None:
        """A job was queued: look for it now rather than at the next poll."""
        self._wake.set()

    def request_stop(self) -> None:
        """Start no new step (safe from a signal handler); `stop` then waits for the one in flight."""
        self._stop.set()
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the step in flight (up to `timeout` s) and let go of the job, so it resumes elsewhere at once."""
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.store.release(self.owner)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._purge_now_and_then()
                worked = self.run_once()
            except Exception:  # a store failure: log it, keep the thread alive, try again after a pause
                log.exception("job runner: a step failed; trying again in %.0f s", self._poll)
                worked = False
            if not worked:
                self._wake.wait(self._poll)
                self._wake.clear()

    def _purge_now_and_then(self) -> None:
        now = self._clock()
        if now - self._last_purge < 3600:
            return
        self._last_purge = now
        purged = self.store.purge(now - self._retention)
        if purged:
            log.info("purged %d jobs untouched for JOB_RETENTION=%.0f s", purged, self._retention)

    def run_once(self) -> bool:
        """Claim one job and run it until it finishes or this runner stops; False if none was waiting."""
        job = self.store.claim(self.owner)
        if job is None:
            return False
        log.info("job %s: running, %d of %d items answered (%s %s)", job.id, job.done, job.total, job.identifier_type, job.country)
        try:
            self._run(job)
        except Exception as exc:
            log.exception("job %s failed", job.id)
            self.store.finish(
                job.id, self.owner, FAILED, f"the job stopped on an internal error ({type(exc).__name__}); it has been logged"
            )
        return True

    def _run(self, job: Job) -> None:
        while not self._stop.is_set():
            items = self.store.pending(job.id, self._step)
            if not items:
                self.store.finish(job.id, self.owner, DONE)
                log.info("job %s: done, %d succeeded, %d failed, %d from the cache", job.id, job.succeeded, job.failed, job.cached)
                return
            entries = lookup_step(self._service, job, items)
            answered, retried, wait = split_transient(entries, items)
            updated = self.store.record(job.id, self.owner, answered, retried)
            if updated is None:
                log.info("job %s: no longer held by this worker (cancelled, or taken over); leaving it", job.id)
                return
            job = updated
            if wait:
                log.info("job %s: %d items failed for now (SP-API throttling or unavailable); again in %.0f s", job.id, len(retried), wait)
                self._stop.wait(wait)


class JobService:
    """Jobs as the routes and the CLI see them: submit, read, cancel; and the runner that answers them."""

    def __init__(
        self,
        store: JobStore,
        *,
        max_items: int,
        runner: JobRunner | None = None,
        enqueue: Callable[[Job], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.runner = runner
        self._enqueue = enqueue
        self._max_items = max_items
        self._clock = clock

    def submit(self, country: str, identifier_type: str, values: Iterable[str], *, refresh: bool, source: str) -> Job:
        """Store a new job (JobError if it is empty or over MAX_JOB_SIZE) and hand it to a runner."""
        job = self.store.create(country, identifier_type, values, refresh=refresh, source=source, max_items=self._max_items)
        metrics.count_job_event("created")
        log.info("job %s: queued, %d %s items for %s (%s)", job.id, job.total, identifier_type, country, source)
        if self._enqueue is not None:
            self._enqueue(job)
        if self.runner is not None:
            self.runner.wake()
        return job

    def cancel(self, job_id: str) -> Job | None:
        """Cancel an unfinished job; the job as it now stands."""
        job = self.store.cancel(job_id)
        if job is not None and job.status == CANCELLED:
            metrics.count_job_event(CANCELLED)
            log.info("job %s: cancelled at %d of %d items", job.id, job.done, job.total)
        return job

    def health(self) -> dict[str, Any]:
        """For /health: the backend, where the store is, whether it answers, and how many jobs wait or run."""
        where = {"backend": self.store.backend, "location": self.store.location}
        try:
            counts = self.store.active_counts()
        except JobError:  # already logged by the store
            return {**where, "store_ok": False}
        return {**where, "store_ok": True, **counts}

    def view(self, job: Job) -> dict[str, Any]:
        """The job as JSON, its rate and ETA as of now."""
        return job.view(self._clock())

    def start(self) -> None:
        """Start answering jobs in this process (the embedded runner); nothing for the Redis queue."""
        if self.runner is not None:
            self.runner.start()

    def request_stop(self) -> None:
        """Start no new step: the process is shutting down (called from gunicorn's SIGTERM handler)."""
        if self.runner is not None:
            self.runner.request_stop()

    def stop(self) -> None:
        """Stop the runner after its step in flight; the job resumes in another worker or after a restart."""
        if self.runner is not None:
            self.runner.stop()
        self.store.close()


def job_step(settings: Any) -> int:
    """Items looked up per step of a job: a chunk of 20 for each of MAX_WORKERS threads, at most MAX_BATCH_SIZE."""
    return max(1, min(settings.max_batch_size, CHUNK * settings.max_workers))


def build_jobs(settings: Any, service: AsinService) -> JobService:
    """The job service for JOB_BACKEND: sqlite (a runner thread per worker, started by `start`) or redis (RQ)."""
    if settings.job_backend == "redis":
        from services.jobs_redis import build_redis_jobs

        return build_redis_jobs(settings)
    path = Path(settings.data_dir) / "jobs.sqlite"
    try:
        store = SQLiteJobStore(path)
    except (OSError, sqlite3.Error) as exc:
        log.error("cannot open the job store %s (%s): /jobs answers 503 until the service restarts with a writable DATA_DIR", path, exc)
        return JobService(UnavailableJobStore(str(path), f"{path} cannot be opened"), max_items=settings.max_job_size)
    runner = JobRunner(store, service, step=job_step(settings), retention=settings.job_retention)
    return JobService(store, max_items=settings.max_job_size, runner=runner)
