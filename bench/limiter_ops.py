"""The limiter's store operations per SP-API call, counted on the sqlite and the redis backend.

    python -m bench.limiter_ops                # both backends, both variants: a table on stdout
    python -m bench.limiter_ops --calls 60 --backends redis

The service is built in this process (`create_app`, CACHE_BACKEND=none so that the limiter is the
only user of its store) against the bundled emulator (a thread, at the same plan as the service),
and sends `--calls` single lookups one after another (`GET /asin/<asin>`, one getCatalogItem
each), after a few warm-up lookups that fetch the LWA token and take the plan SP-API announces.
Two variants: a burst that admits every measured call at once (50/s, burst 50), and the real
Catalog Items plan (2/s, burst 2), at which every call after the burst sleeps until its slot.
Slots given back by late callers (a re-reservation each) are counted and shown, not hidden.

What is counted, over the measured lookups only:

* sqlite: every statement on a connection to `ratelimit.sqlite` (sqlite3's trace callback); an
  operation is a transaction (`BEGIN` ... `COMMIT`/`ROLLBACK`) or a statement outside one.
* redis: round trips, one per request redis-py writes to the socket (a MULTI pipeline or one
  EVALSHA is one), and the server's `INFO commandstats` delta, which also counts the commands a
  Lua script runs inside Redis.

SP-API calls, 429s and retries come from the emulator's call log, never from the service's counts.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import sqlite3
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import redis
import redis.connection

from app import create_app
from bench.redis_server import RedisServer
from config import Settings
from emulator import EmulatorOptions, EmulatorServer

BACKENDS = ("sqlite", "redis")
LIMITER_FILE = "ratelimit.sqlite"
WARM_UP_CALLS = 3


@dataclass(frozen=True)
class Variant:
    """A usage plan for both the emulator and the service, and what it makes callers do."""

    name: str
    rate: float
    burst: int


VARIANTS = (Variant("admitted at once (50/s, burst 50)", 50.0, 50), Variant("waits for its slot (2/s, burst 2)", 2.0, 2))
# An admission this much after the caller asked slept for its slot (a store operation takes well under it).
WAITED = 0.005


@dataclass(frozen=True)
class OpsCount:
    """What `calls` SP-API calls cost the limiter's store."""

    backend: str
    variant: str
    calls: int  # SP-API requests in the emulator's log (retries included)
    throttled: int  # of which 429
    waited: int  # lookups whose admission waited for its slot
    given_back: int  # slots given back by late callers (each costs a reservation more)
    operations: int  # sqlite: transactions and lone statements; redis: round trips
    detail: str  # sqlite: statements; redis: the server's commandstats delta

    @property
    def per_call(self) -> float:
        """Store operations per SP-API call."""
        return self.operations / self.calls if self.calls else float("nan")


class SQLiteTrace:
    """Counts operations and statements on every connection opened to a file named LIMITER_FILE while installed."""

    def __init__(self) -> None:
        self.active = False
        self.operations = 0
        self.statements = 0
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def installed(self) -> Iterator[SQLiteTrace]:
        """sqlite3.connect traced for the `with` block (connections opened meanwhile stay traced)."""
        connect = sqlite3.connect

        def traced_connect(database: Any, *args: Any, **kwargs: Any) -> sqlite3.Connection:
            conn = connect(database, *args, **kwargs)
            if str(database).endswith(LIMITER_FILE):
                conn.set_trace_callback(self._tracer())
            return conn

        sqlite3.connect = traced_connect  # type: ignore[assignment]
        try:
            yield self
        finally:
            sqlite3.connect = connect  # type: ignore[assignment]

    def _tracer(self) -> Callable[[str], None]:
        in_transaction = [False]  # one connection's state: its statements come one at a time

        def trace(statement: str) -> None:
            word = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else ""
            with self._lock:
                if not self.active:
                    return
                self.statements += 1
                if word == "BEGIN":
                    in_transaction[0] = True
                    self.operations += 1
                elif word in ("COMMIT", "ROLLBACK", "END"):
                    in_transaction[0] = False
                elif not in_transaction[0]:
                    self.operations += 1

        return trace


class RedisTrips:
    """Counts the requests redis-py writes to Redis (round trips) while active."""

    def __init__(self) -> None:
        self.active = False
        self.trips = 0
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def installed(self) -> Iterator[RedisTrips]:
        """redis-py's send counted for the `with` block."""
        send = redis.connection.AbstractConnection.send_packed_command

        def counted_send(connection: Any, command: Any, check_health: bool = True) -> None:
            with self._lock:
                self.trips += self.active
            send(connection, command, check_health)

        redis.connection.AbstractConnection.send_packed_command = counted_send  # type: ignore[method-assign]
        try:
            yield self
        finally:
            redis.connection.AbstractConnection.send_packed_command = send  # type: ignore[method-assign]


class _GivenBack(logging.Handler):
    """Counts the limiter's "slot ... given back" lines."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        """Count the record if it says a slot was given back."""
        self.count += "given back" in record.getMessage()


def _commandstats(client: redis.Redis) -> Counter[str]:
    stats = client.info("commandstats")
    return Counter({name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items() if name != "cmdstat_info"})


def _lookups(variant: Variant, settings: Settings, emulator: EmulatorServer, calls: int, between: Callable[[bool], None]) -> OpsCount:
    """Build the app, warm it up, call `between(True)`, make `calls` lookups, call `between(False)`; count from the log."""
    emulator.configure(rate=variant.rate, burst=variant.burst)
    emulator.reset()
    app = create_app(settings)
    waited = [0]
    given_back = _GivenBack()
    # The limiter says at INFO when a late caller gives its slot back; the app logs at WARNING.
    limiter_log = logging.getLogger("utils.rate_limit")
    limiter_log.setLevel(logging.INFO)
    limiter_log.propagate = False  # counted here, not printed among the table
    limiter_log.addHandler(given_back)
    try:
        limiter = app.extensions["limiter"]
        admit = limiter.admit

        def admit_and_note(key: str, max_wait: float) -> Any:
            admission = admit(key, max_wait)
            waited[0] += admission.waited >= WAITED
            return admission

        limiter.admit = admit_and_note
        client = app.test_client()
        for n in range(WARM_UP_CALLS):
            client.get(f"/asin/B0W{n:07d}")
        waited[0] = given_back.count = 0
        started = time.time()
        between(True)
        for n in range(calls):
            response = client.get(f"/asin/B0M{n:07d}")
            if response.status_code != 200:
                raise RuntimeError(f"lookup {n} answered {response.status_code}: {response.get_data(as_text=True)[:300]}")
        between(False)
    finally:
        limiter_log.removeHandler(given_back)
        limiter_log.setLevel(logging.NOTSET)
        limiter_log.propagate = True
        app.extensions["jobs"].stop()
        app.extensions["asin_service"].close()
        app.extensions["limiter"].close()
    logged = [c for c in emulator.calls()["calls"] if c["time"] >= started and c["operation"] == "getCatalogItem"]
    throttled = sum(1 for c in logged if c["status"] == 429)
    return OpsCount(settings.rate_limit_backend, variant.name, len(logged), throttled, waited[0], given_back.count, 0, "")


def _settings(backend: str, variant: Variant, data_dir: str, emulator: EmulatorServer, redis_url: str) -> Settings:
    return Settings(
        sp_api_endpoint=emulator.url,
        rate_limit_backend=backend,
        redis_url=redis_url or Settings().redis_url,
        cache_backend="none",
        data_dir=data_dir,
        sp_api_rate=variant.rate,
        sp_api_burst=variant.burst,
        rate_limit_calls=100_000,
        log_level="WARNING",
    )


def measure_sqlite(variant: Variant, emulator: EmulatorServer, calls: int) -> OpsCount:
    """`calls` lookups on RATE_LIMIT_BACKEND=sqlite; operations from the trace of ratelimit.sqlite."""
    with tempfile.TemporaryDirectory(prefix="bench-limiter-ops-") as data_dir, SQLiteTrace().installed() as trace:

        def between(starting: bool) -> None:
            trace.active = starting

        result = _lookups(variant, _settings("sqlite", variant, data_dir, emulator, ""), emulator, calls, between)
    detail = f"{trace.statements} statements ({trace.statements / max(1, result.calls):.2f} per call)"
    return dataclasses.replace(result, operations=trace.operations, detail=detail)


def measure_redis(variant: Variant, emulator: EmulatorServer, calls: int, server: RedisServer) -> OpsCount:
    """`calls` lookups on RATE_LIMIT_BACKEND=redis; round trips counted at redis-py's send, commands by the server."""
    before: Counter[str] = Counter()
    after: Counter[str] = Counter()
    # One connection of our own for FLUSHALL and INFO, opened before counting starts (its HELLO is not in the delta).
    with contextlib.ExitStack() as stack:
        stats = stack.enter_context(contextlib.closing(redis.Redis.from_url(server.url)))
        stats.flushall()
        data_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-limiter-ops-"))
        trips = stack.enter_context(RedisTrips().installed())

        def between(starting: bool) -> None:
            # commandstats is read with the counter off, so our own INFO is not counted as the limiter's.
            if starting:
                before.update(_commandstats(stats))
            trips.active = starting
            if not starting:
                after.update(_commandstats(stats))

        result = _lookups(variant, _settings("redis", variant, data_dir, emulator, server.url), emulator, calls, between)
    commands = after - before
    detail = f"{sum(commands.values())} commands in Redis: " + ", ".join(f"{name} {count}" for name, count in sorted(commands.items()))
    return dataclasses.replace(result, operations=trips.trips, detail=detail)


def measure(backends: Sequence[str] = BACKENDS, calls: int = 20) -> list[OpsCount]:
    """Every variant on every backend in `backends`."""
    results: list[OpsCount] = []
    with contextlib.ExitStack() as stack:
        emulator = stack.enter_context(EmulatorServer(EmulatorOptions()))
        server = stack.enter_context(RedisServer()) if "redis" in backends else None
        for backend in backends:
            for variant in VARIANTS:
                if backend == "sqlite":
                    results.append(measure_sqlite(variant, emulator, calls))
                else:
                    assert server is not None
                    results.append(measure_redis(variant, emulator, calls, server))
    return results


def table(results: Sequence[OpsCount]) -> str:
    """The counts as a Markdown table."""
    lines = [
        "| backend | variant | SP-API calls | 429s | waited | slots given back | store operations | per SP-API call | detail |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        cells = (r.backend, r.variant, r.calls, r.throttled, r.waited, r.given_back, r.operations, f"{r.per_call:.2f}", r.detail)
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.limiter_ops", description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20, help="measured lookups per backend and variant (default 20)")
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated: sqlite, redis (default both)")
    args = parser.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown or args.calls < 1:
        parser.error(f"backends are {', '.join(BACKENDS)} and --calls at least 1")
    print(table(measure(backends, args.calls)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
