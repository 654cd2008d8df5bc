"""A job as the stores keep it and clients see it: statuses, the Job row, pending items, and what every store shares."""

from __future__ import annotations

import functools
import logging
import os
import socket
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from services import errors
from services.entries import LookupEntry
from services.errors import ServiceError
from utils import metrics
from utils.marketplaces import UnknownCountry, resolve_country
from utils.timestamps import iso_utc

log = logging.getLogger(__name__)

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
# A job being uploaded: invisible to runners and listings until its last item is stored.
RECEIVING = "receiving"
FINISHED = frozenset({DONE, FAILED, CANCELLED})

# What a job stores as an item's answer: its lookup entry, with `input`.
Entry = LookupEntry


def store_unavailable(detail: str) -> ServiceError:
    """The error for a job store that cannot be read or written: jobs answer 503, lookups still work."""
    return ServiceError(errors.JOBS_UNAVAILABLE, f"Batch jobs are unavailable: {detail}; single and batch lookups still work")


def translate_store_errors(kinds: tuple[type[BaseException], ...], what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: a store method's `kinds` of exception become JOBS_UNAVAILABLE (a 503 for the client), logged once here."""

    def decorate(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return method(*args, **kwargs)
            except kinds as exc:
                log.error("job store (%s) failed in %s: %s", what, method.__name__, exc)
                raise store_unavailable(f"the {what} job store failed ({type(exc).__name__})") from exc

        return wrapper

    return decorate


@dataclass(frozen=True)
class JobSpec:
    """What a job asks for: its country, the type of its items, whether to skip the caches, where its items came from
    (for the log), the datasets each entry carries besides the catalog's facts (services/datasets.py's names), and, for a
    scan of a supplier's list, {"profile": {...}, "columns": [...]} (its items are services/scan.py's row_json)."""

    country: str
    identifier_type: str
    refresh: bool = False
    source: str = "json"
    include: tuple[str, ...] = ()
    scan: dict[str, Any] | None = None


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
    # The datasets each entry carries besides the catalog's facts (services/datasets.py's names).
    include: tuple[str, ...] = ()
    # A scan of a supplier's list: {"profile": {...}, "columns": [...]} (its items are services/scan.py's row_json); else None.
    scan: dict[str, Any] | None = None

    @property
    def spec(self) -> JobSpec:
        """What the job asks for."""
        return JobSpec(self.country, self.identifier_type, self.refresh, self.source, self.include, self.scan)

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

    def view(self, now: float, *, waiting_for_worker: bool = False) -> dict[str, Any]:
        """The job as JSON: status, counts, progress, rate and ETA; whether it waits for a worker to serve it."""
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
            "include": list(self.include),
            "scan": self.scan,
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
            "waiting_for_worker": waiting_for_worker and not self.finished,
            "created_at": iso_utc(self.created_at),
            "started_at": iso_utc(self.started_at),
            "finished_at": iso_utc(self.finished_at),
            "error": self.error,
        }


@dataclass(frozen=True)
class PendingItem:
    """An item not answered yet: its position in the list, its input, and how often it failed in passing."""

    position: int
    input: str
    attempts: int


class JobStore(Protocol):
    """What JobService asks of every job store (sqlite or redis); safe from any thread or process.

    How a store's work is handed out differs (claims in SQLiteJobStore, RQ parts in RedisJobStore),
    so those methods are each store's own.
    """

    backend: str
    location: str

    def create(self, spec: JobSpec, values: Iterable[str], *, max_items: int) -> Job:
        """Store a new queued job with one item per value (in order); ServiceError if empty or over `max_items`."""

    def get(self, job_id: str) -> Job | None:
        """The job, or None."""

    def list(self, limit: int) -> list[Job]:
        """The most recent jobs, newest first."""

    def cancel(self, job_id: str) -> Job | None:
        """Cancel an unfinished job; the job as it now stands, or None if there is no such job."""

    def results(self, job_id: str) -> Iterator[tuple[int, str, Entry]]:
        """(position, input, entry) of every answered item, in input order."""

    def tallies(self, job_id: str) -> dict[str, int]:
        """The job's tallies, kept as its steps are stored: SP-API calls and waits by operation (`calls:`, `waited_ms:`, from
        each step's CallLedger) and a scan's rows by stage and verdict (tallies_of its answered rows)."""

    def active_counts(self) -> dict[str, int]:
        """For /health: how much work waits or runs."""

    def close(self) -> None:
        """Release connections."""


class UnavailableJobStore:
    """Stands in for a job store that could not be opened: every call answers 503, the rest of the service runs."""

    backend = "sqlite"

    def __init__(self, location: str, reason: str) -> None:
        self.location = location
        self._reason = reason

    def __getattr__(self, name: str) -> Callable[..., Any]:
        def unavailable(*args: Any, **kwargs: Any) -> Any:
            raise store_unavailable(self._reason)

        return unavailable

    def close(self) -> None:
        """Nothing to close."""


def new_job_id() -> str:
    """A job id: 32 hex characters, unguessable."""
    return uuid.uuid4().hex


def process_owner() -> str:
    """This process's claim name: host, pid and a random part (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def owner_gone(owner: str | None, host: str) -> bool:
    """True when `owner` is a process of this host that no longer exists."""
    if not owner:
        return True
    parts = owner.split(":")
    if len(parts) != 3 or parts[0] != host or not parts[1].isdigit():
        return False
    return not metrics.pid_alive(int(parts[1]))


def item_batches(values: Iterable[str], max_items: int, size: int) -> Iterator[list[str]]:
    """`values` in lists of up to `size`, read as they come; ServiceError past `max_items`, or if there are none."""
    batch: list[str] = []
    total = 0
    for value in values:
        if total >= max_items:
            raise ServiceError(errors.JOB_TOO_LARGE, f"the job has more than MAX_JOB_SIZE={max_items} items; split the list")
        batch.append(value)
        total += 1
        if len(batch) >= size:
            yield batch
            batch = []
    if total == 0:
        raise ServiceError(errors.EMPTY_JOB, "the job has no items: send at least one ASIN or identifier")
    if batch:
        yield batch


def tallies_of(entries: Iterable[Entry]) -> dict[str, int]:
    """What a scan's answered rows add to its progress by stage and verdict: resolved (a product found),
    screened (stopped at the cheap screen), deep_checked (went through every gate), and BUY / REVIEW / SKIP."""
    tallies: dict[str, int] = {}
    for entry in entries:
        scan = entry.get("Scan")  # type: ignore[misc]
        if not isinstance(scan, dict):
            continue
        names = [scan.get("verdict"), "deep_checked" if scan.get("stage") == "full" else "screened"]
        if entry.get("success"):
            names.append("resolved")
        for name in names:
            if isinstance(name, str):
                tallies[name] = tallies.get(name, 0) + 1
    return tallies


def counts_of(entries: Iterable[Entry]) -> tuple[int, int, int]:
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
