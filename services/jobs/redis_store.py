"""JOB_BACKEND=redis: jobs in Redis, their work cut into parts queued with RQ for `flask jobs worker` processes on any host.

Each job is cut into parts of PART_SIZE items; each part is one RQ job on the `fba-jobs` queue, so
any number of workers on any number of hosts share a job's work, all under the shared limiter
(RATE_LIMIT_BACKEND=redis). A part answers only items with no stored result, and stores a step's
answers and counts in one MULTI/EXEC, so a part run again fetches nothing already stored.

A worker running a part holds its lease (PART_LEASE seconds, renewed at every step and while it
waits). Every live worker beats a heartbeat and, every UPKEEP_SECONDS, takes up parts that were
started but whose lease lapsed (a worker killed mid-part) by queueing them again: so a dead
worker's part goes on within a minute on any live or restarted worker (RQ's own detection of an
abandoned job waits for a heartbeat TTL of 90 s and a maintenance run every 10 minutes). A job that
no live worker serves says so in its status (`waiting_for_worker`).

Keys (prefix `fba:jobs:`): `index` (sorted set of job ids by creation time), `active` (set of
unfinished job ids), `workers` (sorted set of worker names by last heartbeat), `<id>` (hash of the
job's fields), `<id>:inputs` (list of inputs, in order), `<id>:results` (hash position → entry
JSON), `<id>:attempts` (hash position → tries that failed for now), `<id>:parts` (hash part start
→ end), `<id>:started` and `<id>:done_parts` (sets of part starts), `<id>:lease:<start>` (the
holder of a running part). A job's keys expire JOB_RETENTION seconds after its last change.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import redis

from services.jobs.model import (
    CANCELLED,
    DONE,
    FAILED,
    QUEUED,
    RUNNING,
    Entry,
    Job,
    JobSpec,
    PendingItem,
    counts_of,
    item_batches,
    new_job_id,
    tallies_of,
    translate_store_errors,
)
from utils import metrics

log = logging.getLogger(__name__)

QUEUE_NAME = "fba-jobs"
PREFIX = "fba:jobs:"
PART_SIZE = 200
# A running part's lease; its holder renews it at every step and every few seconds while it waits.
PART_LEASE = 30.0
# A worker counts as live this long after its last heartbeat; it beats (and looks for lapsed parts) every UPKEEP_SECONDS.
WORKER_TTL = 30.0
UPKEEP_SECONDS = 10.0
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
        suffixes = ("", ":inputs", ":results", ":attempts", ":parts", ":started", ":done_parts", ":tallies")
        return [self._key(job_id, suffix) for suffix in suffixes]

    def _touch(self, pipe: Any, job_id: str) -> None:
        for key in self._keys(job_id):
            pipe.expire(key, self._retention)

    @translate_store_errors((redis.RedisError,), "Redis")
    def create(self, spec: JobSpec, values: Iterable[str], *, max_items: int) -> Job:
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
            "country": spec.country,
            "identifier_type": spec.identifier_type,
            "refresh": int(spec.refresh),
            "include": ",".join(spec.include),
            **({"scan": json.dumps(spec.scan, separators=(",", ":"))} if spec.scan is not None else {}),
            "source": spec.source,
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
        parts = {start: min(total, start + PART_SIZE) for start in range(0, total, PART_SIZE)}
        with self._redis.pipeline() as pipe:
            pipe.hset(self._key(job_id), mapping=fields)
            pipe.hset(self._key(job_id, ":parts"), mapping=parts)
            pipe.zadd(PREFIX + "index", {job_id: now})
            pipe.sadd(PREFIX + "active", job_id)
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
            include=tuple(name for name in field.get("include", b"").decode().split(",") if name),
            scan=json.loads(field["scan"]) if field.get("scan") else None,
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
            self._redis.srem(PREFIX + "active", job_id)
        return self.get(job_id)

    @translate_store_errors((redis.RedisError,), "Redis")
    def tallies(self, job_id: str) -> dict[str, int]:
        """The job's tallies: SP-API calls and waits by operation (`calls:`, `waited_ms:`), a scan's rows by stage and verdict."""
        return {name.decode(): int(count) for name, count in self._redis.hgetall(self._key(job_id, ":tallies")).items()}

    def results(self, job_id: str) -> Iterator[tuple[int, str, Entry]]:
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
    def record(self, job_id: str, answered: dict[int, Entry], retried: Iterable[int], tallies: dict[str, int] | None = None) -> Job | None:
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
            for name, count in {**tallies_of(answered.values()), **(tallies or {})}.items():
                pipe.hincrby(self._key(job_id, ":tallies"), name, count)
            pipe.hset(key, "updated_at", now)
            self._touch(pipe, job_id)
            pipe.execute()
        metrics.count_job_items(succeeded, failed, cached)
        job = self.get(job_id)
        # Two parts may finish together: the one that sets finished_at first marks the job done.
        if job is not None and job.done >= job.total and job.status == RUNNING and self._redis.hsetnx(key, "finished_at", now):
            self._redis.hset(key, "status", DONE)
            self._redis.srem(PREFIX + "active", job_id)
            metrics.count_job_event(DONE)
            log.info("job %s: done, %d succeeded, %d failed, %d from the cache", job_id, job.succeeded, job.failed, job.cached)
            job = self.get(job_id)
        return job

    @translate_store_errors((redis.RedisError,), "Redis")
    def fail(self, job_id: str, message: str) -> None:
        """Mark the job failed with `message` (unless it already finished)."""
        job = self.get(job_id)
        if job is None or job.finished:
            return
        now = self._clock()
        self._redis.hset(self._key(job_id), mapping={"status": FAILED, "error": message, "finished_at": now, "updated_at": now})
        self._redis.srem(PREFIX + "active", job_id)
        metrics.count_job_event(FAILED)

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
        """RQ parts waiting on the queue, and `flask jobs worker` processes alive (a heartbeat within WORKER_TTL)."""
        from rq import Queue

        return {"queued_parts": Queue(QUEUE_NAME, connection=self._redis).count, "workers": self.live_workers()}

    # -- parts: leases, heartbeats and the parts of dead workers ---------------------------------

    def parts(self, job_id: str) -> list[tuple[int, int]]:
        """(start, end) of each of the job's parts, in order."""
        stored = self._redis.hgetall(self._key(job_id, ":parts"))
        return sorted((int(start), int(end)) for start, end in stored.items())

    def take_part(self, job_id: str, start: int, owner: str) -> bool:
        """Hold part `start` for `owner` (PART_LEASE), unless a live holder has it or it is done; True if held."""
        if self._redis.sismember(self._key(job_id, ":done_parts"), start):
            return False
        if not self._redis.set(self._key(job_id, f":lease:{start}"), owner, nx=True, px=int(PART_LEASE * 1000)):
            return self.holds_part(job_id, start, owner)
        self._redis.sadd(self._key(job_id, ":started"), start)
        return True

    def holds_part(self, job_id: str, start: int, owner: str) -> bool:
        """True while `owner` holds part `start` (renewing the lease)."""
        key = self._key(job_id, f":lease:{start}")
        if self._redis.get(key) != owner.encode():
            return False
        self._redis.pexpire(key, int(PART_LEASE * 1000))
        return True

    def finish_part(self, job_id: str, start: int, owner: str, *, done: bool) -> None:
        """Let go of part `start` (`done`: nothing of it is pending); one let go of unfinished is queued again by upkeep."""
        if done:
            with self._redis.pipeline(transaction=True) as pipe:
                pipe.sadd(self._key(job_id, ":done_parts"), start)
                pipe.srem(self._key(job_id, ":started"), start)
                pipe.execute()
        key = self._key(job_id, f":lease:{start}")
        if self._redis.get(key) == owner.encode():
            self._redis.delete(key)

    def heartbeat(self, worker: str) -> None:
        """`worker` is alive now; workers silent longer than WORKER_TTL are forgotten."""
        now = self._clock()
        with self._redis.pipeline(transaction=False) as pipe:
            pipe.zadd(PREFIX + "workers", {worker: now})
            pipe.zremrangebyscore(PREFIX + "workers", 0, now - WORKER_TTL)
            pipe.execute()

    def forget_worker(self, worker: str) -> None:
        """`worker` stopped (cleanly)."""
        self._redis.zrem(PREFIX + "workers", worker)

    def live_workers(self) -> int:
        """Workers whose last heartbeat is within WORKER_TTL."""
        # A read only: job views ask it; the heartbeats prune the set.
        return int(self._redis.zcount(PREFIX + "workers", self._clock() - WORKER_TTL, "+inf"))

    def lapsed_parts(self) -> list[tuple[str, int, int]]:
        """(job id, start, end) of every started, unfinished part whose holder is gone; each is handed to one caller only."""
        lapsed = []
        for raw in self._redis.smembers(PREFIX + "active"):
            job_id = raw.decode()
            job = self.get(job_id)
            if job is None or job.finished:
                self._redis.srem(PREFIX + "active", job_id)
                continue
            ends = dict(self.parts(job_id))
            for start in sorted(int(value) for value in self._redis.smembers(self._key(job_id, ":started"))):
                if self._redis.exists(self._key(job_id, f":lease:{start}")):
                    continue
                # SREM answers 1 to one caller only: two workers looking at once queue the part once.
                if self._redis.srem(self._key(job_id, ":started"), start):
                    lapsed.append((job_id, start, ends.get(start, start + PART_SIZE)))
        return lapsed

    def close(self) -> None:
        """Close the connection pool."""
        self._redis.close()
