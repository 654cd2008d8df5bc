"""fba-backend benchmarks: real processes, SP-API calls counted by the emulator, wall times by the client.

Run it:

    make bench                          # every scenario (about 15 minutes, half of it scenario 9); writes bench/RESULTS.md
    .venv/bin/python -m bench           # the same, without make's install steps
    .venv/bin/python -m bench --only 1,4
    .venv/bin/python -m bench --quick   # smaller runs, a few minutes; figures are indicative only
    .venv/bin/python -m bench --only 2 --logs /tmp/bench-logs   # keep the emulator call logs and gunicorn output

    .venv/bin/python -m bench --only 7,8   # datasets on demand only (about a minute and a half)
    .venv/bin/python -m bench --only 9 --logs /tmp/scan   # the supplier-list scan (about 8 minutes at the real plans)

Partial runs (--only, --quick) print the table but leave bench/RESULTS.md alone unless
--output names a file. Needs `wrk` (scenario 4) and `redis-server` (scenarios 2 and 6, via
bench/redis_server.py) on PATH.

Each scenario starts a fresh SP-API emulator (`python -m emulator`, the real plans: Catalog Items
2 requests/s, burst 2 per operation, every other operation its model's, 429 when exceeded) and a fresh gunicorn
(`.venv/bin/gunicorn -c gunicorn.conf.py 'app:create_app()'`) pointed at it with
`SP_API_ENDPOINT`, an empty `DATA_DIR`, `RATE_LIMIT_CALLS=120 RATE_LIMIT_WINDOW=60` (the
service's own cap equal to the plan) and `LOG_LEVEL=WARNING`, and uses ASINs no other scenario
used.

1. Cold batch: one `POST /asin/batch/US` of 100 ASINs (1 worker) vs 100 other ASINs as one
   `GET /asin/<asin>` each from 5 client threads, same service.
   Targets: batch wall ≤ 1.1 × floor, no 429, batch ASINs/s ≥ 20 × per-ASIN.
2. Shared quota: 2,000 ASINs as 20 batches of 100 from 4 clients, 4 gunicorn workers, with
   RATE_LIMIT_BACKEND=sqlite and then redis. Targets: no 429, floor/wall ≥ 0.9, all answered.
3. Adaptation: 1,000 ASINs (10 batches, 4 clients, 4 workers, sqlite); ~10 s in, the emulator's
   plan drops to 1/s burst 1 while its header keeps announcing 2.0. Targets: all answered, last
   429 ≤ 5 s after the change.
4. Warm cache: production defaults plus CACHE_BACKEND=sqlite, 200 ASINs fetched once, then wrk
   (`-t2 -c16 -d10s --latency`) on the cached `GET /asin/<asin>` and on `GET /_bench/noop`
   (bench/app.py), interleaved, medians. Targets: asin/noop req/s ≥ 0.6, "cached": true.
5. Memory: VmHWM of each gunicorn worker after scenario 2's sqlite run.
6. Limiter store operations per SP-API call (bench/limiter_ops.py): the service in the bench's
   process, 30 single lookups per RATE_LIMIT_BACKEND (sqlite, redis) and plan (one admitting
   every call at once, the real one where each waits for its slot); SQLite statements traced,
   Redis round trips counted. Target: 1 store operation per SP-API call.
7. Datasets on demand: one `POST /asin/batch/US` of 100 ASINs with include=pricing,fees (1 worker,
   sqlite limiter) vs 20 other ASINs the naive way, getItemOffers then getMyFeesEstimateForASIN at
   its Buy Box per ASIN (bench/per_asin_datasets.py, 5 threads, the service's settings, limiter
   and SP-API client). Targets: wall ≤ 1.15 × floor, no 429, batch ASINs/s ≥ 8 × per-ASIN, every
   entry with its datasets and no dataset error (Fees NO_PRICE only where there is no Buy Box).
8. One batch of 100 ASINs with include=offers (5 getItemOffersBatch at 0.1/s: floor 40 s).
   Targets: wall ≤ 1.15 × floor, no 429, every ASIN with an Offers dataset without error.
9. Supplier-list scan (bench/scan.py): a generated 1,000-row supplier CSV (UPCs, costs, packs, 9 bad
   rows) as one `POST /jobs/US?scan=true` (2 workers, sqlite, RATE_LIMIT_CALLS=1000), then the same
   list at costs ×1.5 and ×0.7 on the warm service; a 200-row prefix scanned vs the naive way (one
   batch job with include=pricing,offers,fees,restrictions,eligibility), each on a fresh stack; a
   10,000-row scan on an emulator with every plan raised to 50/s, for the workers' VmHWM.
   Targets: no 429, 1000 rows answered in order, wall ≤ 1.2 × floor, ≥ 3× faster than the naive
   scan with the same verdict for its BUY rows, re-scan ×1.5 with no SP-API call, ×0.7 with deep
   checks only for the rows newly passing, worker peak RSS < 200 MB.

Figures: "SP-API calls" and "429s" come from the emulator's call log (LWA token fetches not
counted); "wall" is the client's, first request sent to last answer; "floor" is
max(0, calls − burst) / rate over the calls the emulator admitted, per operation at its own plan
and the largest over operations (they run side by side), the least time the plans allow starting
from full buckets; "wall/floor" 1.00 is perfect pacing and "floor/wall" is the
efficiency; "throughput" is successful ASINs per wall second (scenario 4: wrk's requests/s).
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import FrameType

from bench.load import AsinPool
from bench.processes import ROOT
from bench.report import Row, ScenarioResult, Target, machine_summary, results_markdown, results_table, targets_table
from bench.scan import run_scan_scenario
from bench.scenarios import (
    BenchConfig,
    run_adaptation,
    run_cold_batch,
    run_datasets,
    run_limiter_ops,
    run_offers,
    run_shared_quota,
    run_warm_cache,
)

SCENARIOS = {
    1: "cold batch vs per-ASIN",
    2: "shared quota, 4 workers",
    3: "adaptation to a halved plan",
    4: "warm cache",
    5: "worker memory",
    6: "limiter store operations per SP-API call",
    7: "100 ASINs with include=pricing,fees vs per-ASIN",
    8: "100 ASINs with include=offers",
    9: "supplier-list scan",
}
RESULTS_FILE = Path(__file__).resolve().parent / "RESULTS.md"


@dataclass
class FailedScenario:
    """A scenario that raised: one row saying so, and the whole error in the details."""

    number: int
    summary: str  # the exception's type and first line
    error: str  # the whole traceback

    def rows(self) -> list[Row]:
        """One row with the first line of the error."""
        return [Row(str(self.number), SCENARIOS[self.number], notes=f"FAILED: {self.summary}")]

    def targets(self) -> list[Target]:
        """The scenario's run itself is the unmet target."""
        return [Target(str(self.number), "the scenario runs", "it failed (see Details)", False)]

    def details(self) -> list[str]:
        """The traceback, with the server output it carries."""
        return [f"### {self.number}. {SCENARIOS[self.number]}: FAILED", "", "```", self.error.rstrip(), "```", ""]


def parse_selection(text: str) -> list[int]:
    """`--only 1,4` -> [1, 4]."""
    try:
        chosen = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected scenario numbers like 1,4 (got {text!r})") from None
    unknown = [n for n in chosen if n not in SCENARIOS]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"scenarios are {', '.join(map(str, SCENARIOS))} (got {text!r})")
    return chosen


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__.splitlines()[0], epilog=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", type=parse_selection, default=list(SCENARIOS), help="comma-separated scenario numbers (default: all)")
    parser.add_argument("--quick", action="store_true", help="smaller runs (a few minutes), for checking the harness")
    parser.add_argument(
        "--logs", type=Path, default=None, help="keep each scenario's emulator call log and gunicorn output in this directory"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="where to write the Markdown results (default: bench/RESULTS.md for a full run, none otherwise)",
    )
    return parser


def _attempt(numbers: list[int], step: Callable[[], dict[int, ScenarioResult]]) -> dict[int, ScenarioResult]:
    """Run one step; on an error, say so loudly and turn it into FailedScenario rows so the other scenarios still run."""
    started = time.monotonic()
    names = " + ".join(f"{n}. {SCENARIOS[n]}" for n in numbers)
    print(f"bench: {names} ...", file=sys.stderr, flush=True)
    try:
        results = step()
    except Exception as exc:  # whatever broke one scenario is reported, and the others still run
        error = traceback.format_exc()
        print(f"bench: {names} FAILED:\n{error}", file=sys.stderr, flush=True)
        summary = getattr(exc, "summary", None) or f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}"
        return {n: FailedScenario(n, summary, error) for n in numbers}
    print(f"bench: {names} done in {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    return results


def run_scenarios(selected: Sequence[int], config: BenchConfig, workdir: Path) -> list[ScenarioResult]:
    """Run the selected scenarios in order; scenario 5 is measured during scenario 2's sqlite run."""
    pool = AsinPool()
    results: dict[int, ScenarioResult] = {}
    if 1 in selected:
        results |= _attempt([1], lambda: {1: run_cold_batch(config, pool)})
    if 2 in selected or 5 in selected:
        wanted = [n for n in (2, 5) if n in selected]

        def shared() -> dict[int, ScenarioResult]:
            quota, memory = run_shared_quota(config, pool, ["sqlite", "redis"] if 2 in selected else ["sqlite"])
            found: dict[int, ScenarioResult] = {2: quota} if 2 in selected else {}
            if 5 in selected and memory is not None:
                found[5] = memory
            return found

        results |= _attempt(wanted, shared)
    if 3 in selected:
        results |= _attempt([3], lambda: {3: run_adaptation(config, pool)})
    if 4 in selected:
        results |= _attempt([4], lambda: {4: run_warm_cache(config, pool, workdir)})
    if 6 in selected:
        results |= _attempt([6], lambda: {6: run_limiter_ops(config)})
    if 7 in selected:
        results |= _attempt([7], lambda: {7: run_datasets(config, pool)})
    if 8 in selected:
        results |= _attempt([8], lambda: {8: run_offers(config, pool)})
    if 9 in selected:
        results |= _attempt([9], lambda: {9: run_scan_scenario(config)})
    return [results[n] for n in sorted(results)]


def _command(argv: Sequence[str]) -> str:
    python = Path(sys.executable)
    shown = python.relative_to(ROOT) if python.is_relative_to(ROOT) else python
    return shlex.join([str(shown), "-m", "bench", *argv])


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # SystemExit unwinds through every `with`, so the servers stop as on Ctrl-C.
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks, print the table, write the results file; 1 if a scenario could not run."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    full_run = not args.quick and args.only == list(SCENARIOS)
    output = args.output or (RESULTS_FILE if full_run else None)
    machine = machine_summary()
    config = dataclasses.replace(BenchConfig.quick() if args.quick else BenchConfig(), log_dir=args.logs)

    try:
        with tempfile.TemporaryDirectory(prefix="bench-") as workdir:
            results = run_scenarios(args.only, config, Path(workdir))
    except (KeyboardInterrupt, SystemExit):
        print("bench: interrupted; every server it started has been stopped", file=sys.stderr)
        raise

    print()
    print(results_table(results))
    print()
    print(targets_table(results))
    if output is not None:
        date = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
        output.write_text(results_markdown(results, command=_command(argv), date=date, machine=machine))
        print(f"\nbench: wrote {output}", file=sys.stderr)
    return 1 if any(isinstance(result, FailedScenario) for result in results) else 0
