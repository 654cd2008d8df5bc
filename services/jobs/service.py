"""Jobs as the routes and the CLI see them: submit, get, list, results, cancel, health; and what answers them.

With JOB_BACKEND=sqlite every gunicorn worker runs a JobRunner thread; with JOB_BACKEND=redis a
job is cut into RQ parts and `flask jobs worker` processes run them (`work`), each also keeping
up its heartbeat and taking up the parts of workers that died.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import redis
from rq import Queue, SimpleWorker

from services.asin_service import AsinService
from services.errors import ServiceError
from services.jobs.model import CANCELLED, Entry, Job, JobSpec, JobStore, UnavailableJobStore, process_owner
from services.jobs.redis_store import QUEUE_NAME, RedisJobStore
from services.jobs.runner import JobRunner, JobSteps, WorkerUpkeep, run_part, step_size
from services.jobs.sqlite_store import SQLiteJobStore
from services.scan import Scanner
from utils import metrics
from utils.redis_client import redis_client

log = logging.getLogger(__name__)

# A part of 200 items takes seconds at the plan; an hour allows for a long SP-API outage.
PART_TIMEOUT = 3600


class JobService:
    """Jobs in a store, answered by the embedded runner (sqlite) or by RQ workers (RedisJobService)."""

    def __init__(self, store: JobStore, *, max_items: int, runner: JobRunner | None = None, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._runner = runner
        self._max_items = max_items
        self._clock = clock

    @property
    def runner(self) -> JobRunner | None:
        """This process's job runner (JOB_BACKEND=sqlite), or None."""
        return self._runner

    def submit(self, spec: JobSpec, values: Iterable[str]) -> Job:
        """Store a new job of `spec` (ServiceError if it is empty or over MAX_JOB_SIZE) and hand it to a runner."""
        job = self._store.create(spec, values, max_items=self._max_items)
        metrics.count_job_event("created")
        log.info("job %s: queued, %d %s items for %s (%s)", job.id, job.total, spec.identifier_type, spec.country, spec.source)
        self._dispatch(job)
        return job

    def _dispatch(self, job: Job) -> None:
        if self._runner is not None:
            self._runner.wake()

    def get(self, job_id: str) -> Job | None:
        """The job, or None."""
        return self._store.get(job_id)

    def list(self, limit: int) -> list[Job]:
        """The most recent jobs, newest first."""
        return self._store.list(limit)

    def results(self, job_id: str) -> Iterator[tuple[int, str, Entry]]:
        """(position, input, entry) of every answered item, in input order, read as they are consumed."""
        return self._store.results(job_id)

    def cancel(self, job_id: str) -> Job | None:
        """Cancel an unfinished job; the job as it now stands (None: no such job)."""
        job = self._store.cancel(job_id)
        if job is not None and job.status == CANCELLED:
            metrics.count_job_event(CANCELLED)
            log.info("job %s: cancelled at %d of %d items", job.id, job.done, job.total)
        return job

    def health(self) -> dict[str, Any]:
        """For /health: the backend, where the store is, whether it answers, and how many jobs wait or run."""
        where = {"backend": self._store.backend, "location": self._store.location}
        try:
            counts = self._store.active_counts()
        except ServiceError:  # JOBS_UNAVAILABLE, already logged by the store
            return {**where, "store_ok": False}
        return {**where, "store_ok": True, **counts}

    def view(self, job: Job) -> dict[str, Any]:
        """The job as JSON, its rate and ETA as of now; a scan's progress by stage and verdict."""
        view = job.view(self._clock(), waiting_for_worker=self._waiting_for_worker(job))
        tallies = self._store.tallies(job.id)
        view["calls"] = {name.partition(":")[2]: n for name, n in sorted(tallies.items()) if name.startswith("calls:")}
        waits = {name.partition(":")[2]: n / 1000 for name, n in tallies.items() if name.startswith("waited_ms:")}
        # The operation whose slots the job waited for longest: its bucket (or the RATE_LIMIT_CALLS window) paces the job.
        view["waiting_most_on"] = max(waits, key=waits.__getitem__) if waits and max(waits.values()) > 0 else None
        view["waited_seconds"] = {operation: round(seconds, 1) for operation, seconds in sorted(waits.items())}
        if job.scan is not None:
            view["scan"] = {
                **job.scan,
                "stages": {name: tallies.get(name, 0) for name in ("resolved", "screened", "deep_checked")} | {"done": job.done},
                "verdicts": {verdict: tallies.get(verdict, 0) for verdict in ("BUY", "REVIEW", "SKIP")},
            }
        return view

    def _waiting_for_worker(self, job: Job) -> bool:
        """False: the service's own workers run the job (if none runs, the service is not answering either)."""
        return False

    def start(self) -> None:
        """Start answering jobs in this process (the embedded runner); nothing for the Redis queue."""
        if self._runner is not None:
            self._runner.start()

    def request_stop(self) -> None:
        """Start no new step: the process is shutting down (called from gunicorn's SIGTERM handler)."""
        if self._runner is not None:
            self._runner.request_stop()

    def stop(self) -> None:
        """Stop the runner after its step in flight; the job resumes in another worker or after a restart."""
        if self._runner is not None:
            self._runner.stop()
        self._store.close()


class RedisJobService(JobService):
    """JobService whose jobs are cut into parts and queued on RQ, for `flask jobs worker` processes on any host."""

    def __init__(self, store: RedisJobStore, queue: Queue, steps: JobSteps, *, max_items: int, part_task: str) -> None:
        super().__init__(store, max_items=max_items)
        self._redis_store = store
        self.queue = queue
        self._steps = steps
        self._part_task = part_task
        self._stopping = threading.Event()
        self.owner = process_owner()

    def _dispatch(self, job: Job) -> None:
        for start, end in self._redis_store.parts(job.id):
            self._enqueue(job.id, start, end)

    def _enqueue(self, job_id: str, start: int, end: int) -> None:
        # No RQ retries: a part whose worker died is queued again by the live workers' upkeep within a minute
        # (RQ would notice only after its heartbeat TTL and maintenance interval, minutes later).
        self.queue.enqueue(
            self._part_task, job_id, start, end, job_timeout=PART_TIMEOUT, description=f"job {job_id} items {start}-{end - 1}"
        )

    def _waiting_for_worker(self, job: Job) -> bool:
        try:
            return not job.finished and self._redis_store.live_workers() == 0
        except redis.RedisError:
            return False

    def run_part(self, job_id: str, start: int, end: int) -> int:
        """RQ task body: answer part [start, end) of `job_id` in this process; how many items were stored."""
        return run_part(self._redis_store, self._steps, job_id, start, end, self.owner, self._stopping)

    def work(self, *, burst: bool, logging_level: str) -> None:
        """Run queued parts in this process (RQ SimpleWorker: the limiter, cache and clients stay warm), beating a heartbeat."""
        upkeep = WorkerUpkeep(self._redis_store, self._enqueue, self.owner)
        upkeep.run_once()  # parts a dead worker left are queued before this one looks at the queue
        upkeep.start()
        worker = SimpleWorker([self.queue], connection=self.queue.connection)
        log.info("jobs worker %s (%s): queue %s", worker.name, self.owner, self.queue.name)
        try:
            worker.work(burst=burst, logging_level=logging_level, with_scheduler=False)
        finally:
            upkeep.stop()


def build_jobs(settings: Any, service: AsinService, *, part_task: str, scanner: Scanner | None = None) -> JobService:
    """The job service for JOB_BACKEND: sqlite (a runner thread per worker, started by `start`) or redis (RQ parts run by `part_task`)."""
    steps = JobSteps(service, size=step_size(settings.max_batch_size, settings.max_workers), scanner=scanner)
    if settings.job_backend == "redis":
        # RQ's worker raises this client's socket timeout above its own blocking dequeue timeout.
        client = redis_client(settings.redis_url, timeout=10.0)
        store = RedisJobStore(client, retention=settings.job_retention)
        return RedisJobService(store, Queue(QUEUE_NAME, connection=client), steps, max_items=settings.max_job_size, part_task=part_task)
    path = Path(settings.data_dir) / "jobs.sqlite"
    try:
        sqlite_store = SQLiteJobStore(path)
    except (OSError, sqlite3.Error) as exc:
        log.error("cannot open the job store %s (%s): /jobs answers 503 until the service restarts with a writable DATA_DIR", path, exc)
        return JobService(UnavailableJobStore(str(path), f"{path} cannot be opened"), max_items=settings.max_job_size)
    runner = JobRunner(sqlite_store, steps, retention=settings.job_retention)
    return JobService(sqlite_store, max_items=settings.max_job_size, runner=runner)
