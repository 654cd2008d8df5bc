"""The one job step and the one step loop: the thread runner (sqlite), RQ parts (redis) and `flask asin batch` share them.

A step looks up to `size` pending items up through the batch service (the cache, the shared
limiter, 20 a call) and sorts each entry by services/errors.py's failure policy: the item's own
answer (or a success) is kept; a failure in passing (throttling, an SP-API outage) is asked again
later, on the job retry schedule; once its retries are spent, or for a failure that is neither
(refused credentials), it is `unanswered`: a job stores it as the item's answer so the job ends,
while `flask asin batch` stops so that a person can run it again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol, cast

import redis

from services import errors
from services.asin_service import AsinService
from services.dataset_fetch import DatasetRequest
from services.datasets import ENTRY_KEYS
from services.entries import job_entry
from services.jobs.model import DONE, FAILED, Entry, Job, JobSpec, PendingItem, process_owner
from services.jobs.redis_store import UPKEEP_SECONDS, RedisJobStore
from services.jobs.sqlite_store import SQLiteJobStore
from services.scan import Scanner, row_from_json
from services.spapi import CallLedger
from utils.retry import RetryPolicy

log = logging.getLogger(__name__)

# searchCatalogItems answers up to 20 identifiers a call (Catalog Items 2022-04-01 model).
CHUNK = 20
# A failure in passing is asked again up to 3 more times, 5 s, 10 s and 20 s later: an SP-API outage
# lasts tens of seconds, and the SP-API call itself was already retried within seconds (RETRY_DELAY_*).
ITEM_RETRIES = RetryPolicy(max_retries=3, delay_base=2.0, delay_max=60.0, first_delay=5.0, jitter=0.0)
# Throttled steps wait at least this long for the quota before asking again (never spending a retry).
MIN_THROTTLED_WAIT = 0.5


# Rows a scan takes per step: its chunks go through the stages side by side (services/scan.py), and
# each is stored as soon as it is done; a bigger step keeps every operation's queue fed for longer
# (a step's last chunks end with the slow deep checks, while nothing new is resolved). A step
# cut short (kill -9) loses no fetched dataset: they are in the cache.
SCAN_STEP = 1000


def step_size(max_batch_size: int, max_workers: int) -> int:
    """Items looked up per step: a chunk of 20 for each of MAX_WORKERS threads, at most MAX_BATCH_SIZE."""
    return max(1, min(max_batch_size, CHUNK * max_workers))


@dataclass
class Step:
    """One step's entries, sorted by what to do with them (positions are the items' positions in the list)."""

    answered: dict[int, Entry] = field(default_factory=dict)
    unanswered: dict[int, Entry] = field(default_factory=dict)
    # Asked again later, spending one of their retries; throttled ones are asked again without spending one.
    retried: list[int] = field(default_factory=list)
    throttled: list[int] = field(default_factory=list)
    # The error codes of the items asked again, and how long to wait first.
    codes: set[str] = field(default_factory=set)
    wait: float = 0.0
    # The step's SP-API calls by operation, and the milliseconds they waited for their slots (a job's progress shows both).
    ledger: CallLedger = field(default_factory=CallLedger)

    @property
    def call_tallies(self) -> dict[str, int]:
        """The ledger as job tallies: `calls:<operation>` and `waited_ms:<operation>`."""
        return {
            **{f"calls:{operation}": n for operation, n in self.ledger.calls.items()},
            **{f"waited_ms:{operation}": round(seconds * 1000) for operation, seconds in self.ledger.waited.items()},
        }

    @property
    def stored(self) -> dict[int, Entry]:
        """What a job stores: every answer, and the failures it gives up on."""
        return {**self.answered, **self.unanswered}

    def absorb(self, part: Step) -> None:
        """Add a part's entries, retries, wait and calls to this step."""
        self.answered.update(part.answered)
        self.unanswered.update(part.unanswered)
        self.retried += part.retried
        self.throttled += part.throttled
        self.codes |= part.codes
        self.wait = max(self.wait, part.wait)
        self.ledger.absorb(part.ledger)


class JobSteps:
    """Looks pending items up, a step at a time, and sorts the entries by the failure policy."""

    def __init__(self, service: AsinService, *, size: int, retry: RetryPolicy = ITEM_RETRIES, scanner: Scanner | None = None) -> None:
        self.size = size
        self.retry = retry
        self._service = service
        self._scanner = scanner

    def run(self, items: list[PendingItem], spec: JobSpec) -> Step:
        """All of `parts(...)` as one step."""
        step = Step()
        for part in self.parts(items, spec):
            step.absorb(part)
        return step

    def parts(self, items: list[PendingItem], spec: JobSpec) -> Iterator[Step]:
        """Look `items` up (at most `size_for(spec)`) with the datasets `spec.include` names, and sort the entries (each has its `input`).

        A lookup is one step. A scan's items (`spec.scan` given: its profile) are supplier rows, scanned
        instead: a step per chunk of rows, in order, as each is done, so that a job stores (and shows)
        its results while the rest are still being scanned. Their entries carry the row as `input`.
        """
        if spec.scan is None:
            step = Step()
            with step.ledger.recording():
                values = [item.input for item in items]
                datasets = DatasetRequest(include=spec.include, refresh=spec.refresh)
                entries = self._service.lookup_list(values, spec.identifier_type, spec.country, refresh=spec.refresh, datasets=datasets)
            for item, entry in zip(items, entries, strict=True):
                self._sort(step, item, job_entry(item.input, entry))
            yield step
            return
        assert self._scanner is not None, "a job service that takes scans has a scanner"
        profile = self._scanner.defaults.with_overrides(spec.scan["profile"])
        rows = [row_from_json(item.input) for item in items]
        ledger = CallLedger()
        with ledger.recording():  # the chunks run in copies of this context: their calls count here
            chunks = self._scanner.scan_chunks(rows, spec.country, profile, refresh=spec.refresh)
        done = 0
        try:
            for entries in chunks:
                step = Step(ledger=ledger.take())
                for item, entry in zip(items[done : done + len(entries)], entries, strict=True):
                    self._sort(step, item, cast(Entry, entry))
                done += len(entries)
                yield step
        finally:
            chunks.close()

    def size_for(self, spec: JobSpec) -> int:
        """Items a step takes: `size` for lookups, more for a scan (see SCAN_STEP)."""
        return max(self.size, SCAN_STEP) if spec.scan is not None else self.size

    def _sort(self, step: Step, item: PendingItem, entry: Entry) -> None:
        error = entry.get("error") or {}
        if entry.get("success"):
            # A found item is answered, unless one of its datasets failed in passing and may be asked again.
            error = _dataset_failure(entry) or {}
            if not error or (error.get("code") != errors.THROTTLED and item.attempts >= self.retry.max_retries):
                step.answered[item.position] = entry
                return
        code = error.get("code")
        if errors.is_item_answer(code):
            step.answered[item.position] = entry
            return
        after = float(error.get("retry_after_seconds") or 0.0)
        if code == errors.THROTTLED or (errors.is_transient(code) and item.attempts < self.retry.max_retries):
            step.codes.add(code)
        if code == errors.THROTTLED:
            # The quota has room again in `after` seconds (our limiter, or SP-API's 429): wait as long as it takes.
            step.throttled.append(item.position)
            step.wait = max(step.wait, after, MIN_THROTTLED_WAIT)
        elif errors.is_transient(code) and item.attempts < self.retry.max_retries:
            step.retried.append(item.position)
            step.wait = max(step.wait, after, self.retry.delay(item.attempts + 1))
        else:
            step.unanswered[item.position] = entry


def _dataset_failure(entry: Entry) -> dict | None:
    """The error of the first of the entry's datasets that failed in passing (throttled, SP-API unavailable), if any."""
    for key in ENTRY_KEYS.values():
        found = entry.get(key)  # type: ignore[misc]
        error = found.get("error") if isinstance(found, dict) else None
        if isinstance(error, dict) and errors.is_transient(error.get("code") or ""):
            return error
    return None


class JobWork(Protocol):
    """One runner's hold on (part of) a job: what the step loop reads and writes through."""

    job_id: str

    def current(self) -> Job | None:
        """The job as it stands, or None when this runner should stop (gone, finished, cancelled, taken over)."""

    def pending(self, limit: int) -> list[PendingItem]:
        """Up to `limit` unanswered items of this hold, lowest position first."""

    def record(self, step: Step) -> bool:
        """Store a step's answers and count its retries; False when this runner no longer holds the work."""

    def complete(self) -> None:
        """Nothing is pending any more."""

    def keep_alive(self) -> None:
        """Renew the hold while the runner waits."""


# While a step waits to ask again, the hold is renewed this often (a Redis part's lease is PART_LEASE, 30 s).
KEEP_ALIVE_EVERY = 10.0


def run_steps(work: JobWork, steps: JobSteps, stop: threading.Event) -> int:
    """Answer `work`'s pending items a step at a time until none is left or `stop` is set; how many were stored."""
    stored = 0
    while not stop.is_set():
        job = work.current()
        if job is None or job.finished:
            return stored
        items = work.pending(steps.size_for(job.spec))
        if not items:
            work.complete()
            return stored
        wait, waiting = 0.0, 0
        parts = steps.parts(items, job.spec)
        try:
            for step in parts:
                if not work.record(step):
                    log.info("job %s: no longer held by this worker (cancelled, or taken over); leaving it", work.job_id)
                    return stored
                stored += len(step.stored)
                wait, waiting = max(wait, step.wait), waiting + len(step.retried) + len(step.throttled)
                if stop.is_set():
                    return stored  # what is done is stored; the rest is pending for the next run
        finally:
            parts.close()
        if wait:
            log.info("job %s: %d items failed for now (SP-API throttling or unavailable); again in %.0f s", work.job_id, waiting, wait)
            _wait(wait, stop, work.keep_alive, KEEP_ALIVE_EVERY)
    return stored


def _wait(seconds: float, stop: threading.Event, keep_alive: Callable[[], None], every: float) -> None:
    """Wait `seconds` (or until `stop`), renewing the hold every `every` seconds."""
    remaining = seconds
    while remaining > 0 and not stop.wait(min(remaining, every)):
        remaining -= every
        if remaining > 0:
            keep_alive()


def run_or_fail(work: JobWork, steps: JobSteps, stop: threading.Event, fail: Callable[[str], None]) -> int:
    """run_steps, marking the job failed (with a message for the client) if a step raises something unexpected."""
    try:
        return run_steps(work, steps, stop)
    except Exception as exc:  # a bug, not an SP-API answer: the job says so instead of running forever
        log.exception("job %s failed", work.job_id)
        fail(f"the job stopped on an internal error ({type(exc).__name__}); it has been logged")
        return 0


# -- JOB_BACKEND=sqlite: a thread in every gunicorn worker claims jobs and runs them ---------------------------


class _ClaimedJob:
    """A job this runner claimed in the SQLite store: its hold is the claim, renewed by every record."""

    def __init__(self, store: SQLiteJobStore, job: Job, owner: str) -> None:
        self.job_id = job.id
        self._store = store
        self._job: Job | None = job
        self._owner = owner

    def current(self) -> Job | None:
        return self._job

    def pending(self, limit: int) -> list[PendingItem]:
        return self._store.pending(self.job_id, limit)

    def record(self, step: Step) -> bool:
        self._job = self._store.record(self.job_id, self._owner, step.stored, step.retried, step.call_tallies)
        return self._job is not None

    def complete(self) -> None:
        self._store.finish(self.job_id, self._owner, DONE)
        job = self._job
        if job is not None:
            log.info("job %s: done, %d succeeded, %d failed, %d from the cache", job.id, job.succeeded, job.failed, job.cached)

    def keep_alive(self) -> None:
        """Nothing to do: the claim's lease (LEASE_SECONDS) outlasts the longest wait between two records."""


class JobRunner:
    """Claims jobs from a SQLiteJobStore and runs their steps in a daemon thread, one job at a time."""

    def __init__(
        self,
        store: SQLiteJobStore,
        steps: JobSteps,
        *,
        retention: float,
        poll_seconds: float = 2.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._steps = steps
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
        log.info("job runner %s started (store %s)", self.owner, self._store.location)

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
        self._store.release(self.owner)

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
        purged = self._store.purge(now - self._retention)
        if purged:
            log.info("purged %d jobs untouched for JOB_RETENTION=%.0f s", purged, self._retention)

    def run_once(self) -> bool:
        """Claim one job and run it until it finishes or this runner stops; False if none was waiting."""
        job = self._store.claim(self.owner)
        if job is None:
            return False
        log.info("job %s: running, %d of %d items answered (%s %s)", job.id, job.done, job.total, job.identifier_type, job.country)
        work = _ClaimedJob(self._store, job, self.owner)
        run_or_fail(work, self._steps, self._stop, lambda message: self._store.finish(job.id, self.owner, FAILED, message))
        return True


# -- JOB_BACKEND=redis: RQ parts, run by `flask jobs worker` processes --------------------------------------------


class _HeldPart:
    """Part [start, end) of a job in the Redis store, held by this worker's lease."""

    def __init__(self, store: RedisJobStore, job_id: str, start: int, end: int, owner: str) -> None:
        self.job_id = job_id
        self._store = store
        self._start, self._end = start, end
        self._owner = owner
        # Set once nothing of the part is pending: run_part then lets go of it as done.
        self.completed = False

    def current(self) -> Job | None:
        return self._store.start_part(self.job_id)

    def pending(self, limit: int) -> list[PendingItem]:
        return self._store.pending_in(self.job_id, self._start, self._end, limit)

    def record(self, step: Step) -> bool:
        self._store.record(self.job_id, step.stored, step.retried, step.call_tallies)
        return self._store.holds_part(self.job_id, self._start, self._owner)

    def complete(self) -> None:
        self.completed = True

    def keep_alive(self) -> None:
        self._store.holds_part(self.job_id, self._start, self._owner)


def run_part(store: RedisJobStore, steps: JobSteps, job_id: str, start: int, end: int, owner: str, stop: threading.Event) -> int:
    """Answer the items of part [start, end) of `job_id` that have no stored answer, holding its lease; how many were stored."""
    if not store.take_part(job_id, start, owner):
        log.info("job %s: part %d-%d is done or held by a live worker; nothing to do", job_id, start, end - 1)
        return 0
    work = _HeldPart(store, job_id, start, end, owner)
    stored = 0
    try:
        stored = run_or_fail(work, steps, stop, lambda message: store.fail(job_id, message))
    finally:
        # Let go of the part: done, or (stopped, failed, cancelled) for upkeep to queue again while its job is unfinished.
        store.finish_part(job_id, start, owner, done=work.completed)
    return stored


class WorkerUpkeep:
    """A `flask jobs worker`'s heartbeat, and the parts whose worker died queued again, every UPKEEP_SECONDS in a thread."""

    def __init__(self, store: RedisJobStore, requeue: Callable[[str, int, int], None], owner: str) -> None:
        self._store = store
        self._requeue = requeue
        self.owner = owner
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> int:
        """Beat once and queue again every part whose holder is gone; how many were queued."""
        self._store.heartbeat(self.owner)
        lapsed = self._store.lapsed_parts()
        for job_id, start, end in lapsed:
            log.warning("job %s: part %d-%d lost its worker (its lease lapsed); queued again", job_id, start, end - 1)
            self._requeue(job_id, start, end)
        return len(lapsed)

    def start(self) -> None:
        """Beat and look for lapsed parts now, then every UPKEEP_SECONDS until `stop`."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="jobs-upkeep", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop beating and say this worker is gone."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self._store.forget_worker(self.owner)

    def _loop(self) -> None:
        while True:
            try:
                self.run_once()
            except redis.RedisError as exc:
                log.warning("jobs worker upkeep: Redis failed (%s); trying again in %.0f s", exc, UPKEEP_SECONDS)
            if self._stop.wait(UPKEEP_SECONDS):
                return
