"""Soak: 50 clients hammer the service under gunicorn for 60 s; no 5xx, nothing lost, memory flat, the SP-API plan never exceeded.

Run it:

    make soak                                   # the fault suite, then the 60 s soak; writes tests/reliability/RESULTS.md
    .venv/bin/python -m bench.soak              # the same, without make's install step
    .venv/bin/python -m bench.soak --seconds 10 --no-suite --output -   # a quick look, printed only
    .venv/bin/python -m bench.soak --no-suite --output - --logs /tmp/soak   # keep the emulator log and gunicorn output

1. The fault-injection suite: `python -m pytest tests/reliability` with RELIABILITY_FIGURES set,
   so tests/reliability/conftest.py writes each case's figures (requests sent, entries asked and
   lost, 5xx seen, SP-API calls, wall time).
2. The soak: the bundled SP-API emulator as a child process (`emulator.process.start_emulator_process`)
   at the real plan (2 requests/s, burst 2 per operation, 429 beyond), and the service as production
   starts it (`gunicorn -c gunicorn.conf.py 'app:create_app()'`, production defaults) with only
   SP_API_ENDPOINT (the emulator), RATE_LIMIT_CALLS=120 (the window equal to the plan) and an empty
   DATA_DIR set. CLIENTS threads (httpx) send, until SECONDS have passed, a mix of
   `GET /asin/<asin>` and `POST /asin/batch/US` (5 to 20 ASINs, duplicates included), most ASINs
   from a small hot set (cache hits after their first fetch), some never asked before (SP-API
   calls). Every few seconds the RSS of each gunicorn worker is sampled from /proc.

What must hold (the exit status is 1 otherwise):
- no 5xx, except 503 THROTTLED with Retry-After, an honest answer when clients outrun a
  2 requests/s plan (counted apart); no transport error;
- nothing lost or duplicated: a batch answers every position once, in order; a lookup its ASIN;
- memory flat: each worker's last RSS at most 10% above its RSS once warm (a quarter into the run);
- the plan never exceeded, replayed from the emulator's call log: per operation, no interval of
  length d holds more than burst + rate * (d + 20 ms) calls; zero 429s.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from bench.load import AsinPool
from bench.processes import ROOT, Emulator, Service
from bench.report import machine_summary, markdown_table
from bench.upstream import SP_API_OPERATIONS, THROTTLED, Plan

RESULTS_FILE = ROOT / "tests" / "reliability" / "RESULTS.md"
SUITE_COMMAND = [sys.executable, "-m", "pytest", "tests/reliability", "-q", "-p", "no:cacheprovider"]
# Catalog Items 2022-04-01: rate 2 requests/s, burst 2, per operation (the emulator's default).
PLAN = Plan(rate=2.0, burst=2)
PLAN_SLACK = 0.02  # seconds: loopback jitter between the service's clock and the emulator's
HOT_ASINS = 60
SINGLE_SHARE = 0.6  # of requests; the rest are batches
NEW_SHARE = 0.05  # of ASINs asked for: never asked before, so they cost SP-API calls
MEMORY_GROWTH_LIMIT = 0.10
CLIENT_TIMEOUT = httpx.Timeout(150.0, connect=10.0)  # gunicorn gives a request 120 s
GIVEN_BACK = "given back: the call would leave"  # the limiter's log line for a call too late for its slot
_POOL_LOCK = threading.Lock()


# --------------------------------------------------------------------------------------------- the clients


@dataclass
class Tally:
    """What the clients sent and got back, under a lock."""

    requests: Counter[str] = field(default_factory=Counter)  # "GET single" / "POST batch"
    statuses: Counter[int] = field(default_factory=Counter)
    five_xx: Counter[str] = field(default_factory=Counter)  # "status CODE" of 5xx that are not honest throttling
    throttled: int = 0  # 503 THROTTLED with Retry-After (single lookups)
    transport_errors: Counter[str] = field(default_factory=Counter)
    entries: int = 0
    entries_ok: int = 0
    entry_errors: Counter[str] = field(default_factory=Counter)
    lost: int = 0
    duplicated: int = 0
    cached_entries: int = 0
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


class Client(threading.Thread):
    """One client: single and batch requests on its own connection until the deadline."""

    def __init__(self, number: int, url: str, deadline: float, hot: Sequence[str], pool: AsinPool, tally: Tally) -> None:
        super().__init__(name=f"soak-client-{number}", daemon=True)
        self._url = url
        self._deadline = deadline
        self._hot = hot
        self._pool = pool
        self._tally = tally
        self._rng = random.Random(number)

    def _asin(self) -> str:
        if self._rng.random() < NEW_SHARE:
            with _POOL_LOCK:  # AsinPool is shared by every client
                return self._pool.take(1)[0]
        return self._rng.choice(self._hot)

    def run(self) -> None:
        """Send until the deadline."""
        with httpx.Client(base_url=self._url, timeout=CLIENT_TIMEOUT) as http:
            while time.monotonic() < self._deadline:
                if self._rng.random() < SINGLE_SHARE:
                    self._single(http, self._asin())
                else:
                    asins = [self._asin() for _ in range(self._rng.randint(5, 20))]
                    asins += self._rng.sample(asins, k=self._rng.randint(0, 2))  # repeated within the batch
                    self._batch(http, asins)

    def _send(self, http: httpx.Client, kind: str, method: str, path: str, **kwargs: Any) -> httpx.Response | None:
        started = time.monotonic()
        try:
            response = http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            with self._tally.lock:
                self._tally.requests[kind] += 1
                self._tally.transport_errors[type(exc).__name__] += 1
            return None
        with self._tally.lock:
            self._tally.requests[kind] += 1
            self._tally.statuses[response.status_code] += 1
            self._tally.latencies[kind].append(time.monotonic() - started)
        return response

    def _single(self, http: httpx.Client, asin: str) -> None:
        response = self._send(http, "GET /asin/<asin>", "GET", f"/asin/{asin}")
        if response is None:
            return
        body = _json(response)
        code = body.get("error", {}).get("code") if isinstance(body.get("error"), dict) else None
        with self._tally.lock:
            tally = self._tally
            if response.status_code >= 500:
                if response.status_code == 503 and code == "THROTTLED" and response.headers.get("Retry-After"):
                    tally.throttled += 1
                else:
                    tally.five_xx[f"{response.status_code} {code}"] += 1
            tally.entries += 1
            if body.get("asin") != asin:
                tally.lost += 1
            elif body.get("success") is True:
                tally.entries_ok += 1
                tally.cached_entries += bool(body.get("cached"))
            else:
                tally.entry_errors[str(code)] += 1

    def _batch(self, http: httpx.Client, asins: list[str]) -> None:
        response = self._send(http, "POST /asin/batch/US", "POST", "/asin/batch/US", json={"asins": asins})
        if response is None:
            return
        body = _json(response)
        results = body.get("results") if isinstance(body.get("results"), list) else []
        with self._tally.lock:
            tally = self._tally
            if response.status_code >= 500:
                error = body.get("error") if isinstance(body.get("error"), dict) else {}
                tally.five_xx[f"{response.status_code} {error.get('code')}"] += 1
            tally.entries += len(asins)
            answered = [entry.get("asin") if isinstance(entry, dict) else None for entry in results]
            tally.lost += sum(1 for i, asin in enumerate(asins) if i >= len(answered) or answered[i] != asin)
            tally.duplicated += max(0, len(answered) - len(asins))
            for entry in results:
                if not isinstance(entry, dict):
                    continue
                if entry.get("success") is True:
                    tally.entries_ok += 1
                    tally.cached_entries += bool(entry.get("cached"))
                else:
                    tally.entry_errors[str((entry.get("error") or {}).get("code"))] += 1


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


# --------------------------------------------------------------------------------------------- memory


def rss_kib(pid: int) -> int | None:
    """VmRSS of a process in KiB (None once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


class MemorySampler(threading.Thread):
    """Samples the RSS of the service's workers every `interval` seconds until stopped."""

    def __init__(self, service: Service, interval: float) -> None:
        super().__init__(name="soak-rss", daemon=True)
        self._service = service
        self._interval = interval
        self._stopping = threading.Event()
        self.started_at = time.monotonic()
        self.samples: dict[int, list[tuple[float, int]]] = defaultdict(list)  # pid -> (seconds since start, KiB)

    def sample(self) -> None:
        """Take one sample of every worker."""
        now = time.monotonic() - self.started_at
        for pid in self._service.worker_pids():
            value = rss_kib(pid)
            if value is not None:
                self.samples[pid].append((now, value))

    def run(self) -> None:
        """Sample until stop()."""
        while not self._stopping.is_set():
            self.sample()
            self._stopping.wait(self._interval)

    def stop(self) -> None:
        """Stop sampling, after one last sample."""
        self._stopping.set()
        self.join()
        self.sample()


@dataclass(frozen=True)
class WorkerMemory:
    """One worker's RSS over the run, in MiB."""

    pid: int
    first: float
    warm: float  # the first sample at or after a quarter of the run
    last: float
    peak: float
    samples: int

    @property
    def growth(self) -> float:
        """last / warm - 1."""
        return self.last / self.warm - 1 if self.warm else 0.0

    @property
    def flat(self) -> bool:
        """At most MEMORY_GROWTH_LIMIT above the warm figure at the end."""
        return self.growth <= MEMORY_GROWTH_LIMIT


def worker_memory(samples: dict[int, list[tuple[float, int]]], warm_after: float) -> list[WorkerMemory]:
    """Each worker's first / warm / last / peak RSS."""
    workers = []
    for pid, series in sorted(samples.items()):
        mib = [(t, kib / 1024) for t, kib in series]
        warm = next((value for t, value in mib if t >= warm_after), mib[-1][1])
        workers.append(WorkerMemory(pid, mib[0][1], warm, mib[-1][1], max(v for _, v in mib), len(mib)))
    return workers


# --------------------------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class PlanReplay:
    """The emulator's call log replayed against the plan, per operation."""

    calls: dict[str, int]
    throttled: int
    worst_excess: float  # max over intervals of calls - (burst + rate * (d + slack)); <= 0 means within the plan
    worst_interval: str
    tokens: int
    window_max: int  # most SP-API calls in any RATE_LIMIT_WINDOW (60 s), by arrival at the emulator
    shortest_span: float | None  # shortest time holding RATE_LIMIT_CALLS + 1 consecutive calls (None: fewer calls)

    @property
    def within(self) -> bool:
        """No interval over the plan and no 429."""
        return self.worst_excess <= 0 and self.throttled == 0


def replay(calls: list[dict[str, Any]], plan: Plan, since: float, window: float = 60.0, window_calls: int = 120) -> PlanReplay:
    """Check every interval between two calls of one operation against burst + rate * (length + slack)."""
    sp_api = [c for c in calls if c["operation"] in SP_API_OPERATIONS and c["time"] >= since]
    worst, where = float("-inf"), "no calls"
    for operation in SP_API_OPERATIONS:
        times = sorted(c["time"] for c in sp_api if c["operation"] == operation)
        for i, start in enumerate(times):
            for j in range(i, len(times)):
                excess = (j - i + 1) - (plan.burst + plan.rate * (times[j] - start + PLAN_SLACK))
                if excess > worst:
                    worst, where = excess, f"{operation}: {j - i + 1} calls in {times[j] - start:.3f} s"
    every = sorted(c["time"] for c in sp_api)
    window_max, first = 0, 0
    for last, moment in enumerate(every):
        while moment - every[first] >= window:
            first += 1
        window_max = max(window_max, last - first + 1)
    spans = [every[i + window_calls] - every[i] for i in range(len(every) - window_calls)]
    return PlanReplay(
        calls=dict(Counter(c["operation"] for c in sp_api)),
        throttled=sum(1 for c in sp_api if c["status"] == THROTTLED),
        worst_excess=worst if sp_api else 0.0,
        worst_interval=where,
        tokens=sum(1 for c in calls if c["operation"] == "lwaToken" and c["time"] >= since),
        window_max=window_max,
        shortest_span=min(spans) if spans else None,
    )


# --------------------------------------------------------------------------------------------- the soak


@dataclass
class SoakResult:
    """Everything the soak measured."""

    seconds: float
    clients: int
    wall: float
    tally: Tally
    memory: list[WorkerMemory]
    plan: PlanReplay
    settings: dict[str, str]
    slots_given_back: int  # calls too late for their slot (utils/rate_limit/limiter.py, "Late callers"), from gunicorn's log
    load: tuple[float, float]  # 1-minute load average as the clients start and as the last one ends

    @property
    def checks(self) -> list[tuple[str, str, bool]]:
        """(what must hold, what was measured, held)."""
        t = self.tally
        return [
            ("no 5xx (503 THROTTLED with Retry-After apart)", str(sum(t.five_xx.values())), not t.five_xx),
            ("no transport error", str(sum(t.transport_errors.values())), not t.transport_errors),
            ("no entry lost", str(t.lost), t.lost == 0),
            ("no entry duplicated", str(t.duplicated), t.duplicated == 0),
            (
                f"memory flat (last RSS <= warm RSS + {MEMORY_GROWTH_LIMIT:.0%}, each worker)",
                ", ".join(f"{w.growth:+.1%}" for w in self.memory) or "no sample",
                bool(self.memory) and all(w.flat for w in self.memory),
            ),
            ("no 429 from SP-API", str(self.plan.throttled), self.plan.throttled == 0),
            (
                f"no interval over burst {PLAN.burst} + {PLAN.rate:g}/s x (length + {PLAN_SLACK * 1000:.0f} ms)",
                f"worst: {self.plan.worst_interval} (excess {self.plan.worst_excess:+.2f})",
                self.plan.worst_excess <= 0,
            ),
        ]

    @property
    def passed(self) -> bool:
        """Every check held."""
        return all(held for _, _, held in self.checks)


def run_soak(seconds: float, clients: int, sample_every: float, logs: Path | None = None) -> SoakResult:
    """Start the emulator and gunicorn, hammer them, sample memory, replay the plan; keep their logs in `logs` if given."""
    data_dir = tempfile.mkdtemp(prefix="soak-data-")
    with Emulator() as emulator:
        settings = {"SP_API_ENDPOINT": emulator.url, "RATE_LIMIT_CALLS": "120", "DATA_DIR": data_dir}
        with Service(settings) as service:
            pool = AsinPool(random.Random(20261129))
            hot = pool.take(HOT_ASINS)
            tally = Tally()
            sampler = MemorySampler(service, sample_every)
            sampler.start()
            since = time.time()
            load_before = os.getloadavg()[0]
            started = time.monotonic()
            deadline = started + seconds
            threads = [Client(n, service.url, deadline, hot, pool, tally) for n in range(clients)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            wall = time.monotonic() - started
            load_after = os.getloadavg()[0]
            sampler.stop()
            calls = emulator.calls()
            output = service.output(limit=None)
            if logs is not None:
                logs.mkdir(parents=True, exist_ok=True)
                (logs / "emulator-calls.json").write_text(json.dumps(calls, indent=1))
                (logs / "gunicorn.log").write_text(output)
    return SoakResult(
        seconds=seconds,
        clients=clients,
        wall=wall,
        tally=tally,
        memory=worker_memory(sampler.samples, warm_after=seconds / 4),
        plan=replay(calls, PLAN, since),
        settings=settings | {"DATA_DIR": "<fresh temporary directory>"},
        slots_given_back=output.count(GIVEN_BACK),
        load=(load_before, load_after),
    )


# --------------------------------------------------------------------------------------------- the fault suite


@dataclass
class SuiteResult:
    """The fault suite's run: pytest's summary line, exit status and each case's figures."""

    command: str
    returncode: int
    summary: str
    cases: list[dict[str, Any]]
    output: str

    @property
    def failures(self) -> list[str]:
        """pytest's FAILED / ERROR lines (its short test summary)."""
        return [line for line in self.output.splitlines() if line.startswith(("FAILED ", "ERROR "))]


def run_suite() -> SuiteResult:
    """`pytest tests/reliability` with RELIABILITY_FIGURES set; the figures it wrote."""
    with tempfile.TemporaryDirectory(prefix="soak-suite-") as tmp:
        figures = Path(tmp) / "figures.json"
        env = {**os.environ, "RELIABILITY_FIGURES": str(figures)}
        proc = subprocess.run(SUITE_COMMAND, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
        cases = json.loads(figures.read_text()) if figures.exists() else []
    lines = [line for line in proc.stdout.splitlines() if re.search(r"\d+ (passed|failed|error)", line)]
    command = "RELIABILITY_FIGURES=<file> " + shlex.join(["python", *SUITE_COMMAND[1:]])
    return SuiteResult(command, proc.returncode, lines[-1].strip("= ") if lines else "(no summary)", cases, proc.stdout + proc.stderr)


# --------------------------------------------------------------------------------------------- the report


def suite_markdown(suite: SuiteResult) -> str:
    """The fault suite's figures: totals, then one row per test function."""
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for case in suite.cases:
        grouped[case["case"]].append(case)
    rows = []
    for name, cases in grouped.items():
        outcomes = Counter(case["outcome"] for case in cases)
        calls = [case["sp_api_calls"] for case in cases if case["sp_api_calls"] is not None]
        five_xx = sum(case["five_xx"] for case in cases)
        by_design = sum(case["five_xx_by_design"] for case in cases)
        rows.append(
            (
                name,
                ", ".join(f"{n} {outcome}" for outcome, n in sorted(outcomes.items())),
                str(sum(case["requests"] for case in cases)),
                str(sum(case["entries"] for case in cases)),
                str(sum(case["entries_lost"] + case["entries_duplicated"] for case in cases)),
                f"{five_xx}" + (f" ({by_design} by design)" if by_design else ""),
                str(sum(calls)) if calls else "–",
                f"{sum(case['wall_seconds'] for case in cases):.2f}",
            )
        )
    totals = {
        "cases run": len(suite.cases),
        "passed": sum(1 for c in suite.cases if c["outcome"] == "passed"),
        "requests sent": sum(c["requests"] for c in suite.cases),
        "entries asked": sum(c["entries"] for c in suite.cases),
        "entries lost or duplicated": sum(c["entries_lost"] + c["entries_duplicated"] for c in suite.cases),
        "5xx seen": sum(c["five_xx"] for c in suite.cases),
        "of which by design": sum(c["five_xx_by_design"] for c in suite.cases),
    }
    header = ("case (test function)", "outcome", "requests", "entries", "lost/dup", "5xx seen", "SP-API calls", "wall s")
    failures = [f"* {line}" for line in suite.failures]
    return "\n".join(
        [
            f"* command: `{suite.command}` (exit status {suite.returncode}: {suite.summary})",
            "* " + ", ".join(f"{name}: {value}" for name, value in totals.items()),
            *failures,
            "",
            markdown_table(header, rows),
        ]
    )


def soak_markdown(result: SoakResult, command: str) -> str:
    """The soak's figures and checks."""
    t = result.tally
    settings = " ".join(f"{k}={v}" for k, v in result.settings.items())
    latency_rows = []
    for kind, values in sorted(t.latencies.items()):
        ordered = sorted(values)
        p50, p95 = ordered[len(ordered) // 2], ordered[int(len(ordered) * 0.95)]
        latency_rows.append((kind, str(t.requests[kind]), f"{p50:.3f}", f"{p95:.3f}", f"{ordered[-1]:.3f}"))
    figures = [
        ("duration", f"{result.seconds:g} s of load, {result.wall:.1f} s until the last answer"),
        ("1-minute load average", f"{result.load[0]:.2f} as the clients started, {result.load[1]:.2f} at the end ({os.cpu_count()} CPUs)"),
        ("clients", f"{result.clients} threads, httpx, one connection each"),
        ("requests sent", f"{sum(t.requests.values())} (" + ", ".join(f"{k}: {n}" for k, n in sorted(t.requests.items())) + ")"),
        ("responses by status", ", ".join(f"{status}: {n}" for status, n in sorted(t.statuses.items())) or "none"),
        ("5xx (not honest throttling)", str(sum(t.five_xx.values())) + (f" ({dict(t.five_xx)})" if t.five_xx else "")),
        ("503 THROTTLED with Retry-After", str(t.throttled)),
        ("transport errors", str(sum(t.transport_errors.values())) + (f" ({dict(t.transport_errors)})" if t.transport_errors else "")),
        ("entries asked / succeeded / from cache", f"{t.entries} / {t.entries_ok} / {t.cached_entries}"),
        ("entry errors by code", ", ".join(f"{code}: {n}" for code, n in sorted(t.entry_errors.items())) or "none"),
        ("entries lost / duplicated", f"{t.lost} / {t.duplicated}"),
        ("SP-API calls (emulator log)", ", ".join(f"{op}: {n}" for op, n in sorted(result.plan.calls.items())) or "none"),
        ("429s from SP-API", str(result.plan.throttled)),
        ("SP-API slots given back (calls too late for theirs: reserved again)", str(result.slots_given_back)),
        ("LWA token fetches", str(result.plan.tokens)),
        ("most SP-API calls in any 60 s (arrival times)", f"{result.plan.window_max} (RATE_LIMIT_CALLS=120 per RATE_LIMIT_WINDOW=60)"),
        (
            "shortest span holding 121 calls",
            "fewer than 121 calls"
            if result.plan.shortest_span is None
            else f"{result.plan.shortest_span:.3f} s (the service admits by its own clock; arrival adds loopback jitter)",
        ),
        ("worst interval vs the plan", f"{result.plan.worst_interval}, excess {result.plan.worst_excess:+.2f} calls (<= 0 is within)"),
    ]
    memory_rows = [
        (str(w.pid), f"{w.first:.1f}", f"{w.warm:.1f}", f"{w.last:.1f}", f"{w.peak:.1f}", f"{w.growth:+.1%}", str(w.samples))
        for w in result.memory
    ]
    checks = [(what, measured, "yes" if held else "NO") for what, measured, held in result.checks]
    return "\n".join(
        [
            f"* command: `{command}`",
            f"* service: `gunicorn -c gunicorn.conf.py 'app:create_app()'`, production defaults plus {settings}",
            f"* SP-API: `python -m emulator` (emulator.process.start_emulator_process), plan {PLAN.rate:g}/s burst {PLAN.burst}",
            "",
            markdown_table(("figure", "value"), figures),
            "",
            "Latency seen by the clients (seconds):",
            "",
            markdown_table(("request", "count", "p50", "p95", "max"), latency_rows),
            "",
            "Worker memory (RSS, MiB; warm = first sample a quarter into the run):",
            "",
            markdown_table(("worker pid", "first", "warm", "last", "peak", "last vs warm", "samples"), memory_rows),
            "",
            markdown_table(("must hold", "measured", "held"), checks),
        ]
    )


def results_markdown(suite: SuiteResult | None, soak: SoakResult, command: str, machine: str) -> str:
    """The whole of tests/reliability/RESULTS.md."""
    suite_part = suite_markdown(suite) if suite is not None else "(not run: --no-suite)"
    return "\n".join(
        [
            "# Reliability results",
            "",
            "_Written by `make soak` (bench/soak.py); it rewrites this whole file, so edit the script, not the file._",
            "",
            f"* date: {datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}",
            f"* machine: {machine}",
            "",
            "## Fault-injection suite (tests/reliability/, also part of `make test`)",
            "",
            suite_part,
            "",
            "`requests` counts what the cases sent to the service (test client, httpx, raw sockets);",
            "`5xx seen` counts every 5xx answer, `by design` those the case's contract demands",
            "(503 UPSTREAM_UNAVAILABLE while SP-API is down). Entries lost/dup: batch positions answered",
            "missing, out of order or twice. Wall times are figures, never assertions.",
            "",
            "## Soak (make soak)",
            "",
            soak_markdown(soak, command),
            "",
        ]
    )


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak",
        description=__doc__.splitlines()[0],
        epilog=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the clients send (default 60)")
    parser.add_argument("--clients", type=int, default=50, help="client threads (default 50)")
    parser.add_argument("--sample-every", type=float, default=2.0, help="seconds between RSS samples (default 2)")
    parser.add_argument("--no-suite", action="store_true", help="skip the fault-injection suite")
    parser.add_argument("--logs", type=Path, default=None, help="keep the emulator's call log and gunicorn's output in this directory")
    parser.add_argument(
        "--output", default=str(RESULTS_FILE), help="Markdown file to write (default tests/reliability/RESULTS.md; '-' prints only)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the fault suite and the soak; print the results; write them; exit 1 if anything did not hold."""
    args = build_parser().parse_args(argv)
    machine = machine_summary()
    command = shlex.join(["python", "-m", "bench.soak", *(argv if argv is not None else sys.argv[1:])])
    suite = None
    if not args.no_suite:
        print(f"soak: fault suite: {shlex.join(SUITE_COMMAND[1:])} ...", file=sys.stderr, flush=True)
        suite = run_suite()
        print(f"soak: fault suite: {suite.summary} (exit status {suite.returncode})", file=sys.stderr, flush=True)
        if suite.returncode != 0:
            print(suite.output[-20000:], file=sys.stderr, flush=True)
    print(f"soak: {args.clients} clients for {args.seconds:g} s against gunicorn ...", file=sys.stderr, flush=True)
    soak = run_soak(args.seconds, args.clients, args.sample_every, args.logs)
    text = results_markdown(suite, soak, command, machine)
    print(text)
    if args.output != "-":
        Path(args.output).write_text(text)
        print(f"soak: wrote {args.output}", file=sys.stderr)
    ok = soak.passed and (suite is None or suite.returncode == 0)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
