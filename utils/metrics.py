"""Prometheus metrics (prometheus-client): the metric objects, one-line recorders, exposition.

Every metric is named `fba_*` and every label takes a bounded set of values (a route is the
Flask URL rule, never the raw path). Under gunicorn, workers are separate processes: the
master turns on prometheus-client's multiprocess mode before it forks them
(`start_multiprocess_mode`, from gunicorn.conf.py), each worker then writes its values to
mmap'ed files in PROMETHEUS_MULTIPROC_DIR, and a scrape of any worker adds up every worker's
files (`exposition`). Without that variable (the Flask test client, `flask run`) values live
in this process and the default registry serves them.

Every metric here has labels on purpose: a labelled metric holds no value until its first
`.labels(...)`, so nothing is stored before the process knows which mode it is in (see
`start_multiprocess_mode`).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, TypeVar

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest, values
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

# prometheus-client's own variable: the library reads it itself (at import, and for each new
# value), so it is the one setting that lives in the environment rather than in config.Settings.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# The directory gunicorn's master makes under DATA_DIR when PROMETHEUS_MULTIPROC_DIR is not set.
_AUTO_DIR = re.compile(r"metrics-(\d+)")

# Labels of HTTP methods beyond these collapse into "other": a client picks the method.
_HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE = "unmatched"

# Seconds. A batch may wait on the SP-API plan up to gunicorn's 120 s timeout; a cached GET takes ~1 ms.
_HTTP_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
# One SP-API request, at most REQUEST_TIMEOUT (30 s by default).
_SPAPI_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
# A limiter wait: ~0 with tokens in the bucket, 0.5 s per queued call at the plan's 2 requests/s.
_WAIT_BUCKETS = (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

HTTP_REQUESTS = Counter(
    "fba_http_requests_total", "HTTP requests answered, by method, route (the URL rule) and status", ["method", "route", "status"]
)
HTTP_REQUEST_DURATION = Histogram(
    "fba_http_request_duration_seconds",
    "Time from the request's arrival in Flask to its response",
    ["method", "route"],
    buckets=_HTTP_BUCKETS,
)
SPAPI_CALLS = Counter(
    "fba_spapi_calls_total", "SP-API requests sent, by operation and HTTP status (error: no response)", ["operation", "status"]
)
SPAPI_CALL_DURATION = Histogram(
    "fba_spapi_call_duration_seconds",
    "Time of one SP-API request on the wire (limiter wait excluded)",
    ["operation"],
    buckets=_SPAPI_BUCKETS,
)
SPAPI_RETRIES = Counter(
    "fba_spapi_retries_total", "SP-API calls retried, by operation and reason (HTTP status, timeout, connection)", ["operation", "reason"]
)
SPAPI_THROTTLED = Counter("fba_spapi_throttled_total", "429 QuotaExceeded answers received from SP-API", ["operation"])
LIMITER_WAIT = Histogram(
    "fba_limiter_wait_seconds", "Time an SP-API call waited for its slot in the rate limiter", ["operation"], buckets=_WAIT_BUCKETS
)
CACHE_LOOKUPS = Counter("fba_cache_lookups_total", "ASINs looked up in the result cache, by result (hit or miss)", ["result"])
CACHE_ERRORS = Counter("fba_cache_errors_total", "Result cache failures (answered as misses or not stored), by operation", ["operation"])

# Jobs: counters only (they add up across workers and hosts' scrapes); progress is their rate.
JOBS = Counter("fba_jobs_total", "Batch jobs by event: created, done, failed, cancelled", ["event"])
JOB_ITEMS = Counter(
    "fba_job_items_total", "Job items answered, by result (succeeded or failed; cached counts those from the cache too)", ["result"]
)


class _HasStatus(Protocol):
    @property
    def status_code(self) -> int: ...


R = TypeVar("R", bound=_HasStatus)


def http_method_label(method: str) -> str:
    """The method as a label: a standard one as is, anything else "other"."""
    return method if method in _HTTP_METHODS else "other"


def observe_http_request(method: str, route: str, status: int, seconds: float | None) -> None:
    """Count one answered HTTP request; observe its duration when it is known."""
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    if seconds is not None:
        HTTP_REQUEST_DURATION.labels(method, route).observe(seconds)


def time_spapi_call(operation: str, send: Callable[[], R]) -> R:
    """`send()` one SP-API request; count it by status ("error" when it raised), time it, count a 429."""
    started = time.perf_counter()
    try:
        response = send()
    except Exception:
        SPAPI_CALL_DURATION.labels(operation).observe(time.perf_counter() - started)
        SPAPI_CALLS.labels(operation, "error").inc()
        raise
    SPAPI_CALL_DURATION.labels(operation).observe(time.perf_counter() - started)
    status = response.status_code
    SPAPI_CALLS.labels(operation, str(status)).inc()
    if status == 429:
        SPAPI_THROTTLED.labels(operation).inc()
    return response


def observe_limiter_wait(operation: str, seconds: float) -> None:
    """Record the seconds an SP-API call waited for the rate limiter."""
    LIMITER_WAIT.labels(operation).observe(seconds)


def count_spapi_retry(operation: str, reason: str) -> None:
    """Count one retry of `operation` for `reason` (e.g. "429", "500", "timeout", "connection")."""
    SPAPI_RETRIES.labels(operation, reason).inc()


def count_cache_lookups(hits: int, misses: int) -> None:
    """Count ASINs found and not found in the result cache."""
    if hits:
        CACHE_LOOKUPS.labels("hit").inc(hits)
    if misses:
        CACHE_LOOKUPS.labels("miss").inc(misses)


def count_cache_error(operation: str) -> None:
    """Count one result-cache failure in `operation` (open, get_many, put_many)."""
    CACHE_ERRORS.labels(operation).inc()


def count_job_event(event: str) -> None:
    """Count one job created, done, failed or cancelled."""
    JOBS.labels(event).inc()


def count_job_items(succeeded: int, failed: int, cached: int) -> None:
    """Count job items answered (progress: rate(fba_job_items_total[1m]) is items per second)."""
    for result, count in (("succeeded", succeeded), ("failed", failed), ("cached", cached)):
        if count:
            JOB_ITEMS.labels(result).inc(count)


def multiprocess_dir() -> str | None:
    """The directory of multiprocess mode, or None when this process keeps its values in memory."""
    return os.environ.get(MULTIPROC_ENV) or None


def exposition() -> tuple[bytes, str]:
    """(body, content type) of a scrape in Prometheus text format: every worker's values (multiprocess mode) or this process's."""
    path = multiprocess_dir()
    if path is None:
        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
    # A fresh registry per scrape, as prometheus-client documents: the collector reads the files then.
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=path)
    return generate_latest(registry), CONTENT_TYPE_LATEST


def prepare_multiprocess_dir(data_dir: str, master_pid: int, configured: str | None, alive: Callable[[int], bool]) -> str:
    """Make the directory of multiprocess mode empty and return it; remove dead masters' directories.

    `configured` (PROMETHEUS_MULTIPROC_DIR as the master found it) is used as is, unless it is
    another master's `<DATA_DIR>/metrics-<pid>` (inherited through a re-exec); else this master's
    is `<DATA_DIR>/metrics-<master_pid>`. Files left from an earlier run are wiped: counters
    would otherwise start from the last run's totals.
    """
    data = Path(data_dir).resolve()
    if configured and not (_AUTO_DIR.fullmatch(Path(configured).name) and Path(configured).resolve().parent == data):
        path = Path(configured).resolve()
    else:
        path = data / f"metrics-{master_pid}"
    if data.is_dir():
        for stale in data.iterdir():
            match = _AUTO_DIR.fullmatch(stale.name)
            if match and stale.is_dir() and stale != path and not alive(int(match.group(1))):
                shutil.rmtree(stale, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)
    for old in path.glob("*.db"):
        old.unlink()
    return str(path)


def pid_alive(pid: int) -> bool:
    """True when a process with this id exists (signal 0 probes without signalling)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def start_multiprocess_mode(data_dir: str) -> str:
    """In gunicorn's master, before workers fork: set PROMETHEUS_MULTIPROC_DIR to an empty directory; return it.

    prometheus-client picks its value class when first imported, from this variable. With
    `python app.py` the master imported this module (through app.py) before gunicorn read its
    config, so the class is picked again here; no value exists yet (every metric has labels).
    """
    path = prepare_multiprocess_dir(data_dir, os.getpid(), os.environ.get(MULTIPROC_ENV), pid_alive)
    os.environ[MULTIPROC_ENV] = path
    values.ValueClass = values.get_value_class()
    return path


def worker_exited(pid: int) -> None:
    """In gunicorn's master when a worker exits: prometheus-client's bookkeeping for a dead process."""
    path = multiprocess_dir()
    if path is not None:
        mark_process_dead(pid, path)


def stop_multiprocess_mode(data_dir: str) -> None:
    """In gunicorn's master at exit: remove the directory `start_multiprocess_mode` made under DATA_DIR (a configured one stays)."""
    shutil.rmtree(Path(data_dir).resolve() / f"metrics-{os.getpid()}", ignore_errors=True)
