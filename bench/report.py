"""The bench's output: one results table, the targets, and bench/RESULTS.md."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

COLUMNS = ("#", "scenario", "ok / total", "SP-API calls", "429s", "wall s", "floor s", "wall/floor", "floor/wall", "throughput", "notes")
DASH = "–"


@dataclass(frozen=True)
class Row:
    """One line of the results table; figures already formatted, DASH where a figure does not apply."""

    scenario: str
    variant: str
    ok: str = DASH
    calls: str = DASH
    throttled: str = DASH
    wall: str = DASH
    floor: str = DASH
    wall_over_floor: str = DASH
    efficiency: str = DASH
    throughput: str = DASH
    notes: str = ""

    def cells(self) -> tuple[str, ...]:
        """The row's cells in COLUMNS order."""
        return (
            self.scenario,
            self.variant,
            self.ok,
            self.calls,
            self.throttled,
            self.wall,
            self.floor,
            self.wall_over_floor,
            self.efficiency,
            self.throughput,
            self.notes,
        )


@dataclass(frozen=True)
class Target:
    """A goal a scenario is measured against; `met` is None when the bench cannot tell yet."""

    scenario: str
    goal: str
    measured: str
    met: bool | None

    @property
    def verdict(self) -> str:
        """ "yes", "NO" or "unknown"."""
        return {True: "yes", False: "NO", None: "unknown"}[self.met]


class ScenarioResult(Protocol):
    """What every scenario hands to the report."""

    def rows(self) -> list[Row]: ...

    def targets(self) -> list[Target]: ...

    def details(self) -> list[str]: ...


def seconds(value: float) -> str:
    """A duration in seconds with two decimals."""
    return f"{value:.2f}"


def ratio(value: float | None) -> str:
    """A dimensionless ratio with two decimals, DASH when undefined."""
    return DASH if value is None else f"{value:.2f}"


def markdown_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    """A GitHub-flavoured Markdown table."""

    def line(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    return "\n".join([line(header), "| " + " | ".join("---" for _ in header) + " |", *(line(r) for r in rows)])


def results_table(results: list[ScenarioResult]) -> str:
    """Every scenario's rows side by side."""
    return markdown_table(COLUMNS, [row.cells() for result in results for row in result.rows()])


def targets_table(results: list[ScenarioResult]) -> str:
    """Every target with what was measured and whether it was met."""
    rows = [(t.scenario, t.goal, t.measured, t.verdict) for result in results for t in result.targets()]
    return markdown_table(("#", "target", "measured", "met"), rows) if rows else "(no targets for these scenarios)"


def machine_summary() -> str:
    """CPU count and model, Python version, OS."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass  # not Linux: the model stays unknown, the rest still says enough
    # Other work on the machine skews every figure: say how busy it was (call this before the bench starts).
    load = f", 1-minute load average {os.getloadavg()[0]:.2f} before the run" if hasattr(os, "getloadavg") else ""
    return f"{os.cpu_count()} CPUs ({model}), Python {platform.python_version()}, {platform.system()} {platform.release()}{load}"


HOW_TO_READ = """\
Every figure comes from real processes: the bundled SP-API emulator (`python -m emulator`) with
the real Catalog Items 2022-04-01 usage plan (2 requests/s, burst 2, a token bucket per
operation, 429 when exceeded) and every other operation at its model's plan (scenarios 7 and 8:
getCompetitivePricing, getItemOffers and getMyFeesEstimates 0.5/s burst 1, getItemOffersBatch
0.1/s burst 1, getMyFeesEstimateForASIN 1/s burst 2), and the service under gunicorn exactly as production starts it
(`.venv/bin/gunicorn -c gunicorn.conf.py 'app:create_app()'`; scenario 4 uses
`bench.app:create_bench_app()`, the same app plus a do-nothing `/_bench/noop` route). Each
scenario gets a fresh emulator (full buckets, empty call log), a fresh gunicorn and a fresh
`DATA_DIR`, and its own random ASINs, so nothing is cached from an earlier scenario.

* **ok / total**: ASINs the clients got back with `"success": true`, out of those they asked for.
* **ok / total** with datasets (scenarios 7 and 8): the entry says success and carries every
  dataset asked for without an error; a Fees NO_PRICE counts only where the entry has no Buy Box
  (the notes count every dataset's outcome).
* **SP-API calls** and **429s**: counted in the emulator's call log (every SP-API operation; LWA
  token fetches are not counted), never taken from the service's answers.
  Scenario 4's ASIN row counts the calls made while wrk ran (0 when the cache serves everything).
* **wall**: measured by the client, from the first request sent to the last answer received.
* **floor**: the least time the plan allows for the calls made, starting from a full bucket:
  `max(0, calls − burst) / rate` over the calls the emulator admitted (429s take no token), per
  operation at its own plan, the largest over the operations (each has its own bucket and they run
  side by side; scenarios 1–6 use one operation). **wall/floor** = 1.00
  would be perfect pacing; **floor/wall** is the efficiency.
* **throughput**: successful ASINs per second of wall time (scenario 4: HTTP requests per second
  from `wrk`, median of the runs, with its p50/p99 latency).
* The service's own global cap is set to `RATE_LIMIT_CALLS=120 RATE_LIMIT_WINDOW=60`, i.e. equal
  to the catalog plan (2/s), so the SP-API plan, not the service's extra window, is the limit
  measured (scenarios 7 and 8 make far fewer calls than 120 a minute: their Details say how many).
  `LOG_LEVEL=WARNING` everywhere; gunicorn's access log stays on as in production.
* Scenario 9 (a supplier-list scan job): **ok / total** counts result rows with a verdict (BUY,
  REVIEW or SKIP) out of the list's rows, **throughput** is rows per second, **wall** runs from the
  upload (`POST /jobs/US?scan=true`) to the results CSV read, and its service window is
  `RATE_LIMIT_CALLS=1000` (its calls are many more operations than the catalog's; its Details give
  the most in any 60 s). Its memory row runs on an emulator with every plan raised to 50/s, where
  the CPU, not the floor, paces it.
* Client, servers and wrk share the machine's CPUs; other work on it (see the load average
  above) shows up as lower req/s and a later first SP-API call. `python -m bench --logs DIR`
  keeps each scenario's emulator call log and gunicorn output for a closer look.
"""


def results_markdown(results: list[ScenarioResult], *, command: str, date: str, machine: str) -> str:
    """The whole of bench/RESULTS.md."""
    details = [line for result in results for line in result.details()]
    return "\n".join(
        [
            "# Benchmarks",
            "",
            "_Written by `make bench` (bench/run.py); it rewrites this whole file, so edit the script, not the file._",
            "",
            f"* command: `{command}`",
            f"* date: {date}",
            f"* machine: {machine}",
            "",
            "## Results",
            "",
            results_table(results),
            "",
            "## Targets",
            "",
            targets_table(results),
            "",
            "## How to read this",
            "",
            HOW_TO_READ,
            "## Details",
            "",
            *details,
            "",
        ]
    )
