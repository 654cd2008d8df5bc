"""JOB_BACKEND=redis: jobs in Redis, their work queued with RQ and done by `flask jobs worker` processes on any host.

Each job is cut into parts of PART_SIZE items; each part is one RQ job on the `fba-jobs` queue,
so any number of workers on any number of hosts share a job's work, all under the shared
limiter (RATE_LIMIT_BACKEND=redis). A part answers only items with no stored result, and stores
a step's answers and counts in one MULTI/EXEC, so a part retried after its worker died (RQ
retries abandoned jobs) fetches nothing already stored. The job's state and results stay in
Redis, the one store every host reads; its keys expire JOB_RETENTION seconds after the last change.

Keys (prefix `fba:jobs:`): `index` (sorted set of job ids by creation time), `<id>` (hash of the
job's fields), `<id>:inputs` (list of inputs, in order), `<id>:results` (hash position → entry
JSON), `<id>:attempts` (hash position → tries that failed for now).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import redis
from rq import Queue, Retry

from services.asin_service import AsinService
from services.jobs import (
    CANCELLED,
    DONE,
    QUEUED,
    RUNNING,
    Job,
    JobService,
    PendingItem,
    counts_of,
    item_batches,
    job_step,
    lookup_step,
    new_job_id,
    split_transient,
    translate_store_errors,
)
from utils import metrics

log = logging.getLogger(__name__)

QUEUE_NAME = "fba-jobs"
PREFIX = "fba:jobs:"
PART_SIZE = 200
_INSERT_BATCH = 2000
_RESULTS_PAGE = 500


def _number(value: bytes | None) -> float | None:
    return float(value) if value not in (None, b"") else None


class RedisJobStore:
    """Jobs and results in Redis: read by every host, written by whichever worker runs a part."""

    backend = "redis"

    def __init__(self, client: redis.Redis, *, retention: float, clock: Callable[[], float] = time.time) -> None:
        self._redis = client
        self._retention = int(retention)
        self._clock = clock
        self.location = "redis"

    def _key(self, job_id: str, suffix: str = "") -> str:
        return f"{PREFIX}{job_id}{suffix}"

    def _keys(self, job_id: str) -> list[str]:
        return [self._key(job_id, suffix) for suffix in ("", ":inputs", ":results", ":attempts")]

    def _touch(self, pipe: Any, job_id: str) -> None:
        for key in self._keys(job_id):
            pipe.expire(key, self._retention)

    @translate_store_errors((redis.RedisError,), "Redis")
    def create(self, country: str, identifier_type: str, values: Iterable[str], *, refresh: bool, source: str, max_items: int) -> Job:
        """Store a new queued job with one item per value (in order); JobError if empty or over `max_items`."""
        job_id = new_job_id()
        now = self._clock()
        total = 0
        try:
            for batch in item_batches(values, max_items, _INSERT_BATCH):
                self._redis.rpush(self._key(job_id, ":inputs"), *batch)
                total += len(batch)
        except BaseException:
            self._redis.delete(*self._keys(job_id))
            raise
        fields = {
            "country": country,
            "identifier_type": identifier_type,
            "refresh": int(refresh),
            "source": source,
            "status": QUEUED,
            "total": total,
            "done": 0,
            "succeeded": 0,
            "failed": 0,
            "cached": 0,
            "created_at": now,
            "updated_at": now,
            "run_done_start": 0,
        }
        with self._redis.pipeline() as pipe:
            pipe.hset(self._key(job_id), mapping=fields)
            pipe.zadd(PREFIX + "index", {job_id: now})
            self._touch(pipe, job_id)
            pipe.execute()
        job = self.get(job_id)
        assert job is not None
        return job

    def _job(self, job_id: str, raw: dict[bytes, bytes]) -> Job | None:
        if not raw:
            return None
        field = {k.decode(): v for k, v in raw.items()}
        return Job(
            id=job_id,
            country=field["country"].decode(),
            identifier_type=field["identifier_type"].decode(),
            refresh=field["refresh"] == b"1",
            source=field["source"].decode(),
            status=field["status"].decode(),
            total=int(field["total"]),
            done=int(field["done"]),
            succeeded=int(field["succeeded"]),
            failed=int(field["failed"]),
            cached=int(field["cached"]),
            created_at=float(field["created_at"]),
            started_at=_number(field.get("started_at")),
            finished_at=_number(field.get("finished_at")),
            updated_at=float(field["updated_at"]),
            run_started_at=_number(field.get("run_started_at")),
            run_done_start=int(field.get("run_done_start") or 0),
            error=field["error"].decode() if field.get("error") else None,
        )

    @translate_store_errors((redis.RedisError,), "Redis")
    def get(self, job_id: str) -> Job | None:
        """The job, or None."""
        return self._job(job_id, self._redis.hgetall(self._key(job_id)))

    @translate_store_errors((redis.RedisError,), "Redis")
    def list(self, limit: int) -> list[Job]:
        """The most recent jobs, newest first; ids whose keys expired are dropped from the index."""
        ids = [raw.decode() for raw in self._redis.zrevrange(PREFIX + "index", 0, limit - 1)]
        jobs = []
        for job_id in ids:
            job = self.get(job_id)
            if job is None:
                self._redis.zrem(PREFIX + "index", job_id)
            else:
                jobs.append(job)
        return jobs

    @translate_store_errors((redis.RedisError,), "Redis")
    def cancel(self, job_id: str) -> Job | None:
        """Cancel an unfinished job: parts stop at their next step; answers already stored stay."""
        job = self.get(job_id)
        if job is not None and not job.finished:
            now = self._clock()
            self._redis.hset(self._key(job_id), mapping={"status": CANCELLED, "finished_at": now, "updated_at": now})
        return self.get(job_id)

    def results(self, job_id: str) -> Iterator[tuple[int, str, dict[str, Any]]]:
        """(position, input, entry) of every answered item, in input order, a page at a time."""
        total = self._redis.llen(self._key(job_id, ":inputs"))
        for start in range(0, total, _RESULTS_PAGE):
            positions = list(range(start, min(total, start + _RESULTS_PAGE)))
            inputs = self._redis.lrange(self._key(job_id, ":inputs"), positions[0], positions[-1])
            entries = self._redis.hmget(self._key(job_id, ":results"), positions)
            for position, value, entry in zip(positions, inputs, entries, strict=True):
                if entry is not None:
                    yield position, value.decode(), json.loads(entry)

    @translate_store_errors((redis.RedisError,), "Redis")
    def pending_in(self, job_id: str, start: int, end: int, limit: int) -> list[PendingItem]:
        """Up to `limit` unanswered items with positions in [start, end)."""
        positions = list(range(start, end))
        if not positions:
            return []
        entries = self._redis.hmget(self._key(job_id, ":results"), positions)
        missing = [p for p, entry in zip(positions, entries, strict=True) if entry is None][:limit]
        if not missing:
            return []
        inputs = self._redis.lrange(self._key(job_id, ":inputs"), missing[0], missing[-1])
        attempts = self._redis.hmget(self._key(job_id, ":attempts"), missing)
        return [PendingItem(p, inputs[p - missing[0]].decode(), int(tries or 0)) for p, tries in zip(missing, attempts, strict=True)]

    @translate_store_errors((redis.RedisError,), "Redis")
    def start_part(self, job_id: str) -> Job | None:
        """Mark the job running (the first part to start sets its start time); None if it is gone or finished."""
        job = self.get(job_id)
        if job is None or job.status != QUEUED:
            return job
        now = self._clock()
        self._redis.hset(self._key(job_id), mapping={"status": RUNNING, "started_at": now, "run_started_at": now, "updated_at": now})
        return self.get(job_id)

    @translate_store_errors((redis.RedisError,), "Redis")
    def record(self, job_id: str, answered: dict[int, dict[str, Any]], retried: Iterable[int]) -> Job | None:
        """Store a step's answers and counts in one transaction; the job after it (done when the last item is)."""
        key = self._key(job_id)
        succeeded, failed, cached = counts_of(answered.values())
        now = self._clock()
        with self._redis.pipeline(transaction=True) as pipe:
            if answered:
                pipe.hset(
                    self._key(job_id, ":results"),
                    mapping={p: json.dumps(entry, separators=(",", ":")) for p, entry in answered.items()},
                )
            for position in retried:
                pipe.hincrby(self._key(job_id, ":attempts"), position, 1)
            pipe.hincrby(key, "done", len(answered))
            pipe.hincrby(key, "succeeded", succeeded)
            pipe.hincrby(key, "failed", failed)
            pipe.hincrby(key, "cached", cached)
            pipe.hset(key, "updated_at", now)
            self._touch(pipe, job_id)
            pipe.execute()
        metrics.count_job_items(succeeded, failed, cached)
        job = self.get(job_id)
        # Two parts may finish together: the one that sets finished_at first marks the job done.
        if job is not None and job.done >= job.total and job.status == RUNNING and self._redis.hsetnx(key, "finished_at", now):
            self._redis.hset(key, "status", DONE)
            metrics.count_job_event(DONE)
            log.info("job %s: done, %d succeeded, %d failed, %d from the cache", job_id, job.succeeded, job.failed, job.cached)
            job = self.get(job_id)
        return job

    @translate_store_errors((redis.RedisError,), "Redis")
    def purge(self, older_than: float) -> int:
        """Redis expires a job's keys itself; drop index entries older than `older_than` whose keys are gone."""
        stale = [raw.decode() for raw in self._redis.zrangebyscore(PREFIX + "index", 0, older_than)]
        gone = [job_id for job_id in stale if not self._redis.exists(self._key(job_id))]
        if gone:
            self._redis.zrem(PREFIX + "index", *gone)
        return len(gone)

    @translate_store_errors((redis.RedisError,), "Redis")
    def active_counts(self) -> dict[str, int]:
        """RQ parts waiting on the queue, and `flask jobs worker` processes alive."""
        from rq import Worker

        queue = Queue(QUEUE_NAME, connection=self._redis)
        return {"queued_parts": queue.count, "workers": Worker.count(queue=queue)}

    def close(self) -> None:
        """Close the connection pool."""
        self._redis.close()


# The worker process's store and ASIN service, set by `flask jobs worker` before it starts RQ.
_worker_context: dict[str, Any] = {}


def bind_worker(store: RedisJobStore, service: AsinService, step: int) -> None:
    """Give RQ parts run in this process the app's store and ASIN service (and with them its limiter and cache)."""
    _worker_context.update(store=store, service=service, step=step)


def _context() -> tuple[RedisJobStore, AsinService, int]:
    if not _worker_context:
        # A plain `rq worker`: build the app from the environment once per process.
        from app import create_app

        app = create_app()
        bind_worker(app.extensions["jobs"].store, app.extensions["asin_service"], job_step(app.config["SETTINGS"]))
    return _worker_context["store"], _worker_context["service"], _worker_context["step"]


def run_part(job_id: str, start: int, end: int) -> int:
    """RQ task: answer the items of `job_id` with positions in [start, end) that have no stored answer; how many."""
    store, service, step = _context()
    answered_count = 0
    while True:
        job = store.start_part(job_id)
        if job is None or job.finished:
            return answered_count
        items = store.pending_in(job_id, start, end, step)
        if not items:
            return answered_count
        entries = lookup_step(service, job, items)
        answered, retried, wait = split_transient(entries, items)
        store.record(job_id, answered, retried)
        answered_count += len(answered)
        if wait:
            log.info("job %s: %d items failed for now; again in %.0f s", job_id, len(retried), wait)
            time.sleep(wait)


class RedisJobService(JobService):
    """JobService whose jobs are cut into parts and queued on RQ rather than run by the web workers."""

    def __init__(self, store: RedisJobStore, queue: Queue, *, max_items: int) -> None:
        super().__init__(store, max_items=max_items, enqueue=self._enqueue_parts)
        self.queue = queue

    def _enqueue_parts(self, job: Job) -> None:
        for start in range(0, job.total, PART_SIZE):
            self.queue.enqueue(
                run_part,
                job.id,
                start,
                min(job.total, start + PART_SIZE),
                job_timeout=3600,
                retry=Retry(max=3),
                description=f"job {job.id} items {start}-{min(job.total, start + PART_SIZE) - 1}",
            )


def build_redis_jobs(settings: Any) -> RedisJobService:
    """Jobs in Redis at REDIS_URL, parts queued on RQ's `fba-jobs` queue."""
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=10, socket_connect_timeout=5)
    store = RedisJobStore(client, retention=settings.job_retention)
    return RedisJobService(store, Queue(QUEUE_NAME, connection=client), max_items=settings.max_job_size)
