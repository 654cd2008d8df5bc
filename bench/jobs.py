"""Issue 4's "done when", end to end: a 10,000-row supplier CSV of UPCs in with one curl, the server restarted halfway, a complete CSV out.

Run it:

    make bench-jobs                                      # about five minutes at the real plan; writes bench/JOBS.md
    .venv/bin/python -m bench.jobs                       # the same, without make's install step
    .venv/bin/python -m bench.jobs --rows 1000 --output -   # a quick look (about a minute), printed only
    .venv/bin/python -m bench.jobs --workdir /tmp/jobs   # keep the files somewhere you choose

Every file of the run (supplier.csv, results.csv, gunicorn.log, progress.csv, calls.json and the
service's DATA_DIR) stays in the work directory, printed at the start and named in the report.

1. The SP-API emulator in its own process (`emulator.process.start_emulator_process`) at the real
   Catalog Items plan, 2 requests/s with a burst of 2: its call log spans both service runs.
2. A supplier price list, `Supplier SKU,Description,UPC,Cost,Qty`, of ROWS rows: UPCs of synthetic
   items (`emulator.identifiers.upc_for_asin` on "B00" + 7 base-36 characters, so the emulator
   decodes them), with what real lists hold: ~1% UPCs with a wrong check digit, ~1% valid UPCs no
   item carries (`unmatched_code`), 3 codes that map to two ASINs (`two_asin_upc`), and a few rows
   repeating an earlier row's UPC; descriptions with commas, so some fields are quoted.
3. The service as production starts it, `.venv/bin/gunicorn -c gunicorn.conf.py 'app:create_app()'`,
   with SP_API_ENDPOINT (the emulator), a fresh DATA_DIR, WEB_CONCURRENCY=2 and
   RATE_LIMIT_CALLS=1000, its output appended to gunicorn.log. The default window (20 calls in
   60 s) would stretch the ~500 calls of 10,000 codes over 25 minutes; 1000 lets the plan bind.
4. The upload, with the real `curl` and the README's command: `curl -F file=@supplier.csv
   localhost:PORT/jobs/US`; the job id is read from its answer.
5. GET /jobs/<id> every POLL seconds (done/total, asins_per_second, eta_seconds); once half the rows
   are done, the partial results are read (NDJSON), the gunicorn master gets SIGTERM, the script
   waits for it to exit, notes which rows the job store holds, and starts gunicorn again on the
   same port with the same DATA_DIR. The job must resume by itself.
6. When the job is done: `curl localhost:PORT/jobs/<id>/results?format=csv -o results.csv`, then
   every row is checked against the input and the emulator's own catalog (emulator.catalog).
7. The emulator's call log: calls, 429s, codes asked more than once, codes asked again after the
   restart although their answer had been stored, calls x 20 vs distinct codes, rates vs the plan.

What must hold (the exit status is 1 otherwise): the upload is accepted and the job is done; the
CSV has one row per input row, in input order; matched rows carry the right ASIN, title and sales
rank; the planted rows carry INVALID_IDENTIFIER, NOT_FOUND and other_asins; the server was
restarted mid-job and the job resumed by itself; zero 429s; no code asked twice except those in
flight at the restart, and none whose answer was stored before the restart asked again after it.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import re
import shlex
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from bench.processes import Emulator, Service, peak_rss_kib
from bench.report import machine_summary, markdown_table
from bench.upstream import REAL_PLAN, THROTTLED
from emulator.catalog import build_item
from emulator.defaults import MARKETPLACES
from emulator.identifiers import two_asin_upc, unmatched_code, upc_for_asin
from emulator.process import free_port

RESULTS_FILE = Path(__file__).resolve().parent / "JOBS.md"
COUNTRY = "US"
MARKETPLACE_ID = MARKETPLACES[COUNTRY]
# searchCatalogItems answers up to 20 identifiers a call (Catalog Items 2022-04-01).
CODES_PER_CALL = 20
SP_API_RATE_MARGIN = 0.05  # the service's default: it paces 5% under the plan
# The plan's ceiling in codes per second: 2 calls/s x 20 codes, paced 5% under.
CEILING = REAL_PLAN.rate * CODES_PER_CALL * (1 - SP_API_RATE_MARGIN)
SERVICE_SETTINGS = {"WEB_CONCURRENCY": "2", "RATE_LIMIT_CALLS": "1000"}
SERVICE_COMMAND = [".venv/bin/gunicorn", "-c", "gunicorn.conf.py", "app:create_app()"]
FINISHED = ("done", "failed", "cancelled")
STOP_TIMEOUT = 40.0  # gunicorn.conf.py gives workers graceful_timeout = 30 s
CURL_TIMEOUT = 300.0
CSV_HEADER = ("Supplier SKU", "Description", "UPC", "Cost", "Qty")
REQUIRED_COLUMNS = ("input", "asin", "success", "error_code", "title", "sales_rank", "other_asins")

# What a supplier list holds, besides good rows.
BAD_CHECK, UNMATCHED, TWO_ASINS, DUPLICATE, MATCHED = "wrong check digit", "unmatched", "two ASINs", "duplicate", "matched"
TWO_ASIN_ROWS = 3

_BRANDS = ("Northwind", "Acme", "Contoso", "Fabrikam", "Globex", "Initech", "Umbrella", "Vandelay", "Wayne", "Stark")
_ADJECTIVES = ("Stainless", "Compact", "Deluxe", "Heavy-Duty", "Eco", "Classic", "Pro", "Mini", "Premium", "Foldable")
_NOUNS = ("Travel Mug", "Cutting Board", "Phone Stand", "Desk Lamp", "Water Bottle", "Dog Leash", "Yoga Mat", "Spice Rack", "Tote Bag")
_SIZES = ("16 oz", "Pack of 2", "Pack of 6", "Large", "Small", "12-Inch", "Black", "Assorted Colors", "")


# --------------------------------------------------------------------------------------------- the supplier list


@dataclass(frozen=True)
class SupplierRow:
    """One line of the supplier CSV and what its UPC must come back as."""

    sku: str
    description: str
    upc: str
    cost: str
    qty: str
    kind: str  # MATCHED, DUPLICATE, BAD_CHECK, UNMATCHED or TWO_ASINS
    asins: tuple[str, ...]  # the ASINs the UPC belongs to (none for BAD_CHECK and UNMATCHED)


def _random_b00(rng: random.Random, taken: set[str]) -> str:
    """A new "B00" + 7 base-36 ASIN; never ending in V (those share their UPC with a bundle: planted apart)."""
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    while True:
        asin = "B00" + "".join(rng.choice(alphabet) for _ in range(6)) + rng.choice(alphabet.replace("V", ""))
        if asin not in taken:
            taken.add(asin)
            return asin


def _description(rng: random.Random) -> str:
    size = rng.choice(_SIZES)
    text = f"{rng.choice(_BRANDS)} {rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}"
    return f"{text}, {size}" if size else text


def make_supplier_rows(count: int, seed: int) -> list[SupplierRow]:
    """`count` rows in a shuffled order: ~1% wrong check digits, ~1% unmatched, 3 two-ASIN codes, a few repeated UPCs."""
    rng = random.Random(seed)
    planted = max(1, count // 100)
    duplicates = max(1, count // 1000)
    taken: set[str] = set()
    entries: list[tuple[str, str, tuple[str, ...]]] = []  # (kind, upc, asins)
    for _ in range(planted):
        upc = upc_for_asin(_random_b00(rng, taken))
        wrong = str((int(upc[-1]) + rng.randint(1, 9)) % 10)
        entries.append((BAD_CHECK, upc[:-1] + wrong, ()))
    for n in rng.sample(range(1_000_000), planted):
        entries.append((UNMATCHED, unmatched_code("UPC", n), ()))
    for n in rng.sample(range(36**5, 36**6), TWO_ASIN_ROWS):
        upc, pair = two_asin_upc(n)
        entries.append((TWO_ASINS, upc, pair))
    while len(entries) < count - duplicates:
        asin = _random_b00(rng, taken)
        entries.append((MATCHED, upc_for_asin(asin), (asin,)))
    rng.shuffle(entries)
    for _ in range(duplicates):
        # The same product listed again further down (another SKU, same UPC).
        source = rng.choice([i for i, entry in enumerate(entries) if entry[0] == MATCHED])
        _, upc, asins = entries[source]
        entries.insert(rng.randint(source + 1, len(entries)), (DUPLICATE, upc, asins))
    return [
        SupplierRow(
            sku=f"SUP-{100000 + i}",
            description=_description(rng),
            upc=upc,
            cost=f"{rng.uniform(0.5, 120.0):.2f}",
            qty=str(rng.choice((1, 2, 6, 12, 24, 48, 100, 250))),
            kind=kind,
            asins=asins,
        )
        for i, (kind, upc, asins) in enumerate(entries)
    ]


def write_supplier_csv(path: Path, rows: Sequence[SupplierRow]) -> None:
    """The rows as a spreadsheet would save them: a header, CRLF line ends, quotes where a field holds a comma."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(CSV_HEADER)
        writer.writerows((r.sku, r.description, r.upc, r.cost, r.qty) for r in rows)


# --------------------------------------------------------------------------------------------- processes


class RestartableService(Service):
    """The service under gunicorn on a fixed port (a restart keeps the URL), its output appended to a log file."""

    def peak_rss_mib(self) -> list[float]:
        """VmHWM of each worker, in MiB."""
        peaks = []
        for pid in self.worker_pids():
            try:
                peaks.append(peak_rss_kib(pid) / 1024)
            except (OSError, LookupError):
                continue  # the worker ended while we looked
        return peaks


def run_curl(arguments: Sequence[str], cwd: Path) -> tuple[str, subprocess.CompletedProcess[str]]:
    """Run the real curl binary; (the command line as a user types it, its outcome)."""
    command = ["curl", *arguments]
    proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=CURL_TIMEOUT)
    return shlex.join(command), proc


# --------------------------------------------------------------------------------------------- watching


@dataclass(frozen=True)
class Sample:
    """One GET /jobs/<id> while the job ran."""

    seconds: float  # since the upload was sent
    run: int  # 1 before the restart, 2 after
    status: str
    done: int
    total: int
    progress_percent: float
    asins_per_second: float | None
    eta_seconds: float | None
    cached: int


@dataclass
class Restart:
    """What happened around the restart."""

    at_seconds: float  # SIGTERM, since the upload
    done_at_sigterm: int  # the last GET /jobs/<id> before it
    partial_inputs: list[str]  # of the NDJSON results read just before SIGTERM, in the order served
    stop_seconds: float  # SIGTERM to the master's exit
    exit_status: int | None
    start_seconds: float  # new master started to /health answering with every worker
    stored_at_exit: set[str]  # inputs whose answer the job store held once the old server had exited
    stored_rows_at_exit: int
    stored_source: str
    term_time: float  # time.time() of SIGTERM
    exit_time: float  # time.time() when the master had exited
    peak_rss_mib: list[float]


def get_job(http: httpx.Client, job_id: str) -> dict[str, Any] | None:
    """The job's view, or None while the service does not answer."""
    try:
        response = http.get(f"/jobs/{job_id}")
    except httpx.TransportError:
        return None
    return response.json() if response.status_code == 200 else None


def sample_of(view: Mapping[str, Any], seconds: float, run: int) -> Sample:
    """A Sample from the job's JSON view."""
    counts = view["counts"]
    return Sample(
        seconds=seconds,
        run=run,
        status=view["status"],
        done=counts["done"],
        total=counts["total"],
        progress_percent=view["progress_percent"],
        asins_per_second=view.get("asins_per_second"),
        eta_seconds=view.get("eta_seconds"),
        cached=counts.get("cached", 0),
    )


def is_subsequence(values: Iterable[str], of: Sequence[str]) -> bool:
    """True when `values` appear in `of` in the same order (each matched to a later position)."""
    position = 0
    for value in values:
        while position < len(of) and of[position] != value:
            position += 1
        if position == len(of):
            return False
        position += 1
    return True


def partial_results(http: httpx.Client, job_id: str) -> list[str]:
    """The inputs of the results answered so far (NDJSON), in the order served."""
    response = http.get(f"/jobs/{job_id}/results", params={"format": "ndjson"})
    response.raise_for_status()
    return [json.loads(line)["input"] for line in response.text.splitlines() if line.strip()]


def stored_inputs(data_dir: Path, job_id: str, fallback: list[str]) -> tuple[set[str], int, str]:
    """Inputs whose answer is stored in DATA_DIR/jobs.sqlite (read while no service runs); the NDJSON snapshot if unreadable."""
    path = data_dir / "jobs.sqlite"
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            rows = conn.execute("SELECT input FROM job_items WHERE job_id = ? AND entry IS NOT NULL", (job_id,)).fetchall()
    except sqlite3.Error as exc:
        print(f"bench.jobs: cannot read {path} ({exc}); using the results read before SIGTERM", file=sys.stderr)
        return set(fallback), len(fallback), "results read just before SIGTERM (jobs.sqlite unreadable)"
    return {row[0] for row in rows}, len(rows), "DATA_DIR/jobs.sqlite, read while no service ran"


# --------------------------------------------------------------------------------------------- checking the CSV


@dataclass(frozen=True)
class Expected:
    """The emulator's facts of one ASIN in the US marketplace, computed locally (no SP-API call)."""

    title: str
    sales_rank: int | None


def expected_facts(asin: str) -> Expected:
    """Title and headline sales rank (first display-group rank, else the best classification rank) of an emulated item."""
    item = build_item(asin, MARKETPLACE_ID, ["summaries", "salesRanks"])
    if item is None:
        raise LookupError(f"the emulator has no item {asin}")
    title = next(s["itemName"] for s in item["summaries"] if s["marketplaceId"] == MARKETPLACE_ID)
    ranks = next((r for r in item["salesRanks"] if r["marketplaceId"] == MARKETPLACE_ID), {})
    display = [r["rank"] for r in ranks.get("displayGroupRanks", [])]
    classification = [r["rank"] for r in ranks.get("classificationRanks", [])]
    rank = display[0] if display else min(classification, default=None)
    return Expected(title, rank)


def _uncell(text: str) -> str:
    """A result cell as written by the service: a leading ' guards formula-like text."""
    return text[1:] if text.startswith("'") else text


@dataclass
class CsvCheck:
    """results.csv against the input."""

    rows: int = 0
    missing_columns: list[str] = field(default_factory=list)
    in_order: bool = False
    first_mismatch: str = ""
    by_kind: Counter[str] = field(default_factory=Counter)  # rows of each kind
    wrong: Counter[str] = field(default_factory=Counter)  # "kind: what" -> rows that did not come back as expected
    examples: dict[str, str] = field(default_factory=dict)  # first wrong row of each kind of problem
    error_codes: Counter[str] = field(default_factory=Counter)
    unranked: int = 0  # matched rows whose item has no sales rank in the emulator's catalog (cell rightly empty)
    cached_rows: int = 0
    bytes: int = 0

    def fail(self, what: str, example: str) -> None:
        """Count one row that did not come back as expected."""
        self.wrong[what] += 1
        self.examples.setdefault(what, example)

    def held(self, *kinds: str) -> bool:
        """No wrong row of these kinds."""
        return not any(n for what, n in self.wrong.items() if what.split(":")[0] in kinds)

    def wrong_text(self, *kinds: str) -> str:
        """The wrong rows of these kinds, with one example each."""
        parts = [f"{what}: {n} (e.g. {self.examples[what]})" for what, n in self.wrong.items() if what.split(":")[0] in kinds]
        return "; ".join(parts) or "none wrong"


def _check_matched(check: CsvCheck, row: SupplierRow, out: Mapping[str, str], facts: dict[str, Expected]) -> None:
    asin = row.asins[0]
    where = f"row {row.sku} UPC {row.upc}"
    if out["success"] != "true" or out["asin"] != asin:
        check.fail(f"{row.kind}: not {asin}", f"{where}: asin={out['asin']!r} error={out['error_code']!r}")
        return
    expected = facts.setdefault(asin, expected_facts(asin))
    if _uncell(out["title"]) != expected.title:
        check.fail(f"{row.kind}: wrong title", f"{where}: {out['title']!r}")
    if expected.sales_rank is None:
        check.unranked += 1
        if out["sales_rank"]:
            check.fail(f"{row.kind}: sales rank where the catalog has none", f"{where}: {out['sales_rank']!r}")
    elif out["sales_rank"] != str(expected.sales_rank):
        check.fail(f"{row.kind}: wrong sales rank", f"{where}: {out['sales_rank']!r}, expected {expected.sales_rank}")


def _check_two_asins(check: CsvCheck, row: SupplierRow, out: Mapping[str, str], facts: dict[str, Expected]) -> None:
    where = f"row {row.sku} UPC {row.upc}"
    found = {out["asin"], *out["other_asins"].split()}
    if out["success"] != "true" or found != set(row.asins):
        check.fail(f"{TWO_ASINS}: not both ASINs", f"{where}: asin={out['asin']!r} other_asins={out['other_asins']!r}")
        return
    ranks = {asin: facts.setdefault(asin, expected_facts(asin)).sales_rank for asin in row.asins}
    ranked = {asin: rank for asin, rank in ranks.items() if rank is not None}
    if ranked and out["asin"] != min(ranked, key=lambda asin: ranked[asin]):
        check.fail(f"{TWO_ASINS}: not the best-ranked first", f"{where}: asin={out['asin']} ranks={ranks}")


def check_results(path: Path, rows: Sequence[SupplierRow]) -> CsvCheck:
    """Every row of results.csv against its input row and the emulator's catalog."""
    check = CsvCheck(bytes=path.stat().st_size if path.exists() else 0)
    if not path.exists():
        check.first_mismatch = "no results.csv"
        return check
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        check.missing_columns = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        out_rows = list(reader)
    check.rows = len(out_rows)
    if check.missing_columns:
        check.first_mismatch = f"columns missing: {', '.join(check.missing_columns)}"
        return check
    inputs = [out["input"] for out in out_rows]
    expected_inputs = [row.upc for row in rows]
    check.in_order = inputs == expected_inputs
    if not check.in_order:
        index = next((i for i, (a, b) in enumerate(zip(inputs, expected_inputs, strict=False)) if a != b), min(len(inputs), len(rows)))
        check.first_mismatch = f"first difference at data row {index + 1} of {len(rows)} ({len(inputs)} rows in results.csv)"
    facts: dict[str, Expected] = {}
    for row, out in zip(rows, out_rows, strict=False):
        check.by_kind[row.kind] += 1
        check.error_codes[out["error_code"] or "(none)"] += 1
        check.cached_rows += out.get("cached") == "true"
        if out["input"] != row.upc:
            continue  # counted by in_order
        where = f"row {row.sku} UPC {row.upc}"
        if row.kind in (MATCHED, DUPLICATE):
            _check_matched(check, row, out, facts)
        elif row.kind == TWO_ASINS:
            _check_two_asins(check, row, out, facts)
        elif row.kind == BAD_CHECK and (out["error_code"] != "INVALID_IDENTIFIER" or out["asin"]):
            check.fail(f"{BAD_CHECK}: not INVALID_IDENTIFIER", f"{where}: error={out['error_code']!r} asin={out['asin']!r}")
        elif row.kind == UNMATCHED and (out["error_code"] != "NOT_FOUND" or out["asin"]):
            check.fail(f"{UNMATCHED}: not NOT_FOUND", f"{where}: error={out['error_code']!r} asin={out['asin']!r}")
    return check


# --------------------------------------------------------------------------------------------- the call log


@dataclass(frozen=True)
class CallFigures:
    """searchCatalogItems as the emulator logged it, split at the restart."""

    calls: int
    throttled: int
    other_statuses: dict[str, int]
    other_operations: dict[str, int]
    tokens: int
    next_pages: int  # calls that fetched the next page of a search (20 codes matched more than 20 items)
    codes_asked: int  # codes in every lookup (next pages not counted), repeats included
    distinct_codes: int
    repeated_codes: int  # codes asked in more than one lookup
    repeated_in_flight: int  # of those, codes first asked by run 1 but not stored when it exited
    refetched_after_restart: int  # codes stored before the restart and asked again after it
    refetched_examples: list[str]
    run2_codes: int  # distinct codes looked up after the restart
    run1_calls: int
    run2_calls: int
    drain_calls: int  # run 1's calls between SIGTERM and the master's exit (the step in flight finishing)
    run1_span: float  # first to last call of run 1
    run2_span: float
    pause: float  # last call of run 1 to first call of run 2
    first_call_after_upload: float
    max_codes_per_call: int


def lookups_of(search: Sequence[dict[str, Any]], items_per_code: Mapping[str, int]) -> list[dict[str, Any]]:
    """The calls that looked codes up, without those that fetched a search's next page.

    The call log does not show pageToken: a call repeating the previous lookup of the same codes is
    its next page while the codes' items (by the supplier list) fill more than one page of 20.
    """
    seen: Counter[tuple[str, ...]] = Counter()
    lookups = []
    for call in search:
        key = tuple(call["asins"])
        pages = max(1, -(-sum(items_per_code.get(code, 1) for code in key) // CODES_PER_CALL))
        if seen[key] % pages == 0:
            lookups.append(call)
        seen[key] += 1
    return lookups


def analyse_calls(calls: list[dict[str, Any]], since: float, restart: Restart | None, items_per_code: Mapping[str, int]) -> CallFigures:
    """Count calls, 429s and codes looked up more than once; split them at the restart (the old master's exit)."""
    window = [c for c in calls if c["time"] >= since]
    search = [c for c in window if c["operation"] == "searchCatalogItems"]
    lookups = lookups_of([c for c in search if c["status"] != THROTTLED], items_per_code)
    per_code = Counter(code for c in lookups for code in c["asins"])
    split = restart.exit_time if restart else float("inf")
    run1 = [c for c in search if c["time"] <= split]
    run2 = [c for c in search if c["time"] > split]
    asked_by_run1 = {code for c in lookups if c["time"] <= split for code in c["asins"]}
    asked_by_run2 = {code for c in lookups if c["time"] > split for code in c["asins"]}
    stored = restart.stored_at_exit if restart else set()
    refetched = sorted(asked_by_run2 & stored)
    repeated = {code for code, n in per_code.items() if n > 1}
    in_flight = {code for code in repeated if code in asked_by_run1 and code not in stored}
    other_ops = Counter(c["operation"] for c in window if c["operation"] not in ("searchCatalogItems", "lwaToken"))
    return CallFigures(
        calls=len(search),
        throttled=sum(1 for c in search if c["status"] == THROTTLED),
        other_statuses={str(s): n for s, n in Counter(c["status"] for c in search if c["status"] not in (200, THROTTLED)).items()},
        other_operations=dict(other_ops),
        tokens=sum(1 for c in window if c["operation"] == "lwaToken"),
        next_pages=len(search) - sum(1 for c in search if c["status"] == THROTTLED) - len(lookups),
        codes_asked=sum(per_code.values()),
        distinct_codes=len(per_code),
        repeated_codes=len(repeated),
        repeated_in_flight=len(in_flight),
        refetched_after_restart=len(refetched),
        refetched_examples=refetched[:5],
        run2_codes=len(asked_by_run2),
        run1_calls=len(run1),
        run2_calls=len(run2),
        drain_calls=sum(1 for c in run1 if restart is not None and c["time"] >= restart.term_time),
        run1_span=run1[-1]["time"] - run1[0]["time"] if run1 else 0.0,
        run2_span=run2[-1]["time"] - run2[0]["time"] if run2 else 0.0,
        pause=run2[0]["time"] - run1[-1]["time"] if run1 and run2 else 0.0,
        first_call_after_upload=search[0]["time"] - since if search else 0.0,
        max_codes_per_call=max((len(c["asins"]) for c in search), default=0),
    )


# --------------------------------------------------------------------------------------------- the run


@dataclass
class JobsRun:
    """Everything one run measured."""

    rows: list[SupplierRow]
    workdir: Path
    port: int
    emulator_command: str
    service_command: str
    upload_command: str
    upload_seconds: float
    upload_answer: dict[str, Any]
    upload_http_status: str  # from gunicorn's access log: the README's curl command prints only the body
    job_id: str
    poll: float
    samples: list[Sample]
    restart: Restart | None
    final_view: dict[str, Any]
    wall: float  # upload sent to the job seen done
    download_command: str
    download_seconds: float
    download_ok: bool
    csv: CsvCheck
    calls: CallFigures
    peak_rss_run2: list[float]
    log_errors: list[str]
    timed_out: bool


def _access_log_status(log_path: Path, request: str) -> str:
    """The status gunicorn's access log gives the first request starting with `request` ("?" if none)."""
    pattern = re.compile(r'"' + re.escape(request) + r'[^"]*" (\d{3}) ')
    for line in log_path.read_text(errors="replace").splitlines():
        match = pattern.search(line)
        if match:
            return match.group(1)
    return "?"


def _log_errors(log_path: Path) -> list[str]:
    """Lines of gunicorn.log at ERROR or CRITICAL, and tracebacks."""
    if not log_path.exists():
        return []
    lines = log_path.read_text(errors="replace").splitlines()
    return [line for line in lines if " ERROR " in line or "[ERROR]" in line or " CRITICAL " in line or line.startswith("Traceback")]


def _restart(http: httpx.Client, service: RestartableService, job_id: str, last: Sample, started: float, data_dir: Path) -> Restart:
    """Read the partial results, SIGTERM gunicorn, wait for its exit, note what is stored, start it again on the same port."""
    inputs = partial_results(http, job_id)
    peaks = service.peak_rss_mib()
    at = time.monotonic() - started
    print(f"bench.jobs: {last.done}/{last.total} done at +{at:.0f} s: SIGTERM to gunicorn {service.pid}", file=sys.stderr, flush=True)
    term_time = time.time()
    service.stop()
    exit_time = time.time()
    stop_seconds, exit_status = service.last_stop or (0.0, None)
    stored, stored_rows, source = stored_inputs(data_dir, job_id, inputs)
    print(
        f"bench.jobs: gunicorn exited ({exit_status}) after {stop_seconds:.1f} s; {stored_rows} rows stored; starting it again",
        file=sys.stderr,
    )
    begun = time.monotonic()
    service.start()
    start_seconds = time.monotonic() - begun
    return Restart(
        at_seconds=at,
        done_at_sigterm=last.done,
        partial_inputs=inputs,
        stop_seconds=stop_seconds,
        exit_status=exit_status,
        start_seconds=start_seconds,
        stored_at_exit=stored,
        stored_rows_at_exit=stored_rows,
        stored_source=source,
        term_time=term_time,
        exit_time=exit_time,
        peak_rss_mib=peaks,
    )


@dataclass
class Watched:
    """What watching the job saw."""

    samples: list[Sample]
    restart: Restart | None
    view: dict[str, Any]  # the last GET /jobs/<id>
    timed_out: bool


def watch(
    http: httpx.Client,
    service: RestartableService,
    job_id: str,
    answer: dict[str, Any],
    started: float,
    *,
    poll: float,
    restart_at: float,
    timeout: float,
    data_dir: Path,
) -> Watched:
    """GET /jobs/<id> every `poll` s until the job is finished; restart the service once `restart_at` of it is done."""
    watched = Watched(samples=[], restart=None, view=answer, timed_out=False)
    deadline = started + timeout
    while True:
        current = get_job(http, job_id)
        now = time.monotonic()
        if current is not None:
            watched.view = current
            sample = sample_of(current, now - started, 1 if watched.restart is None else 2)
            watched.samples.append(sample)
            if len(watched.samples) % 10 == 1:
                print(
                    f"bench.jobs: +{sample.seconds:.0f} s {sample.status} {sample.done}/{sample.total} "
                    f"{sample.asins_per_second}/s ETA {sample.eta_seconds} s",
                    file=sys.stderr,
                    flush=True,
                )
            if sample.status in FINISHED:
                return watched
            if watched.restart is None and sample.done >= restart_at * sample.total:
                watched.restart = _restart(http, service, job_id, sample, started, data_dir)
                continue
        if now > deadline:
            watched.timed_out = True
            return watched
        time.sleep(poll)


def run_jobs(row_count: int, seed: int, workdir: Path, poll: float, restart_at: float, timeout: float) -> JobsRun:
    """Start the emulator and gunicorn, upload, watch, restart halfway, download, check; keep every file in `workdir`."""
    workdir.mkdir(parents=True, exist_ok=True)
    data_dir = workdir / "data"
    log_path = workdir / "gunicorn.log"
    supplier = workdir / "supplier.csv"
    rows = make_supplier_rows(row_count, seed)
    write_supplier_csv(supplier, rows)
    with Emulator() as emulator:
        settings = {"SP_API_ENDPOINT": emulator.url, "DATA_DIR": str(data_dir), **SERVICE_SETTINGS}
        service = RestartableService(settings, port=free_port(), log_path=log_path)
        env_text = " ".join(f"{k}={v}" for k, v in settings.items())
        service_command = f"{env_text} PORT={service.port} {shlex.join(SERVICE_COMMAND)} >>{log_path.name} 2>&1"
        emulator_command = f"python -m emulator --port {emulator.port} --host 127.0.0.1 --exit-with-parent  # rate 2/s, burst 2"
        with service, httpx.Client(base_url=service.url, timeout=30.0) as http:
            print(f"bench.jobs: emulator {emulator.url}, gunicorn {service.url}, files in {workdir}", file=sys.stderr, flush=True)
            since = time.time()
            started = time.monotonic()
            upload_command, proc = run_curl(["-F", f"file=@{supplier.name}", f"localhost:{service.port}/jobs/{COUNTRY}"], workdir)
            upload_seconds = time.monotonic() - started
            try:
                answer = json.loads(proc.stdout)
            except ValueError:
                raise RuntimeError(
                    f"the upload did not answer JSON (curl exit {proc.returncode}): {proc.stdout[:500]} {proc.stderr[-500:]}"
                ) from None
            job_id = answer.get("id")
            if not job_id:
                raise RuntimeError(f"the upload did not give a job id: {proc.stdout[:500]}")
            print(f"bench.jobs: {upload_command} -> job {job_id} in {upload_seconds:.2f} s", file=sys.stderr, flush=True)
            watched = watch(http, service, job_id, answer, started, poll=poll, restart_at=restart_at, timeout=timeout, data_dir=data_dir)
            wall = time.monotonic() - started
            begun = time.monotonic()
            download_command, download = run_curl(
                [f"localhost:{service.port}/jobs/{job_id}/results?format=csv", "-o", "results.csv"], workdir
            )
            download_seconds = time.monotonic() - begun
            peak_run2 = service.peak_rss_mib()
        calls = emulator.calls()
    (workdir / "calls.json").write_text(json.dumps(calls, indent=1))
    _write_progress(workdir / "progress.csv", watched.samples)
    return JobsRun(
        rows=rows,
        workdir=workdir,
        port=service.port,
        emulator_command=emulator_command,
        service_command=service_command,
        upload_command=upload_command,
        upload_seconds=upload_seconds,
        upload_answer=answer,
        upload_http_status=_access_log_status(log_path, f"POST /jobs/{COUNTRY} "),
        job_id=job_id,
        poll=poll,
        samples=watched.samples,
        restart=watched.restart,
        final_view=watched.view,
        wall=wall,
        download_command=download_command,
        download_seconds=download_seconds,
        download_ok=download.returncode == 0,
        csv=check_results(workdir / "results.csv", rows),
        calls=analyse_calls(calls, since, watched.restart, {row.upc: len(row.asins) for row in rows}),
        peak_rss_run2=peak_run2,
        log_errors=_log_errors(log_path),
        timed_out=watched.timed_out,
    )


def _write_progress(path: Path, samples: Sequence[Sample]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(("seconds", "run", "status", "done", "total", "progress_percent", "asins_per_second", "eta_seconds", "cached"))
        for s in samples:
            writer.writerow(
                (f"{s.seconds:.1f}", s.run, s.status, s.done, s.total, s.progress_percent, s.asins_per_second, s.eta_seconds, s.cached)
            )


# --------------------------------------------------------------------------------------------- the report


def checks(run: JobsRun) -> list[tuple[str, str, bool]]:
    """(what must hold, what was measured, held)."""
    c, k, r = run.csv, run.calls, run.restart
    total = len(run.rows)
    final_counts = run.final_view.get("counts", {})
    uploaded = run.upload_answer.get("counts", {}).get("total")
    planted = {kind: c.by_kind[kind] for kind in (BAD_CHECK, UNMATCHED, TWO_ASINS)}
    return [
        (
            "one curl uploads the CSV: 202, a job id, every row counted",
            f"HTTP {run.upload_http_status}, job {run.upload_answer.get('status')}, total {uploaded}",
            run.upload_http_status == "202" and uploaded == total,
        ),
        (
            "the job is done",
            f"{run.final_view.get('status')} ({final_counts.get('done')}/{final_counts.get('total')})"
            + (" TIMED OUT" if run.timed_out else ""),
            run.final_view.get("status") == "done" and not run.timed_out,
        ),
        (
            "the server was restarted mid-job and the job resumed by itself",
            f"SIGTERM at {r.done_at_sigterm}/{total}, exit status {r.exit_status}" if r else "no restart (the job ended first)",
            r is not None and r.done_at_sigterm < total and r.exit_status == 0 and run.final_view.get("status") == "done",
        ),
        ("complete CSV: one row per input row", f"{c.rows} rows of {total}", run.download_ok and c.rows == total and not c.missing_columns),
        ("every row once, in input order", "yes" if c.in_order else c.first_mismatch, c.in_order),
        (
            "matched rows: the right ASIN, title and sales rank",
            c.wrong_text(MATCHED, DUPLICATE) + f" ({c.unranked} unranked items left empty)",
            c.in_order and c.held(MATCHED, DUPLICATE),
        ),
        (
            "wrong check digits: INVALID_IDENTIFIER",
            f"{planted[BAD_CHECK]} rows; {c.wrong_text(BAD_CHECK)}",
            c.in_order and c.held(BAD_CHECK),
        ),
        ("unmatched UPCs: NOT_FOUND", f"{planted[UNMATCHED]} rows; {c.wrong_text(UNMATCHED)}", c.in_order and c.held(UNMATCHED)),
        (
            "two-ASIN codes: best-ranked ASIN, the other in other_asins",
            f"{planted[TWO_ASINS]} rows; {c.wrong_text(TWO_ASINS)}",
            c.in_order and c.held(TWO_ASINS),
        ),
        (
            "partial results while running are in input order",
            f"{len(r.partial_inputs)} rows read before SIGTERM" if r else "not read",
            r is not None and bool(r.partial_inputs) and is_subsequence(r.partial_inputs, [row.upc for row in run.rows]),
        ),
        ("0 × 429 from SP-API", str(k.throttled), k.throttled == 0),
        (
            "nothing stored before the restart fetched again after it",
            f"{k.refetched_after_restart} of the {len(r.stored_at_exit) if r else 0} codes stored at the exit, "
            f"with {k.run2_codes} codes asked after the restart"
            + (f" (e.g. {', '.join(k.refetched_examples)})" if k.refetched_examples else ""),
            r is not None and k.refetched_after_restart == 0,
        ),
        (
            "no code asked twice, except calls in flight at the restart",
            f"{k.repeated_codes} codes asked twice, {k.repeated_in_flight} of them in flight at the restart",
            k.repeated_codes == k.repeated_in_flight,
        ),
    ]


def _rate(value: float | None) -> str:
    return "–" if value is None else f"{value:g}"


def _per_second(calls: int, span: float) -> str:
    """Calls per second between the first and the last of `calls` calls `span` seconds apart."""
    return f"{(calls - 1) / span:.2f}" if calls > 1 and span > 0 else "–"


def _progress_rows(run: JobsRun, limit: int = 16) -> list[tuple[str, ...]]:
    """About `limit` samples: evenly spread, plus the last before and the first after the restart, and the last."""
    samples = run.samples
    if not samples:
        return []
    chosen = {round(i * (len(samples) - 1) / max(1, limit - 1)) for i in range(limit)}
    for i in range(1, len(samples)):
        if samples[i].run != samples[i - 1].run:
            chosen |= {i - 1, i}
    done_at = run.wall
    rows = []
    for i in sorted(chosen):
        s = samples[i]
        rows.append(
            (
                f"{s.seconds:.0f}",
                str(s.run),
                s.status,
                f"{s.done}/{s.total}",
                f"{s.progress_percent:g}",
                _rate(s.asins_per_second),
                _rate(s.eta_seconds),
                f"{max(0.0, done_at - s.seconds):.0f}",
            )
        )
    return rows


def report_markdown(run: JobsRun, command: str, date: str, machine: str, load_after: str) -> str:
    """The whole of bench/JOBS.md."""
    c, k, r = run.csv, run.calls, run.restart
    total = len(run.rows)
    counts = run.final_view.get("counts", {})
    distinct_valid = len({row.upc for row in run.rows if row.kind != BAD_CHECK})
    working = max(1e-9, k.run1_span + k.run2_span)
    codes_per_second = k.distinct_codes / working
    rss = (r.peak_rss_mib if r else []) + run.peak_rss_run2
    fill = k.distinct_codes / max(1, k.calls * CODES_PER_CALL)
    figures = [
        ("rows in supplier.csv", f"{total} ({', '.join(f'{kind}: {n}' for kind, n in sorted(c.by_kind.items()))})"),
        ("distinct valid UPCs (what SP-API must be asked)", f"{distinct_valid}; asked: {k.distinct_codes}"),
        ("upload (curl, 202 answered)", f"{run.upload_seconds:.2f} s, job {run.job_id}, source `{run.upload_answer.get('source')}`"),
        ("wall: upload sent → job seen done", f"{run.wall:.1f} s (polled every {run.poll:g} s)"),
        (
            "job counts at the end",
            ", ".join(f"{name} {counts.get(name)}" for name in ("total", "done", "succeeded", "failed", "cached")),
        ),
        ("results.csv (curl -o)", f"{c.rows} rows, {c.bytes / 1e6:.1f} MB in {run.download_seconds:.2f} s"),
        ("error codes in results.csv", ", ".join(f"{code}: {n}" for code, n in sorted(c.error_codes.items()))),
        (
            "searchCatalogItems calls",
            f"{k.calls} (run 1: {k.run1_calls}, run 2: {k.run2_calls}); {k.next_pages} of them next pages (20 codes matching more "
            f"than 20 items: a two-ASIN code); statuses other than 200 and 429: {k.other_statuses or 'none'}",
        ),
        ("other SP-API operations", ", ".join(f"{op}: {n}" for op, n in k.other_operations.items()) or "none"),
        ("LWA token fetches", str(k.tokens)),
        ("429s", str(k.throttled)),
        (
            "calls × 20 vs distinct codes asked",
            f"{k.calls} × {CODES_PER_CALL} = {k.calls * CODES_PER_CALL} for {k.distinct_codes} distinct codes asked "
            f"({fill:.1%}); most codes in one call: {k.max_codes_per_call}",
        ),
        ("codes looked up more than once (next pages apart)", f"{k.repeated_codes} ({k.repeated_in_flight} in flight at the restart)"),
        ("codes stored before the restart asked again after it", str(k.refetched_after_restart)),
        ("first SP-API call after the upload", f"+{k.first_call_after_upload:.2f} s"),
        (
            "calls/s while working",
            f"run 1: {_per_second(k.run1_calls, k.run1_span)}, run 2: {_per_second(k.run2_calls, k.run2_span)} (plan 2, paced to 1.9)",
        ),
        (
            "mean ASINs/s",
            f"{total / run.wall:.1f} rows/s over the wall; {codes_per_second:.1f} distinct codes/s while SP-API was being called "
            f"({codes_per_second / CEILING:.0%} of the ceiling {CEILING:g}/s = 2 calls/s × 20 × (1 − {SP_API_RATE_MARGIN}))",
        ),
        ("worker peak RSS (VmHWM)", ", ".join(f"{v:.0f}" for v in rss) + " MiB (run 1's two workers, then run 2's)" if rss else "–"),
        ("ERROR lines / tracebacks in gunicorn.log", str(len(run.log_errors))),
    ]
    if r is not None:
        figures[4:4] = [
            (
                "restart",
                f"SIGTERM at +{r.at_seconds:.1f} s with {r.done_at_sigterm}/{total} done; "
                f"partial results read just before: {len(r.partial_inputs)} rows",
            ),
            ("SIGTERM → gunicorn exited", f"{r.stop_seconds:.2f} s, exit status {r.exit_status}; {k.drain_calls} SP-API calls meanwhile"),
            (
                "rows stored when it exited",
                f"{r.stored_rows_at_exit}: {r.stored_rows_at_exit - r.done_at_sigterm} answered after SIGTERM ({r.stored_source})",
            ),
            ("gunicorn started again → /health and 2 workers", f"{r.start_seconds:.2f} s"),
            ("job paused (last SP-API call of run 1 → first of run 2)", f"{k.pause:.2f} s"),
        ]
    held = [(what, measured, "yes" if ok else "NO") for what, measured, ok in checks(run)]
    lines = [
        "# Jobs: a 10,000-row supplier CSV, a restart halfway, a complete CSV back",
        "",
        "_Written by `make bench-jobs` (bench/jobs.py); it rewrites this whole file, so edit the script, not the file._",
        "",
        f"* date: {date}",
        f"* machine: {machine}; {load_after}",
        f"* command: `{command}`",
        f"* files: `{run.workdir}` (supplier.csv, results.csv, gunicorn.log, progress.csv, calls.json, data/)",
        "",
        "## Commands",
        "",
        "```bash",
        "# SP-API emulator, its own process (emulator.process.start_emulator_process), the real plan",
        run.emulator_command,
        "# the service, as production starts it (cwd: the repository; DATA_DIR fresh)",
        run.service_command,
        f"# in {run.workdir}:",
        run.upload_command,
        f"curl localhost:{run.port}/jobs/{run.job_id}   # every {run.poll:g} s (the script uses httpx)",
        "kill -TERM <gunicorn master>   # at half way; wait for it to exit, then the same gunicorn command again",
        run.download_command,
        "```",
        "",
        "`RATE_LIMIT_CALLS=1000`: the default window, 20 calls in any 60 s (the seed README's), would",
        f"make the {k.calls} calls take {k.calls / 20:.0f} minutes; with 1000 the SP-API plan (2 requests/s, burst 2)",
        "is what binds. Everything else is the production default: `JOB_BACKEND=sqlite`, `CACHE_BACKEND=sqlite`,",
        "`RATE_LIMIT_BACKEND=sqlite`, `MAX_WORKERS=5`, `MAX_BATCH_SIZE=100`, `LOG_LEVEL=INFO`.",
        "",
        "## Figures",
        "",
        markdown_table(("figure", "value"), figures),
        "",
        "SP-API figures come from the emulator's call log (`GET /_emulator/calls`), never from the",
        'service. Run 1 is before the SIGTERM, run 2 after the restart. "Distinct codes/s while SP-API',
        'was being called" leaves out the restart\'s pause; "rows/s over the wall" includes it.',
        "",
        "## Progress (GET /jobs/<id>)",
        "",
        markdown_table(
            ("s since upload", "run", "status", "done/total", "%", "asins_per_second", "eta_seconds", "actual s left"), _progress_rows(run)
        ),
        "",
        f"All {len(run.samples)} samples are in progress.csv. `asins_per_second` and `eta_seconds` are the",
        'service\'s, measured over the current run (they start again after the restart); "actual s left"',
        "is the time until the script saw the job done.",
        "",
        "## Must hold",
        "",
        markdown_table(("must hold", "measured", "held"), held),
        "",
    ]
    if run.log_errors:
        lines += ["ERROR lines in gunicorn.log (first 10):", "", "```", *run.log_errors[:10], "```", ""]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.jobs",
        description=__doc__.splitlines()[0],
        epilog=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rows", type=int, default=10_000, help="rows in the supplier CSV (default 10000)")
    parser.add_argument("--seed", type=int, default=20261129, help="seed of the supplier list (default 20261129)")
    parser.add_argument("--poll", type=float, default=3.0, help="seconds between GET /jobs/<id> (default 3)")
    parser.add_argument("--restart-at", type=float, default=0.5, help="fraction done at which gunicorn is restarted (default 0.5)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="give up on the job after this many seconds (default 1800)")
    parser.add_argument("--workdir", type=Path, default=None, help="where the run's files go (default: a new temporary directory)")
    parser.add_argument("--output", default=str(RESULTS_FILE), help="Markdown file to write (default bench/JOBS.md; '-' prints only)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run it; print and write the report; exit 1 if anything that must hold did not."""
    args = build_parser().parse_args(argv)
    if args.rows < 200:
        raise SystemExit("bench.jobs: --rows must be at least 200 (planted rows need room)")
    machine = machine_summary()
    date = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    command = shlex.join(["python", "-m", "bench.jobs", *(argv if argv is not None else sys.argv[1:])])
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-jobs-"))
    run = run_jobs(args.rows, args.seed, workdir, args.poll, args.restart_at, args.timeout)
    load_after = f"1-minute load average {os.getloadavg()[0]:.2f} after the run"
    text = report_markdown(run, command, date, machine, load_after)
    print(text)
    if args.output != "-":
        Path(args.output).write_text(text)
        print(f"bench.jobs: wrote {args.output}", file=sys.stderr)
    return 0 if all(ok for _, _, ok in checks(run)) else 1


if __name__ == "__main__":
    sys.exit(main())
