"""Jobs in one SQLite file under DATA_DIR (WAL): shared by every worker process on this machine, claimed with leases.

An item's result is written only after SP-API (or the cache) answered it, in the same transaction
that advances the job's counts, so a worker killed at any moment loses at most the lookups in
flight and marks nothing done that was not. A job is claimed by one worker at a time with a lease;
a claim held by a process that no longer exists on this host (kill -9, a crash) is taken over at once.
"""

from __future__ import annotations

import json
import logging
import socket
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from services.jobs.model import (
    CANCELLED,
    QUEUED,
    RECEIVING,
    RUNNING,
    Job,
    JobSpec,
    PendingItem,
    counts_of,
    item_batches,
    new_job_id,
    owner_gone,
    tallies_of,
    translate_store_errors,
)
from utils import metrics
from utils.sqlite import SQLiteFile

log = logging.getLogger(__name__)

# Seconds a claim lasts without progress before another worker may take the job over.
LEASE_SECONDS = 300.0

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
    error TEXT,
    include TEXT NOT NULL DEFAULT '',
    scan TEXT
);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, created_at);
CREATE INDEX IF NOT EXISTS jobs_by_update ON jobs (updated_at);
CREATE TABLE IF NOT EXISTS job_tallies (
    job_id TEXT NOT NULL,
    name TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (job_id, name)
) WITHOUT ROWID;
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
    "created_at, started_at, finished_at, updated_at, run_started_at, run_done_start, error, include, scan"
)
# Items stored per transaction while a job is created: an upload never holds the write lock long.
_INSERT_BATCH = 2000
_RESULTS_PAGE = 500


def _scan_text(scan: dict[str, Any] | None) -> str | None:
    return json.dumps(scan, separators=(",", ":")) if scan is not None else None


def _job(row: tuple[Any, ...]) -> Job:
    values = list(row)
    values[3] = bool(values[3])
    values[-2] = tuple(name for name in values[-2].split(",") if name)
    values[-1] = json.loads(values[-1]) if values[-1] else None
    return Job(*values)


class SQLiteJobStore:
    """Jobs in one SQLite file (WAL): shared by every worker process on this machine."""

    backend = "sqlite"

    def __init__(self, path: str | Path, clock: Callable[[], float] = time.time) -> None:
        # A writer waits up to 30 s: an upload's inserts and every worker's step records share the lock,
        # and nothing a client waits on for long (a job's answers are written in the background).
        self._file = SQLiteFile(path, busy_timeout=30.0, schema=_SCHEMA)
        self._file.open()
        self._add_columns()
        self.location = self._file.location
        self._clock = clock
        self._host = socket.gethostname()

    def _add_columns(self) -> None:
        # A file written before jobs took `include` and `scan` lacks their columns: add them (old jobs had neither).
        added = {"include": "include TEXT NOT NULL DEFAULT ''", "scan": "scan TEXT"}
        if set(added) <= {row[1] for row in self._connection().execute("PRAGMA table_info(jobs)")}:
            return
        with self._transaction() as conn:
            columns = {row[1] for row in conn.execute("PRAGMA table_info(jobs)")}
            for name, definition in added.items():
                if name not in columns:
                    conn.execute(f"ALTER TABLE jobs ADD COLUMN {definition}")

    def _connection(self) -> sqlite3.Connection:
        return self._file.connection()

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._file.transaction()

    def close(self) -> None:
        """Close the connections this process opened."""
        self._file.close()

    @translate_store_errors((sqlite3.Error, OSError), "SQLite")
    def create(self, spec: JobSpec, values: Iterable[str], *, max_items: int) -> Job:
        """Store a new queued job with one item per value (in order); JobError if over `max_items`."""
        job_id = new_job_id()
        now = self._clock()
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO jobs (id, country, identifier_type, refresh, source, status, created_at, updated_at, include, scan) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    job_id,
                    spec.country,
                    spec.identifier_type,
                    int(spec.refresh),
                    spec.source,
                    RECEIVING,
                    now,
                    now,
                    ",".join(spec.include),
                    _scan_text(spec.scan),
                ),
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
            conn.execute("DELETE FROM job_tallies WHERE job_id = ?", (job_id,))
            conn.execute("DELETE FROM jobs WHERE id = ?", (job_id,))

    @translate_store_errors((sqlite3.Error, OSError), "SQLite")
    def tallies(self, job_id: str) -> dict[str, int]:
        """The job's tallies: SP-API calls and waits by operation (`calls:`, `waited_ms:`), a scan's rows by stage and verdict."""
        return dict(self._connection().execute("SELECT name, count FROM job_tallies WHERE job_id = ?", (job_id,)).fetchall())

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
                if holder and lease_until > now and not owner_gone(holder, self._host):
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
        self,
        job_id: str,
        owner: str,
        answered: dict[int, dict[str, Any]],
        retried: Iterable[int],
        tallies: dict[str, int] | None = None,
        lease: float = LEASE_SECONDS,
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
            conn.executemany(
                "INSERT INTO job_tallies (job_id, name, count) VALUES (?, ?, ?) "
                "ON CONFLICT (job_id, name) DO UPDATE SET count = count + excluded.count",
                [(job_id, name, count) for name, count in {**tallies_of(stored), **(tallies or {})}.items()],
            )
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
                conn.execute("DELETE FROM job_tallies WHERE job_id = ?", (job_id,))
                conn.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
        return len(ids)
