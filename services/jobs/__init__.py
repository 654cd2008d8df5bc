"""Durable batch jobs: a list of any size, stored item by item, answered a step at a time through the batch service.

`model` (the Job, its statuses, what every store shares), `sqlite_store` (DATA_DIR/jobs.sqlite, claims
with leases), `redis_store` (Redis, RQ parts with leases), `runner` (the one step and step loop, the
thread runner and the RQ part runner), `service` (JobService: what routes and the CLI use).
"""

from services.jobs.model import CANCELLED, DONE, FAILED, FINISHED, QUEUED, RUNNING, Job, JobSpec, PendingItem
from services.jobs.service import JobService, RedisJobService, build_jobs

__all__ = [
    "CANCELLED",
    "DONE",
    "FAILED",
    "FINISHED",
    "QUEUED",
    "RUNNING",
    "Job",
    "JobSpec",
    "JobService",
    "PendingItem",
    "RedisJobService",
    "build_jobs",
]
