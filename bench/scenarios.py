"""The scenarios: each starts its own emulator and gunicorn (6: the service in this process) and returns a result dataclass."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.limiter_ops import OpsCount, measure
from bench.load import (
    COUNTRY,
    NO_PRICE_WITHOUT_BUY_BOX,
    AsinPool,
    LoadOutcome,
    WrkRun,
    chunked,
    fetch_batches,
    fetch_singles,
    run_wrk,
    wait_until_idle,
    write_path_script,
)
from bench.processes import ROOT, Emulator, ServerFailed, Service, peak_rss_kib
from bench.redis_server import RedisServer
from bench.report import DASH, Row, Target, ratio, seconds
from bench.upstream import REAL_PLANS, THROTTLED, UpstreamCalls

BATCH_SIZE = 100  # MAX_BATCH_SIZE: the most one POST /asin/batch may carry
# The service's own sliding window set equal to the plan (2/s = 120 a minute): the plan is the limit.
COMMON_SETTINGS = {"RATE_LIMIT_CALLS": "120", "RATE_LIMIT_WINDOW": "60", "LOG_LEVEL": "WARNING"}


@dataclass(frozen=True)
class BenchConfig:
    """Sizes and durations of the scenarios (`--quick` shrinks them)."""

    cold_batch_asins: int = 100
    per_asin_asins: int = 100
    per_asin_clients: int = 5
    shared_asins: int = 2000
    shared_clients: int = 4
    shared_workers: int = 4
    adaptation_asins: int = 1000
    adaptation_change_after: float = 10.0
    warm_asins: int = 200
    wrk_threads: int = 2
    wrk_connections: int = 16
    wrk_seconds: int = 10
    wrk_rounds: int = 3
    limiter_ops_calls: int = 30
    datasets_asins: int = 100  # scenario 7's batch (include=pricing,fees)
    datasets_per_asin_asins: int = 20  # scenario 7's per-ASIN run: getItemOffers is 0.5/s, so 20 take 40 s
    offers_asins: int = 100  # scenario 8's batch (include=offers): 5 getItemOffersBatch at 0.1/s, 40 s
    scan_rows: int = 1000  # scenario 9's supplier list (then re-scanned at costs x1.5 and x0.7)
    scan_naive_rows: int = 200  # scenario 9's naive comparison: eligibility is 1/s per row, 200 rows take over 3 minutes
    scan_memory_rows: int = 10_000  # scenario 9's memory run, on an emulator with raised plans (0: none)
    log_dir: Path | None = None  # --logs: keep each scenario's emulator call log and gunicorn output here

    @classmethod
    def quick(cls) -> BenchConfig:
        """A smoke run of every scenario in a few minutes (figures are indicative only)."""
        return cls(
            per_asin_asins=20,
            shared_asins=400,
            adaptation_asins=400,
            adaptation_change_after=4.0,
            warm_asins=100,
            wrk_seconds=3,
            wrk_rounds=1,
            limiter_ops_calls=10,
            datasets_per_asin_asins=6,
            offers_asins=40,
            scan_rows=100,
            scan_naive_rows=20,
            scan_memory_rows=1000,
        )


@contextmanager
def fresh_stack(
    settings: Mapping[str, str],
    *,
    name: str,
    log_dir: Path | None,
    app_spec: str = "app:create_app()",
    emulator_args: Sequence[str] = (),
) -> Iterator[tuple[Emulator, Service]]:
    """A new emulator (real plans unless `emulator_args` say otherwise, full buckets) and a new gunicorn pointed at it, empty DATA_DIR.

    With `log_dir`, the emulator's call log and gunicorn's output are saved there as NAME-*.
    """
    with tempfile.TemporaryDirectory(prefix="bench-data-") as data_dir, Emulator(emulator_args) as emulator:
        env = {**COMMON_SETTINGS, **settings, "SP_API_ENDPOINT": emulator.url, "DATA_DIR": data_dir}
        with Service(env, app_spec) as service:
            try:
                yield emulator, service
            finally:
                if log_dir is not None:
                    save_logs(log_dir, name, emulator, service)


def save_logs(log_dir: Path, name: str, emulator: Emulator, service: Service) -> None:
    """Write NAME-emulator-calls.json and NAME-gunicorn.log into `log_dir`."""
    log_dir.mkdir(parents=True, exist_ok=True)
    (log_dir / f"{name}-emulator-calls.json").write_text(json.dumps(emulator.calls(), indent=1))
    (log_dir / f"{name}-gunicorn.log").write_text(service.output(limit=None))


def settings_line(settings: Mapping[str, str]) -> str:
    """The scenario's own service settings, as `NAME=value` words (beside the common ones)."""
    return " ".join(f"`{name}={value}`" for name, value in {**COMMON_SETTINGS, **settings}.items())


# ------------------------------------------------------------------------- throughput runs


@dataclass
class Throughput:
    """One load run: what the clients got (and when) and what reached SP-API meanwhile."""

    label: str
    outcome: LoadOutcome
    upstream: UpstreamCalls

    @classmethod
    def measure(cls, label: str, emulator: Emulator, outcome: LoadOutcome) -> Throughput:
        """Pair a finished load run with the SP-API calls logged since it started."""
        return cls(label, outcome, UpstreamCalls.from_log(emulator.calls(), since=outcome.started_at))

    @property
    def floor(self) -> float:
        """The plans' floor for the calls the emulator admitted (each operation at its own plan, side by side)."""
        return self.upstream.floor(REAL_PLANS)

    @property
    def wall_over_floor(self) -> float | None:
        """wall / floor (1.0 = paced exactly at the plan); None when the floor is 0."""
        return self.outcome.wall / self.floor if self.floor > 0 else None

    @property
    def efficiency(self) -> float | None:
        """floor / wall."""
        return self.floor / self.outcome.wall if self.floor > 0 and self.outcome.wall > 0 else None

    @property
    def asins_per_second(self) -> float:
        """Successful ASINs per second of wall time."""
        return self.outcome.ok / self.outcome.wall if self.outcome.wall > 0 else 0.0

    def breakdown(self) -> str:
        """Where the wall time went: before the first SP-API call, between first and last, after the last."""
        times = self.upstream.times()
        if not times:
            return "no SP-API call"
        lead = times[0] - self.outcome.started_at
        span = times[-1] - times[0]
        tail = self.outcome.started_at + self.outcome.wall - times[-1]
        text = f"first SP-API call at +{lead:.2f} s, calls spread over {span:.2f} s, last answer {tail:.2f} s after the last call"
        if self.upstream.tokens:
            text += (
                "; LWA token fetches at " + ", ".join(f"+{t['time'] - self.outcome.started_at:.2f}" for t in self.upstream.tokens) + " s"
            )
        return text

    def row(self, scenario: str, notes: str = "") -> Row:
        """The run as a results-table row."""
        errors = self.outcome.error_summary()
        return Row(
            scenario=scenario,
            variant=self.label,
            ok=f"{self.outcome.ok}/{self.outcome.total}",
            calls=str(self.upstream.total),
            throttled=str(self.upstream.throttled),
            wall=seconds(self.outcome.wall),
            floor=seconds(self.floor),
            wall_over_floor=ratio(self.wall_over_floor),
            efficiency=ratio(self.efficiency),
            throughput=f"{self.asins_per_second:.1f} ASINs/s",
            notes="; ".join(part for part in (notes, f"errors: {errors}" if errors else "") if part),
        )

    def timeline(self) -> list[str]:
        """Each SP-API call (and token fetch) relative to the first request, as Markdown list items."""
        calls = sorted([*self.upstream.calls, *self.upstream.tokens], key=lambda call: call["time"])
        return [
            f"  - +{call['time'] - self.outcome.started_at:.3f} s {call['operation']} → {call['status']}"
            + (f" ({len(call['asins'])} ASINs)" if call["asins"] else "")
            for call in calls
        ] + [f"  - +{self.outcome.wall:.3f} s last answer received by the client"]


# ------------------------------------------------------------------- 1: cold batch vs per-ASIN


@dataclass
class BatchVsPerAsin:
    """A batch through the service against the same lookups one ASIN at a time (scenarios 1 and 7)."""

    batch: Throughput
    per_asin: Throughput
    settings: dict[str, str]

    @property
    def speedup(self) -> float:
        """Batch ASINs/s over per-ASIN ASINs/s."""
        per_asin = self.per_asin.asins_per_second
        return self.batch.asins_per_second / per_asin if per_asin > 0 else float("inf")


@dataclass
class ColdBatchResult(BatchVsPerAsin):
    """Scenario 1: one batch of 100 through the service vs one GET per ASIN from 5 threads."""

    def rows(self) -> list[Row]:
        """Two rows: the batch and the per-ASIN run."""
        return [
            self.batch.row("1", notes=self.batch.breakdown()),
            self.per_asin.row("1", notes=f"batch is {self.speedup:.1f}× faster per ASIN; {self.per_asin.breakdown()}"),
        ]

    def targets(self) -> list[Target]:
        """Within 10% of the floor, no 429, 20× the per-ASIN rate."""
        limit = 1.1 * self.batch.floor
        return [
            Target("1", "batch wall ≤ 1.1 × floor", f"{self.batch.outcome.wall:.2f} s vs {limit:.2f} s", self.batch.outcome.wall <= limit),
            Target(
                "1",
                "no 429 (batch and per-ASIN)",
                f"{self.batch.upstream.throttled} + {self.per_asin.upstream.throttled}",
                self.batch.upstream.throttled + self.per_asin.upstream.throttled == 0,
            ),
            Target("1", "batch ASINs/s ≥ 20 × per-ASIN", f"{self.speedup:.1f}×", self.speedup >= 20),
            Target(
                "1",
                "every ASIN answered",
                f"{self.batch.outcome.ok}/{self.batch.outcome.total} + {self.per_asin.outcome.ok}/{self.per_asin.outcome.total}",
                self.batch.outcome.ok == self.batch.outcome.total and self.per_asin.outcome.ok == self.per_asin.outcome.total,
            ),
        ]

    def details(self) -> list[str]:
        """Settings and the batch's call timeline."""
        return [
            "### 1. Cold batch vs per-ASIN",
            "",
            f"One gunicorn ({settings_line(self.settings)}); first one `POST /asin/batch/US` of "
            f"{self.batch.outcome.total} ASINs, then {self.per_asin.outcome.total} other ASINs as one "
            f"`GET /asin/<asin>?country=US` each ({self.per_asin.label}), against the same service (same limiter).",
            "",
            "Batch timeline (emulator log, relative to the client sending the batch):",
            "",
            *self.batch.timeline(),
            "",
            f"Per-ASIN: {self.per_asin.breakdown()}.",
            "",
        ]


def run_cold_batch(config: BenchConfig, pool: AsinPool) -> ColdBatchResult:
    """Scenario 1."""
    settings = {"WEB_CONCURRENCY": "1"}
    with fresh_stack(settings, name="1-cold-batch", log_dir=config.log_dir) as (emulator, service):
        batch = fetch_batches(service.url, [pool.take(config.cold_batch_asins)], clients=1)
        batch_run = Throughput.measure(f"batch of {config.cold_batch_asins}, 1 worker", emulator, batch)
        singles = fetch_singles(service.url, pool.take(config.per_asin_asins), clients=config.per_asin_clients)
        single_run = Throughput.measure(f"per-ASIN GET, {config.per_asin_clients} client threads", emulator, singles)
    return ColdBatchResult(batch_run, single_run, settings)


# -------------------------------------------------------- 2 and 5: shared quota, 4 workers


@dataclass
class SharedQuotaResult:
    """Scenario 2: 2,000 ASINs, 20 batches from 4 clients, 4 gunicorn workers, per limiter backend."""

    runs: dict[str, Throughput] = field(default_factory=dict)  # RATE_LIMIT_BACKEND -> run
    settings: dict[str, dict[str, str]] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)  # RATE_LIMIT_BACKEND -> why it did not run

    def rows(self) -> list[Row]:
        """One row per backend that ran, one per backend that could not."""
        rows = [run.row("2", notes=f"{run.upstream.token_fetches} LWA token fetches") for run in self.runs.values()]
        rows += [
            Row("2", f"RATE_LIMIT_BACKEND={backend}", notes=f"FAILED: {why.splitlines()[0]}") for backend, why in self.failures.items()
        ]
        return rows

    def targets(self) -> list[Target]:
        """No 429, efficiency ≥ 0.9, every ASIN answered, per backend."""
        targets: list[Target] = []
        for backend, run in self.runs.items():
            efficiency = run.efficiency or 0.0
            ok, total = run.outcome.ok, run.outcome.total
            targets += [
                Target("2", f"{backend}: no 429", str(run.upstream.throttled), run.upstream.throttled == 0),
                Target("2", f"{backend}: floor/wall ≥ 0.9", f"{efficiency:.2f}", efficiency >= 0.9),
                Target("2", f"{backend}: every ASIN answered", f"{ok}/{total}", ok == total),
            ]
        targets += [Target("2", f"{backend}: runs", "did not run", False) for backend in self.failures]
        return targets

    def details(self) -> list[str]:
        """Settings per backend and where the time went."""
        lines = ["### 2. Shared quota across 4 workers", ""]
        for backend, run in self.runs.items():
            lines.append(
                f"* {backend}: {settings_line(self.settings[backend])}; SP-API statuses {run.upstream.statuses()}; {run.breakdown()}."
            )
        lines += [f"* {backend}: did not run:\n\n```\n{why}\n```" for backend, why in self.failures.items()]
        return [*lines, ""]


@dataclass
class MemoryResult:
    """Scenario 5: peak RSS (VmHWM) of each gunicorn worker after the 2,000-ASIN sqlite run."""

    peak_kib: dict[int, int]  # worker pid -> VmHWM in KiB

    def rows(self) -> list[Row]:
        """One row: the largest worker, and every worker in the notes."""
        per_worker = ", ".join(f"{kib / 1024:.1f}" for kib in self.peak_kib.values())
        largest = max(self.peak_kib.values(), default=0) / 1024
        variant = f"peak RSS of the {len(self.peak_kib)} workers after scenario 2 (sqlite)"
        return [Row("5", variant, notes=f"max {largest:.1f} MiB; VmHWM per worker (MiB): {per_worker}")]

    def targets(self) -> list[Target]:
        """No target: reported for tracking."""
        return []

    def details(self) -> list[str]:
        """Worker pids and their VmHWM."""
        listed = ", ".join(f"pid {pid}: {kib} KiB" for pid, kib in self.peak_kib.items())
        return ["### 5. Worker memory", "", f"VmHWM from /proc/<pid>/status of each child of the gunicorn master: {listed}.", ""]


def _redis_server() -> RedisServer:
    """A RedisServer from bench/redis_server.py (one implementation for the bench and the tests)."""
    return RedisServer()


def _shared_quota_run(config: BenchConfig, pool: AsinPool, settings: dict[str, str]) -> tuple[Throughput, MemoryResult]:
    backend = settings["RATE_LIMIT_BACKEND"]
    with contextlib.ExitStack() as stack:
        if backend == "redis":
            redis = stack.enter_context(_redis_server())
            settings = {**settings, "REDIS_URL": redis.url}
        emulator, service = stack.enter_context(fresh_stack(settings, name=f"2-shared-{backend}", log_dir=config.log_dir))
        batches = chunked(pool.take(config.shared_asins), BATCH_SIZE)
        outcome = fetch_batches(service.url, batches, clients=config.shared_clients)
        label = (
            f"{config.shared_asins} ASINs, {config.shared_clients} clients, {config.shared_workers} workers, RATE_LIMIT_BACKEND={backend}"
        )
        run = Throughput.measure(label, emulator, outcome)
        memory = MemoryResult({pid: peak_rss_kib(pid) for pid in service.worker_pids()})
    return run, memory


def run_shared_quota(config: BenchConfig, pool: AsinPool, backends: list[str]) -> tuple[SharedQuotaResult, MemoryResult | None]:
    """Scenario 2 for each backend; scenario 5 (worker memory) read at the end of the sqlite run."""
    result = SharedQuotaResult()
    memory: MemoryResult | None = None
    for backend in backends:
        result.settings[backend] = {"WEB_CONCURRENCY": str(config.shared_workers), "RATE_LIMIT_BACKEND": backend}
        try:
            run, measured = _shared_quota_run(config, pool, result.settings[backend])
        except RuntimeError as exc:  # redis-server missing or not answering
            result.failures[backend] = f"cannot start Redis: {exc}"
            continue
        result.runs[backend] = run
        if backend == "sqlite":
            memory = measured
    return result, memory


# ----------------------------------------------------------------------------- 3: adaptation


@dataclass
class AdaptationResult:
    """Scenario 3: the plan is halved mid-run (rate 1, burst 1) while the header still announces 2.0."""

    run: Throughput
    settings: dict[str, str]
    changed_at: float | None  # time.time() of the change; None if the run ended first

    @property
    def change_offset(self) -> float | None:
        """Seconds into the run when the plan changed."""
        return None if self.changed_at is None else self.changed_at - self.run.outcome.started_at

    def _throttled_times(self, *, after_change: bool) -> list[float]:
        changed_at = self.changed_at if self.changed_at is not None else float("inf")
        return [t for t in self.run.upstream.times(status=THROTTLED) if (t >= changed_at) == after_change]

    @property
    def last_429_after_change(self) -> float | None:
        """Seconds from the change to the last 429 after it (0.0 when none came); None if no change happened."""
        if self.changed_at is None:
            return None
        after = self._throttled_times(after_change=True)
        return max(after) - self.changed_at if after else 0.0

    def rows(self) -> list[Row]:
        """One row; the floor does not apply (the plan changes mid-run)."""
        return [dataclasses.replace(self.run.row("3", notes=self._notes()), floor=DASH, wall_over_floor=DASH, efficiency=DASH)]

    def _notes(self) -> str:
        if self.changed_at is None:
            return "the run ended before the plan change"
        before, after = self._throttled_times(after_change=False), self._throttled_times(after_change=True)
        last = f" (the last {self.last_429_after_change:.1f} s after it)" if after else ""
        return f"plan halved at +{self.change_offset:.1f} s; 429s after the change: {len(after)}{last}, before it: {len(before)}"

    def targets(self) -> list[Target]:
        """Every ASIN answered; 429s stop within 5 s of the change."""
        lag = self.last_429_after_change
        ok, total = self.run.outcome.ok, self.run.outcome.total
        return [
            Target("3", "every ASIN answered", f"{ok}/{total}", ok == total),
            Target(
                "3",
                "last 429 ≤ 5 s after the change",
                "no change made" if lag is None else f"{lag:.1f} s",
                None if lag is None else lag <= 5.0,
            ),
        ]

    def details(self) -> list[str]:
        """Settings and the 429 times."""
        throttled = ", ".join(f"+{t - self.run.outcome.started_at:.1f}" for t in self.run.upstream.times(status=THROTTLED))
        return [
            "### 3. Adaptation to a halved plan",
            "",
            f"{settings_line(self.settings)}. About {self.change_offset or 0:.0f} s in, the emulator got "
            '`{"rate": 1.0, "burst": 1, "announced_rate": 2.0}` (the service is not told; `x-amzn-RateLimit-Limit` keeps saying 2.0). '
            f"SP-API statuses: {self.run.upstream.statuses()}. 429s at (s into the run): {throttled or 'none'}. {self.run.breakdown()}.",
            "",
        ]


def run_adaptation(config: BenchConfig, pool: AsinPool) -> AdaptationResult:
    """Scenario 3."""
    settings = {"WEB_CONCURRENCY": str(config.shared_workers), "RATE_LIMIT_BACKEND": "sqlite"}
    changed: list[float] = []
    with fresh_stack(settings, name="3-adaptation", log_dir=config.log_dir) as (emulator, service):

        def halve_plan() -> None:
            at = time.time()
            emulator.configure(rate=1.0, burst=1, announced_rate=2.0)
            changed.append(at)  # only once the emulator took it

        timer = threading.Timer(config.adaptation_change_after, halve_plan)
        timer.start()
        try:
            batches = chunked(pool.take(config.adaptation_asins), BATCH_SIZE)
            outcome = fetch_batches(service.url, batches, clients=config.shared_clients)
        finally:
            timer.cancel()
            timer.join()
        label = f"{config.adaptation_asins} ASINs, {config.shared_workers} workers, plan halved mid-run, sqlite"
        run = Throughput.measure(label, emulator, outcome)
    return AdaptationResult(run, settings, changed[0] if changed else None)


# ------------------------------------------------------------------------------ 4: warm cache


@dataclass
class WarmCacheResult:
    """Scenario 4: wrk on cached GET /asin/<asin> beside a do-nothing endpoint, production defaults."""

    noop_runs: list[WrkRun]
    asin_runs: list[WrkRun]
    cached_field: Any  # the sample response's "cached" value; None when the field is missing
    has_cached_field: bool
    calls_during_load: UpstreamCalls
    warm: Throughput
    settings: dict[str, str]
    busy_after: int = 0  # asin runs after which the server was still busy 45 s later (threads stuck)

    @staticmethod
    def median(runs: list[WrkRun], attribute: str) -> float:
        """Median of one WrkRun figure over the runs."""
        return statistics.median(getattr(run, attribute) for run in runs)

    @property
    def ratio(self) -> float:
        """Median req/s of the ASIN endpoint over the noop endpoint's."""
        noop = self.median(self.noop_runs, "requests_per_s")
        return self.median(self.asin_runs, "requests_per_s") / noop if noop > 0 else 0.0

    def _row(self, variant: str, runs: list[WrkRun], notes: str) -> Row:
        problems = sum(r.non_2xx for r in runs), sum(r.socket_errors for r in runs)
        trouble = f"; {problems[0]} non-2xx, {problems[1]} socket errors/timeouts" if any(problems) else ""
        return Row(
            "4",
            variant,
            throughput=f"{self.median(runs, 'requests_per_s'):,.0f} req/s",
            notes=f"p50 {self.median(runs, 'p50_ms'):.1f} ms, p99 {self.median(runs, 'p99_ms'):.1f} ms{trouble}{notes}",
        )

    def rows(self) -> list[Row]:
        """One row per endpoint; SP-API calls during the load on the ASIN row."""
        cached = "" if self.has_cached_field else '; WARNING: response has no "cached" field'
        if self.has_cached_field and self.cached_field is not True:
            cached = f'; WARNING: sample response says "cached": {self.cached_field!r}'
        asin_row = self._row("GET /asin/<cached ASIN> (wrk)", self.asin_runs, f"; asin/noop = {self.ratio:.2f}{cached}")
        asin_row = dataclasses.replace(asin_row, calls=str(self.calls_during_load.total), throttled=str(self.calls_during_load.throttled))
        return [self._row("GET /_bench/noop (wrk)", self.noop_runs, ""), asin_row]

    def targets(self) -> list[Target]:
        """asin/noop ≥ 0.6 with clean runs; the sample says cached; no SP-API call under load."""
        clean = all(run.clean for run in self.asin_runs)
        return [
            Target(
                "4",
                "asin/noop req/s ≥ 0.6 (all 2xx)",
                f"{self.ratio:.2f}" + ("" if clean else " (with errors)"),
                self.ratio >= 0.6 and clean,
            ),
            Target(
                "4",
                'sample response says "cached": true',
                repr(self.cached_field) if self.has_cached_field else "no such field",
                (self.cached_field is True) if self.has_cached_field else None,
            ),
            Target("4", "no SP-API call while serving cached ASINs", str(self.calls_during_load.total), self.calls_during_load.total == 0),
        ]

    def details(self) -> list[str]:
        """Settings, warm-up and every wrk run."""
        warm = self.warm
        lines = [
            "### 4. Warm cache",
            "",
            f"{settings_line(self.settings)}, everything else at its default; app `bench.app:create_bench_app()`. "
            f"Warm-up: {warm.outcome.total} ASINs in batches of 100 ({warm.outcome.ok} ok, "
            f"{warm.upstream.total} SP-API calls, {warm.outcome.wall:.2f} s). wrk runs, interleaved noop / asin. "
            "After each asin run the bench waits until as many simultaneous noop requests as wrk has connections "
            "answer quickly, so no run starts against a server still busy with the last.",
        ]
        if self.busy_after:
            lines[-1] += (
                f" After {self.busy_after} asin run(s) the server was still busy 45 s later (threads held by requests wrk gave up on)."
            )
        lines.append("")
        for index, (noop, asin) in enumerate(zip(self.noop_runs, self.asin_runs, strict=True), start=1):
            for name, run in (("noop", noop), ("asin", asin)):
                lines.append(
                    f"* round {index} {name}: {run.requests_per_s:,.0f} req/s, p50 {run.p50_ms:.2f} ms, p99 {run.p99_ms:.2f} ms, "
                    f"{run.requests} requests, {run.non_2xx} non-2xx, {run.socket_errors} socket errors"
                )
        return [*lines, ""]


def _sample_cached(url: str, asin: str) -> tuple[bool, Any]:
    body = httpx.get(f"{url}/asin/{asin}", params={"country": COUNTRY}, timeout=60.0).json()
    return "cached" in body, body.get("cached")


def run_warm_cache(config: BenchConfig, pool: AsinPool, workdir: Path) -> WarmCacheResult:
    """Scenario 4."""
    settings = {"CACHE_BACKEND": "sqlite"}
    asins = pool.take(config.warm_asins)
    with fresh_stack(settings, name="4-warm-cache", log_dir=config.log_dir, app_spec="bench.app:create_bench_app()") as (emulator, service):
        warm_outcome = fetch_batches(service.url, chunked(asins, BATCH_SIZE), clients=1)
        warm = Throughput.measure("warm-up", emulator, warm_outcome)
        has_field, cached = _sample_cached(service.url, asins[0])
        script = write_path_script([f"/asin/{asin}?country={COUNTRY}" for asin in asins], workdir / "cached_asins.lua")
        load_started = time.time()
        noop_runs, asin_runs, busy_after = _interleaved_wrk(config, service.url, script)
        during = UpstreamCalls.from_log(emulator.calls(), since=load_started)
    return WarmCacheResult(noop_runs, asin_runs, cached, has_field, during, warm, settings, busy_after)


def _interleaved_wrk(config: BenchConfig, url: str, script: Path) -> tuple[list[WrkRun], list[WrkRun], int]:
    """wrk on noop, then on the cached ASINs, `wrk_rounds` times; also how many asin runs left the server busy."""
    noop_runs: list[WrkRun] = []
    asin_runs: list[WrkRun] = []
    busy_after = 0
    for _ in range(config.wrk_rounds):
        noop_runs.append(
            run_wrk(f"{url}/_bench/noop", threads=config.wrk_threads, connections=config.wrk_connections, seconds=config.wrk_seconds)
        )
        asin_runs.append(
            run_wrk(url, threads=config.wrk_threads, connections=config.wrk_connections, seconds=config.wrk_seconds, script=script)
        )
        busy_after += not wait_until_idle(f"{url}/_bench/noop", concurrency=config.wrk_connections)
    return noop_runs, asin_runs, busy_after


# ------------------------------------------------------- 6: limiter store operations per call


@dataclass
class LimiterOpsResult:
    """Scenario 6: the limiter's store operations per SP-API call, per backend, admitted at once and after waiting."""

    counts: list[OpsCount]

    def rows(self) -> list[Row]:
        """One row per backend and variant."""
        return [
            Row(
                "6",
                f"limiter store operations per SP-API call, RATE_LIMIT_BACKEND={c.backend}, {c.variant}",
                calls=str(c.calls),
                throttled=str(c.throttled),
                notes=f"{c.per_call:.2f} per call ({c.operations} operations; {c.waited} calls waited, {c.given_back} slots given back); "
                f"{c.detail}",
            )
            for c in self.counts
        ]

    def targets(self) -> list[Target]:
        """One store operation per SP-API call on each backend, whether or not the call waits; no 429."""
        targets = []
        for backend in dict.fromkeys(c.backend for c in self.counts):  # in the order measured: sqlite, redis
            mine = [c for c in self.counts if c.backend == backend]
            measured = ", ".join(f"{c.per_call:.2f} ({c.variant.split(' (')[0]})" for c in mine)
            targets.append(Target("6", f"{backend}: 1 store operation per SP-API call", measured, all(c.per_call <= 1.0 for c in mine)))
            targets.append(Target("6", f"{backend}: no 429", str(sum(c.throttled for c in mine)), all(c.throttled == 0 for c in mine)))
        return targets

    def details(self) -> list[str]:
        """How the operations were counted."""
        return [
            "### 6. Limiter store operations per SP-API call",
            "",
            "`python -m bench.limiter_ops` (bench/limiter_ops.py): the service built in the bench's process against the emulator "
            "(a thread, at the variant's plan), `CACHE_BACKEND=none`, single lookups one after another after 3 warm-up lookups. "
            "sqlite: statements on `ratelimit.sqlite` from sqlite3's trace callback, a transaction or a statement outside one "
            "counting as one operation; redis: round trips (requests redis-py writes to the socket), and the server's "
            "`INFO commandstats` delta, which also counts what the Lua script runs inside Redis. "
            "On commit 04de88d (before utils/rate_limit/) the same script measured sqlite 3.00 (at once) and 4.00 (waiting), "
            "redis 4.00 and 6.03.",
            "",
        ]


def run_limiter_ops(config: BenchConfig) -> LimiterOpsResult:
    """Scenario 6."""
    return LimiterOpsResult(measure(calls=config.limiter_ops_calls))


# ------------------------------------------------------------- 7 and 8: datasets on demand

# Scenarios 7 and 8: the batch's wall may be this much over the floor of its operations' plans.
DATASETS_WALL_OVER_FLOOR = 1.15
# Scenario 7: the batch's ASINs/s over the per-ASIN way's.
DATASETS_SPEEDUP = 8.0
PRICING_OPERATION = "getCompetitivePricing"
FEES_OPERATIONS = ("getMyFeesEstimates", "getMyFeesEstimateForASIN")


def _dataset_target(scenario: str, goal: str, outcome: LoadOutcome) -> Target:
    """Every entry answered, with every dataset asked for and no dataset error (Fees' NO_PRICE without a Buy Box apart)."""
    measured = f"{outcome.ok}/{outcome.total} complete; {outcome.dataset_summary()}; {outcome.dataset_errors()} dataset errors"
    errors = outcome.error_summary()
    return Target(
        scenario,
        goal,
        measured + (f" ({errors})" if errors else ""),
        outcome.ok == outcome.total and outcome.dataset_errors() == 0,
    )


def _wall_target(scenario: str, run: Throughput) -> Target:
    limit = DATASETS_WALL_OVER_FLOOR * run.floor
    floors = run.upstream.floors()
    slowest = max(floors, key=floors.__getitem__) if floors else "no call"
    return Target(
        scenario,
        f"batch wall ≤ {DATASETS_WALL_OVER_FLOOR} × floor",
        f"{run.outcome.wall:.2f} s vs {limit:.2f} s (floor {run.floor:.2f} s, {slowest}; wall/floor {ratio(run.wall_over_floor)})",
        run.floor > 0 and run.outcome.wall <= limit,
    )


def _datasets_notes(run: Throughput) -> str:
    return f"calls: {run.upstream.per_operation()}; datasets: {run.outcome.dataset_summary()}"


def _window_line(settings: Mapping[str, str], **runs: Throughput) -> str:
    """The most SP-API calls in any RATE_LIMIT_WINDOW, per run: the service's window must not be what paces them."""
    merged = {**COMMON_SETTINGS, **settings}
    window = float(merged["RATE_LIMIT_WINDOW"])
    counts = ", ".join(f"{name.replace('_', '-')} {run.upstream.most_in_window(window)}" for name, run in runs.items())
    return (
        f"Most SP-API calls (all operations) in any {window:g} s: {counts}, against the service's window of "
        f"RATE_LIMIT_CALLS={merged['RATE_LIMIT_CALLS']} (it admits a call while fewer than that many lie within "
        f"{window:g} s either side), so the plans, not the window, pace them."
    )


@dataclass
class DatasetsResult(BatchVsPerAsin):
    """Scenario 7: one batch of 100 with include=pricing,fees vs getItemOffers + getMyFeesEstimateForASIN per ASIN."""

    clients: int

    def rows(self) -> list[Row]:
        """Two rows: the batch and the per-ASIN run."""
        return [
            self.batch.row("7", notes=_datasets_notes(self.batch)),
            self.per_asin.row(
                "7",
                notes=f"batch is {self.speedup:.1f}× faster per ASIN; {self.per_asin.outcome.total} ASINs only "
                f"(getItemOffers is 0.5/s, burst 1); {_datasets_notes(self.per_asin)}",
            ),
        ]

    def targets(self) -> list[Target]:
        """Within 15% of the floor, no 429, 8× the per-ASIN rate, every dataset there."""
        return [
            _wall_target("7", self.batch),
            Target(
                "7",
                "no 429 (batch and per-ASIN)",
                f"{self.batch.upstream.throttled} + {self.per_asin.upstream.throttled}",
                self.batch.upstream.throttled + self.per_asin.upstream.throttled == 0,
            ),
            Target(
                "7",
                f"batch ASINs/s ≥ {DATASETS_SPEEDUP:g} × per-ASIN",
                f"{self.speedup:.1f}× ({self.batch.asins_per_second:.2f} vs {self.per_asin.asins_per_second:.2f} ASINs/s)",
                self.speedup >= DATASETS_SPEEDUP,
            ),
            _dataset_target(
                "7", "batch: every entry has Pricing and Fees without error (Fees NO_PRICE only without a Buy Box)", self.batch.outcome
            ),
            _dataset_target("7", "per-ASIN: every ASIN has Offers and Fees without error (same rule)", self.per_asin.outcome),
        ]

    def details(self) -> list[str]:
        """Settings, the per-ASIN method, the batch's call timeline and when each chunk's fees went."""
        return [
            f"### 7. {self.batch.outcome.total} ASINs with include=pricing,fees vs offers + fees per ASIN",
            "",
            f"One gunicorn ({settings_line(self.settings)}); first one `POST /asin/batch/US` of {self.batch.outcome.total} ASINs with "
            '`"include": ["pricing", "fees"]`, then the per-ASIN way for '
            f"{self.per_asin.outcome.total} other ASINs, against the same emulator and the same limiter. Floor: each operation's "
            "`max(0, calls − burst) / rate` at its plan (emulator/plans.py, the same as services/spapi.py OPERATION_PLANS: "
            "getCompetitivePricing 0.5/s burst 1, getMyFeesEstimates 0.5/s burst 1, getItemOffers 0.5/s burst 1, "
            "getMyFeesEstimateForASIN 1/s burst 2, searchCatalogItems 2/s burst 2), the operations side by side, so the slowest "
            "decides. An entry counts in ok / total when it says success and carries every dataset asked for without an error; "
            f'a Fees dataset failing NO_PRICE counts as answered ("{NO_PRICE_WITHOUT_BUY_BOX}") only when the entry\'s '
            "Pricing (or Offers) has no Buy Box price: the emulator, like Amazon, has listings without one "
            "(no offers, or the Buy Box suppressed), and the service then has no price to estimate fees at. "
            f"Batch: {self.batch.outcome.dataset_summary()}. Per-ASIN: {self.per_asin.outcome.dataset_summary()}. "
            + _window_line(self.settings, batch=self.batch, per_ASIN=self.per_asin),
            "",
            "Per-ASIN way: `python -m bench.per_asin_datasets` (bench/per_asin_datasets.py), a process of its own started with "
            "the gunicorn's exact environment, which builds the limiter and SP-API client with app.py's `build_limiter` and "
            "`build_spapi` (so the same plans, margin and lanes, and with RATE_LIMIT_BACKEND=sqlite in the same DATA_DIR the "
            f"service's own limiter), and looks the ASINs up from {self.clients} threads: "
            "`services.pricing.item_offers(spapi, marketplace, [asin])` (one ASIN: getItemOffers), then, when the offers have "
            "a Buy Box, `services.fees.fees_estimates(spapi, marketplace, [FeeRequest(asin, buy_box)])` (one request: "
            "getMyFeesEstimateForASIN); no Buy Box, no fees call (Fees NO_PRICE, as the service answers). Chosen over "
            "`GET /asin/<asin>?include=offers,fees&price=<buy box>` because that needs the Buy Box before the request "
            "(a call more per ASIN, outside the measure) and adds a getCatalogItem per ASIN the naive way does not make; "
            f"the service's catalog lookups in the batch come on top of its datasets, so the comparison favours the per-ASIN "
            f"way. Its wall is the script's own, first lookup to last answer (its start-up and imports excluded); "
            f"{self.per_asin.outcome.total} ASINs, not {self.batch.outcome.total}, since getItemOffers' 0.5/s makes each "
            "ASIN cost 2 s (as scenario 1 times its per-ASIN GETs on their own ASINs); ASINs per second compare the two.",
            "",
            "Batch timeline (emulator log, relative to the client sending the batch):",
            "",
            *self.batch.timeline(),
            "",
            f"Batch: {self.batch.breakdown()}. {_fees_after_pricing(self.batch)}",
            "",
            f"Per-ASIN: calls {self.per_asin.upstream.per_operation()}; {self.per_asin.breakdown()}.",
            "",
        ]


def _fees_after_pricing(run: Throughput) -> str:
    """When each chunk's fees reached SP-API after that chunk's pricing (the k-th of each, in order)."""
    admitted = [c for c in run.upstream.calls if c["status"] != THROTTLED]
    pricing = sorted(c["time"] for c in admitted if c["operation"] == PRICING_OPERATION)
    fees = sorted(c["time"] for c in admitted if c["operation"] in FEES_OPERATIONS)
    if not pricing or not fees:
        return "No pricing or no fees call to compare."
    lags = ", ".join(f"{f - p:+.2f}" for p, f in zip(pricing, fees, strict=False))
    first_fees, last_pricing = fees[0] - run.outcome.started_at, pricing[-1] - run.outcome.started_at
    waited = "after" if fees[0] > pricing[-1] else "before"
    return (
        f"Fees call k reached SP-API this long after pricing call k (s): {lags}; the first fees call came at +{first_fees:.2f} s, "
        f"{waited} the last pricing call (+{last_pricing:.2f} s), and the last fees call "
        f"{fees[-1] - pricing[-1]:.2f} s after the last pricing call."
    )


def run_per_asin_datasets(service: Service, asins: list[str], clients: int) -> LoadOutcome:
    """bench/per_asin_datasets.py for `asins` with the service's environment; its entries counted like a batch's."""
    with tempfile.TemporaryDirectory(prefix="bench-per-asin-") as scratch:
        answer = Path(scratch) / "answer.json"
        command = [sys.executable, "-m", "bench.per_asin_datasets", "--output", str(answer), "--clients", str(clients), *asins]
        done = subprocess.run(command, cwd=ROOT, env=service.environment(), capture_output=True, text=True, timeout=600, check=False)
        if done.returncode != 0 or not answer.exists():
            raise ServerFailed(f"bench.per_asin_datasets exited with status {done.returncode}", done.stdout + done.stderr)
        found = json.loads(answer.read_text())
    outcome = LoadOutcome(requested=list(asins), datasets=("Offers", "Fees"), started_at=found["started_at"], wall=found["wall"])
    by_asin = {entry.get("asin"): entry for entry in found["entries"]}
    for asin in asins:
        outcome.record(asin, by_asin.get(asin), "MISSING")
    return outcome


def run_datasets(config: BenchConfig, pool: AsinPool) -> DatasetsResult:
    """Scenario 7."""
    settings = {"WEB_CONCURRENCY": "1", "RATE_LIMIT_BACKEND": "sqlite"}
    with fresh_stack(settings, name="7-pricing-fees", log_dir=config.log_dir) as (emulator, service):
        batch = fetch_batches(service.url, [pool.take(config.datasets_asins)], clients=1, include=("pricing", "fees"))
        batch_run = Throughput.measure(f"batch of {config.datasets_asins}, include=pricing,fees, 1 worker", emulator, batch)
        singles = run_per_asin_datasets(service, pool.take(config.datasets_per_asin_asins), clients=config.per_asin_clients)
        single_run = Throughput.measure(
            f"per-ASIN getItemOffers + getMyFeesEstimateForASIN, {config.per_asin_clients} threads", emulator, singles
        )
    return DatasetsResult(batch_run, single_run, settings, config.per_asin_clients)


@dataclass
class OffersResult:
    """Scenario 8: one batch of 100 with include=offers (getItemOffersBatch, 0.1/s)."""

    batch: Throughput
    settings: dict[str, str]

    def rows(self) -> list[Row]:
        """One row."""
        return [self.batch.row("8", notes=_datasets_notes(self.batch))]

    def targets(self) -> list[Target]:
        """Within 15% of the floor, no 429, every ASIN with its offers."""
        return [
            _wall_target("8", self.batch),
            Target("8", "no 429", str(self.batch.upstream.throttled), self.batch.upstream.throttled == 0),
            _dataset_target("8", "every ASIN answered with an Offers dataset without error", self.batch.outcome),
        ]

    def details(self) -> list[str]:
        """Settings and the call timeline."""
        return [
            f"### 8. {self.batch.outcome.total} ASINs with include=offers",
            "",
            f"One gunicorn ({settings_line(self.settings)}); one `POST /asin/batch/US` of {self.batch.outcome.total} ASINs with "
            '`"include": ["offers"]`. Floor as in scenario 7 (getItemOffersBatch 0.1/s burst 1, searchCatalogItems 2/s burst 2). '
            f"Datasets: {self.batch.outcome.dataset_summary()}. {_window_line(self.settings, batch=self.batch)}",
            "",
            "Timeline (emulator log, relative to the client sending the batch):",
            "",
            *self.batch.timeline(),
            "",
            f"{self.batch.breakdown()}.",
            "",
        ]


def run_offers(config: BenchConfig, pool: AsinPool) -> OffersResult:
    """Scenario 8."""
    settings = {"WEB_CONCURRENCY": "1", "RATE_LIMIT_BACKEND": "sqlite"}
    with fresh_stack(settings, name="8-offers", log_dir=config.log_dir) as (emulator, service):
        batch = fetch_batches(service.url, [pool.take(config.offers_asins)], clients=1, include=("offers",))
        run = Throughput.measure(f"batch of {config.offers_asins}, include=offers, 1 worker", emulator, batch)
    return OffersResult(run, settings)
