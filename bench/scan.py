"""Scenario 9: a scan of a supplier list (`POST /jobs/US?scan=true`, a CSV body), the naive scan, re-scans, and memory.

The parts, each on a fresh SP-API emulator and a fresh gunicorn (empty DATA_DIR) unless said otherwise:

1. A generated supplier CSV (`Supplier SKU,Description,UPC,Cost,Pack`) of `scan_rows` rows: the UPCs
   of synthetic items "B00BEN" + 4 digits (`emulator.catalog.item_identifiers`, type UPC), pack sizes
   1, 6 or 12, and a cost per supplier pack drawn so that the cost of one unit Amazon sells is
   0.2–0.9 × the item's reference price (its New Buy Box as the emulator's offer book decides it,
   else its lowest FBA offer, else its lowest offer), skewed to the high end (0.2 + 0.7·√r) so
   that some rows pass the default profile (ROI 30%, profit 3.00) and most do not; plus a few bad
   rows (empty, non-numeric and negative costs, UPCs in scientific notation, wrong check digits, a
   pack that is not a number, a valid UPC no item carries).
2. The scan, cold, at the real plans: the CSV POSTed as one scan job, its status polled, its results
   read as CSV (and `?verdict=BUY`). Then the same list at costs ×1.5 and ×0.7, on the same service
   (its cache warm): the first must make no SP-API call, the second only the deep checks of the rows
   that newly pass.
3. The naive scan of a `scan_naive_rows`-row prefix of the list (eligibility is 1/s per ASIN, so the
   whole list would take over 16 minutes the naive way): one batch job of the same UPCs with
   include=pricing,offers,fees,restrictions,eligibility, every operation for every row, against the
   scan job of the same prefix, each on its own fresh stack; the naive verdicts are worked out from its
   datasets with services/scan.py's own rules.
4. Memory: a `scan_memory_rows`-row scan on an emulator whose every plan is raised to 50/s burst 50
   (the service learns the rate from x-amzn-RateLimit-Limit), VmHWM of each gunicorn worker after it.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import math
import pickle
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, TypeVar

import httpx

from bench.processes import ROOT, Emulator, ServerFailed, Service, peak_rss_kib
from bench.report import Row, Target, ratio, seconds
from bench.scenarios import COMMON_SETTINGS, fresh_stack
from bench.upstream import REAL_PLANS, THROTTLED, Plan, UpstreamCalls
from emulator.catalog import build_item
from emulator.defaults import MARKETPLACES
from emulator.identifiers import unmatched_code, upc_for_asin
from emulator.offers import buy_box, of_condition, offer_book
from emulator.plans import CATALOG_OPERATIONS, MODEL_PLANS
from services import errors
from services.scan import (
    AMAZON_ON_LISTING,
    DATA_UNAVAILABLE,
    FULL,
    INVALID_IDENTIFIER,
    MULTIPLE_MATCHES,
    NOT_FOUND,
    RANK_ABOVE_MAX,
    Scanner,
    _judge_eligibility,
    _judge_restrictions,
    _offer_price,
    _Row,
    _scan_entry,
)
from services.scan_profile import Profile
from utils.supplier_list import SupplierRow, read_supplier_csv

COUNTRY = "US"
MARKETPLACE_ID = MARKETPLACES[COUNTRY]
CLIENT_TIMEOUT = httpx.Timeout(120.0, connect=10.0)
POLL_SECONDS = 0.25
JOB_TIMEOUT = 3600.0
# Scenario 9's targets.
WALL_OVER_FLOOR = 1.2
NAIVE_SPEEDUP = 3.0
MEMORY_LIMIT_MIB = 200.0
HIGH_FACTOR, LOW_FACTOR = Decimal("1.5"), Decimal("0.7")
# The service's own window: RATE_LIMIT_CALLS=20 in 60 s by default would pace the scan's ~400 calls
# at one every 3 s; raised so that the plans bind (the most calls seen in any 60 s is reported).
SCAN_SETTINGS = {"WEB_CONCURRENCY": "2", "RATE_LIMIT_BACKEND": "sqlite", "RATE_LIMIT_CALLS": "1000"}
MEMORY_SETTINGS = {**SCAN_SETTINGS, "RATE_LIMIT_CALLS": "100000"}
# The memory run's emulator: every operation 50/s burst 50.
RAISED = Plan(50.0, 50)
RAISED_PLANS: dict[str, Plan] = {operation: RAISED for operation in (*CATALOG_OPERATIONS, *MODEL_PLANS)}
RAISED_ARGS = ("--rate", "50", "--burst", "50", "--plans", json.dumps({op: [RAISED.rate, RAISED.burst] for op in MODEL_PLANS}))
NAIVE_INCLUDE = ("pricing", "offers", "fees", "restrictions", "eligibility")
DATASET_KEYS = ("Pricing", "Offers", "Fees", "Restrictions", "Eligibility")
RESOLVE_OPS = ("searchCatalogItems", "getCatalogItem")
SCREEN_OPS = ("getCompetitivePricing", "getMyFeesEstimates", "getMyFeesEstimateForASIN")
OFFERS_OPS = ("getItemOffersBatch", "getItemOffers")
DEEP_OPS = (*OFFERS_OPS, "getListingsRestrictions", "getItemEligibilityPreview")
OPERATION_ORDER = (*RESOLVE_OPS, *SCREEN_OPS, *DEEP_OPS)
SHORT = {
    "searchCatalogItems": "search",
    "getCatalogItem": "item",
    "getCompetitivePricing": "pricing",
    "getMyFeesEstimates": "fees",
    "getMyFeesEstimateForASIN": "fees1",
    "getItemOffersBatch": "offersB",
    "getItemOffers": "offers1",
    "getListingsRestrictions": "restr",
    "getItemEligibilityPreview": "elig",
}
SKU = "Supplier SKU"
T = TypeVar("T")
HEADER = (SKU, "Description", "UPC", "Cost", "Pack")

# -------------------------------------------------------------------------------- the supplier list

GOOD = "good"
# (kind, the reason code the row must come back with); spread over the list.
BAD_ROWS = (
    ("empty cost", "INVALID_COST"),
    ("UPC in scientific notation", "INVALID_IDENTIFIER"),
    ("wrong check digit", "INVALID_IDENTIFIER"),
    ("non-numeric cost", "INVALID_COST"),
    ("pack not a number", "INVALID_PACK"),
    ("UPC no item carries", "NOT_FOUND"),
    ("negative cost", "INVALID_COST"),
    ("UPC in scientific notation", "INVALID_IDENTIFIER"),
    ("wrong check digit", "INVALID_IDENTIFIER"),
)
_BRANDS = ("Northwind", "Acme", "Contoso", "Fabrikam", "Globex", "Initech", "Umbrella", "Vandelay")
_NOUNS = ("Travel Mug", "Cutting Board", "Phone Stand", "Desk Lamp", "Water Bottle", "Dog Leash", "Yoga Mat", "Spice Rack")
_SIZES = ("16 oz", "Pack of 2", "Large", "Small", "12-Inch", "Black", "Assorted Colors")
PACKS = ((1, 0.5), (6, 0.3), (12, 0.2))
CENT = Decimal("0.01")


@dataclass(frozen=True)
class ListRow:
    """One line of the generated supplier CSV and what it stands for."""

    sku: str
    description: str
    upc: str  # the UPC cell as written
    cost: Decimal | None  # the supplier's cost of one pack (None: the cost cell is bad)
    cost_cell: str  # written when `cost` is None
    pack: str
    asin: str
    kind: str  # GOOD or one of BAD_ROWS' kinds
    expected: str | None  # the reason code a bad row must carry

    def cells(self, factor: Decimal) -> list[str]:
        """The row's cells with its cost multiplied by `factor` (a bad cost stays as it is)."""
        cost = self.cost_cell if self.cost is None else f"{(self.cost * factor).quantize(CENT, rounding=ROUND_HALF_UP)}"
        return [self.sku, self.description, self.upc, cost, self.pack]


def synthetic_asin(prefix: str, n: int) -> str:
    """prefix + n, zero-padded to 10 characters ("B00BEN" + 4 digits)."""
    return f"{prefix}{n:0{10 - len(prefix)}d}"


def reference_price(asin: str) -> float | None:
    """What the item sells for: its New Buy Box (the emulator's offer book), else its lowest FBA offer, else its lowest offer."""
    book = offer_book(asin, MARKETPLACE_ID)
    if book is None:
        return None
    winner = buy_box(book, "New", False)
    if winner is not None:
        return winner.landed(False)
    new = of_condition(book, "New")
    fba = [offer.landed(False) for offer in new if offer.fba]
    return min(fba or [offer.landed(False) for offer in new], default=None)


def amazon_pack(asin: str) -> int:
    """How many units one listing sells (the catalog summary's packageQuantity)."""
    item = build_item(asin, MARKETPLACE_ID, ["summaries"])
    quantity = item["summaries"][0].get("packageQuantity") if item else None
    return quantity if isinstance(quantity, int) and quantity > 0 else 1


def supplier_list(rows: int, *, prefix: str = "B00BEN", seed: int = 9, bad: bool = True) -> list[ListRow]:
    """`rows` supplier rows, the bad ones spread evenly (position (k + 0.5) · rows / len(BAD_ROWS))."""
    rng = random.Random(seed)
    bad_at = {int((k + 0.5) * rows / len(BAD_ROWS)): kind for k, kind in enumerate(BAD_ROWS)} if bad else {}
    found: list[ListRow] = []
    for n in range(rows):
        asin = synthetic_asin(prefix, n)
        upc = upc_for_asin(asin)
        pack = rng.choices([p for p, _ in PACKS], weights=[w for _, w in PACKS])[0]
        reference = reference_price(asin) or 20.0
        share = 0.2 + 0.7 * math.sqrt(rng.random())
        cost = (Decimal(str(reference)) * Decimal(str(share)) * pack / amazon_pack(asin)).quantize(CENT, rounding=ROUND_HALF_UP)
        description = f"{rng.choice(_BRANDS)} {rng.choice(_NOUNS)}, {rng.choice(_SIZES)}"
        row = ListRow(f"SUP-{n + 1:05d}", description, upc, cost, "", str(pack), asin, GOOD, None)
        if n in bad_at:
            kind, expected = bad_at[n]
            row = _spoil(row, kind, expected, n)
        found.append(row)
    return found


def _spoil(row: ListRow, kind: str, expected: str, n: int) -> ListRow:
    changes: dict[str, Any] = {"kind": kind, "expected": expected}
    if kind == "empty cost":
        changes.update(cost=None, cost_cell="")
    elif kind == "non-numeric cost":
        changes.update(cost=None, cost_cell="call for price")
    elif kind == "negative cost":
        changes.update(cost=None, cost_cell="-2.50")
    elif kind == "UPC in scientific notation":
        changes.update(upc=f"{int(row.upc):.5E}")  # as Excel shows 763071430328: 7.63071E+11
    elif kind == "wrong check digit":
        changes.update(upc=row.upc[:-1] + str((int(row.upc[-1]) + 1) % 10))
    elif kind == "pack not a number":
        changes.update(pack="half case")
    elif kind == "UPC no item carries":
        changes.update(upc=unmatched_code("UPC", n))
    return ListRow(**{**row.__dict__, **changes})


def supplier_csv(rows: Sequence[ListRow], factor: Decimal = Decimal(1)) -> bytes:
    """The list as a UTF-8 CSV (descriptions with commas are quoted), costs × `factor`."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(HEADER)
    for row in rows:
        writer.writerow(row.cells(factor))
    return buffer.getvalue().encode()


# ------------------------------------------------------------------------------------------ the client


def _job_done(http: httpx.Client, url: str, job_id: str) -> dict[str, Any]:
    """Poll GET /jobs/<id> until the job is finished; its last view."""
    deadline = time.monotonic() + JOB_TIMEOUT
    while time.monotonic() < deadline:
        view = http.get(f"{url}/jobs/{job_id}").json()
        if view.get("status") in ("done", "failed", "cancelled"):
            if view["status"] != "done":
                raise ServerFailed(f"job {job_id} ended {view['status']}: {view.get('error')}")
            return view
        time.sleep(POLL_SECONDS)
    raise ServerFailed(f"job {job_id} did not finish within {JOB_TIMEOUT:.0f} s")


def _results_csv(http: httpx.Client, url: str, job_id: str, verdict: str | None = None) -> list[dict[str, str]]:
    params = {"format": "csv", **({"verdict": verdict} if verdict else {})}
    response = http.get(f"{url}/jobs/{job_id}/results", params=params)
    response.raise_for_status()
    return list(csv.DictReader(io.StringIO(response.text.lstrip("\ufeff"))))


@dataclass
class Run:
    """One job: its wall (POST sent to the last results read), what reached SP-API meanwhile, and its answers."""

    label: str
    total: int
    started_at: float
    wall: float
    upstream: UpstreamCalls
    view: dict[str, Any]
    plans: Mapping[str, Plan] = field(default_factory=lambda: REAL_PLANS)
    results: list[dict[str, str]] = field(default_factory=list)  # scan: the result CSV's rows
    buy_rows: list[dict[str, str]] = field(default_factory=list)  # scan: ?verdict=BUY's rows
    entries: list[dict[str, Any]] = field(default_factory=list)  # naive: the job's JSON entries
    skus: list[str] = field(default_factory=list)  # the input's SKUs, in order

    @property
    def floor(self) -> float:
        """Each operation's max(0, admitted − burst) / rate at its plan, the largest (stages overlapping)."""
        return self.upstream.floor(self.plans)

    @property
    def wall_over_floor(self) -> float | None:
        return self.wall / self.floor if self.floor > 0 else None

    @property
    def efficiency(self) -> float | None:
        return self.floor / self.wall if self.floor > 0 and self.wall > 0 else None

    @property
    def answered(self) -> int:
        """Result rows with a verdict (scan), or entries (naive)."""
        if self.entries:
            return len(self.entries)
        return sum(1 for row in self.results if row.get("verdict") in ("BUY", "REVIEW", "SKIP"))

    @property
    def in_order(self) -> bool:
        """Exactly one result row per input row, in input order."""
        return [row.get(SKU) for row in self.results] == self.skus

    def verdicts(self) -> Counter[str]:
        return Counter(row.get("verdict", "") for row in self.results)

    def verdict_text(self) -> str:
        counts = self.verdicts()
        return ", ".join(f"{verdict} {counts.get(verdict, 0)}" for verdict in ("BUY", "REVIEW", "SKIP"))

    def per_operation(self) -> str:
        """e.g. "searchCatalogItems 50, getCompetitivePricing 50 (floor 98.00 s at 0.5/s burst 1), ..."."""
        return self.upstream.per_operation(self.plans)

    def row(self, notes: str = "") -> Row:
        return Row(
            "9",
            self.label,
            ok=f"{self.answered}/{self.total}",
            calls=str(self.upstream.total),
            throttled=str(self.upstream.throttled),
            wall=seconds(self.wall),
            floor=seconds(self.floor),
            wall_over_floor=ratio(self.wall_over_floor),
            efficiency=ratio(self.efficiency),
            throughput=f"{self.total / self.wall:.1f} rows/s" if self.wall > 0 else "–",
            notes=notes,
        )


@contextlib.contextmanager
def _service_errors(service: Service, what: str) -> Iterator[None]:
    """An HTTP failure talking to the service becomes ServerFailed carrying what gunicorn printed (and whether it still runs)."""
    try:
        yield
    except httpx.HTTPError as exc:
        proc = getattr(service, "_proc", None)
        state = "not running" if proc is None else ("running" if proc.poll() is None else f"exited with status {proc.returncode}")
        raise ServerFailed(f"{what}: {type(exc).__name__}: {exc} (gunicorn master {state})", service.output(limit=20_000)) from exc


def run_scan_job(
    emulator: Emulator, service: Service, rows: Sequence[ListRow], label: str, *, factor: Decimal = Decimal(1), plans=REAL_PLANS
) -> Run:
    """POST the list as a scan job, wait for it, read its results (CSV, and ?verdict=BUY)."""
    body = supplier_csv(rows, factor)
    with _service_errors(service, f"scan job ({label})"), httpx.Client(timeout=CLIENT_TIMEOUT) as http:
        started_at, started = time.time(), time.perf_counter()
        response = http.post(f"{service.url}/jobs/{COUNTRY}", params={"scan": "true"}, content=body, headers={"Content-Type": "text/csv"})
        if response.status_code != 202:
            raise ServerFailed(f"POST /jobs/{COUNTRY}?scan=true answered {response.status_code}", response.text[:2000])
        job_id = response.json()["id"]
        view = _job_done(http, service.url, job_id)
        results = _results_csv(http, service.url, job_id)
        wall = time.perf_counter() - started
        buy_rows = _results_csv(http, service.url, job_id, "BUY")
    upstream = UpstreamCalls.from_log(emulator.calls(), since=started_at, until=started_at + wall)
    run = Run(label, len(rows), started_at, wall, upstream, view, plans, results=results, buy_rows=buy_rows)
    run.skus = [row.sku for row in rows]
    return run


def run_naive_job(emulator: Emulator, service: Service, rows: Sequence[ListRow], label: str) -> Run:
    """One batch job of the rows' UPC cells with every dataset included; its JSON results."""
    body = {"identifiers": [row.upc for row in rows], "identifier_type": "UPC", "include": list(NAIVE_INCLUDE)}
    with _service_errors(service, f"naive job ({label})"), httpx.Client(timeout=CLIENT_TIMEOUT) as http:
        started_at, started = time.time(), time.perf_counter()
        response = http.post(f"{service.url}/jobs/{COUNTRY}", json=body)
        if response.status_code != 202:
            raise ServerFailed(f"POST /jobs/{COUNTRY} answered {response.status_code}", response.text[:2000])
        job_id = response.json()["id"]
        view = _job_done(http, service.url, job_id)
        answer = http.get(f"{service.url}/jobs/{job_id}/results", params={"format": "json"})
        answer.raise_for_status()
        entries = answer.json()["results"]
        wall = time.perf_counter() - started
    upstream = UpstreamCalls.from_log(emulator.calls(), since=started_at, until=started_at + wall)
    run = Run(label, len(rows), started_at, wall, upstream, view, entries=entries)
    run.skus = [row.sku for row in rows]
    return run


# ----------------------------------------------------------------------- the naive scan's verdicts


@dataclass(frozen=True)
class NaiveVerdict:
    """A row's verdict worked out from the naive datasets; `fee_price_differs`: its fees were estimated at another price."""

    verdict: str
    reasons: tuple[str, ...]
    fee_price_differs: bool


def naive_verdicts(body: bytes, entries: Sequence[dict[str, Any]], profile: Profile) -> list[NaiveVerdict]:
    """Every row's verdict by services/scan.py's rules (Scanner.scan's order), from the naive job's entries."""
    rows = list(read_supplier_csv(io.BytesIO(body)).rows)
    return [_naive_verdict(row, entry, profile) for row, entry in zip(rows, entries, strict=True)]


def _naive_verdict(row: SupplierRow, entry: dict[str, Any], profile: Profile) -> NaiveVerdict:
    product = {key: value for key, value in entry.items() if key not in DATASET_KEYS}
    found = {key: entry[key] for key in DATASET_KEYS if isinstance(entry.get(key), dict)}
    w = _Row(row, product)  # type: ignore[arg-type]
    differs = False
    error = entry.get("error") or {}
    if row.error is not None:
        w.skip(*row.error)
    elif not entry.get("success"):
        if error.get("code") in (errors.NOT_FOUND, errors.INVALID_ASIN, errors.INVALID_IDENTIFIER):
            code = NOT_FOUND if error["code"] == errors.NOT_FOUND else INVALID_IDENTIFIER
            w.skip(code, error.get("message") or code)
        else:
            w.review(DATA_UNAVAILABLE, str(error.get("message")))
    else:
        if len(entry.get("matches") or []) > 1:
            w.review(MULTIPLE_MATCHES, "several ASINs")
        rank = entry.get("SalesRank")
        if profile.max_sales_rank is not None and (rank is None or rank > profile.max_sales_rank):
            w.skip(RANK_ABOVE_MAX, "rank")
    if not w.skipped and w.asin is not None:
        differs = _naive_screen(w, found, profile)
        Scanner._judge_money(w, profile)
    if not w.skipped and w.asin is not None:
        _naive_deep_checks(w, found, profile)
    scan = _scan_entry(w, profile)["Scan"]
    return NaiveVerdict(scan["verdict"], tuple(reason["code"] for reason in scan["reasons"]), differs)


def _naive_screen(w: _Row, found: dict[str, dict[str, Any]], profile: Profile) -> bool:
    """Scanner._screen on datasets already fetched; True when the naive fees were estimated at a price other than the sale price."""
    pricing = found.get("Pricing", {}) if profile.price_source == "buy_box" else {}
    if profile.price_source == "buy_box":
        w.datasets["Pricing"] = pricing
        if pricing.get("buy_box_price") is not None:
            w.sale_price, w.price_source = Decimal(str(pricing["buy_box_price"])), "buy_box"
    if w.sale_price is None and "error" not in pricing:
        w.datasets["Offers"] = found.get("Offers", {})
        w.sale_price, w.price_source = _offer_price(w.datasets["Offers"], profile.price_source)
    if w.sale_price is None:
        return False
    fees = found.get("Fees", {})
    w.datasets["Fees"] = fees
    return fees.get("price") is not None and float(fees["price"]) != float(w.sale_price)


def _naive_deep_checks(w: _Row, found: dict[str, dict[str, Any]], profile: Profile) -> None:
    """Scanner._deep_checks on datasets already fetched."""
    w.stage = FULL
    offers = w.datasets.setdefault("Offers", found.get("Offers", {}))
    if "error" in offers:
        w.review(DATA_UNAVAILABLE, "offers")
    elif offers.get("amazon_on_listing"):
        (w.skip if profile.skip_amazon_on_listing else w.review)(AMAZON_ON_LISTING, "Amazon")
    if w.skipped:
        return
    w.datasets["Restrictions"] = found.get("Restrictions", {})
    _judge_restrictions(w, profile)
    if w.skipped or profile.fulfillment != "FBA":
        return
    w.datasets["Eligibility"] = found.get("Eligibility", {})
    _judge_eligibility(w, profile)


# -------------------------------------------------------------------------------- call-log analysis


# searchCatalogItems calls this far apart start a new job step (a step's chunks resolve within a second or two).
STEP_GAP = 4.0


def _steps(run: Run) -> list[list[dict[str, Any]]]:
    """The admitted calls cut into the job's steps: a step starts with a cluster of searchCatalogItems calls."""
    calls = sorted((c for c in run.upstream.calls if c["status"] != THROTTLED), key=lambda c: c["time"])
    steps: list[list[dict[str, Any]]] = []
    last_search: float | None = None
    for call in calls:
        if call["operation"] in RESOLVE_OPS:
            if last_search is None or call["time"] - last_search > STEP_GAP:
                steps.append([])
            last_search = call["time"]
        if not steps:
            steps.append([])
        steps[-1].append(call)
    return steps


def step_table(run: Run) -> list[str]:
    """The job's steps as the call log shows them: when each began, when its screen ended, its calls per operation (Markdown)."""
    steps = _steps(run)
    operations = [op for op in OPERATION_ORDER if any(c["operation"] == op for step in steps for c in step)]
    header = ["step", "starts +s", "lasts s", "last pricing/fees call +s", *[SHORT[op] for op in operations], "ASINs per offersB call"]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    for number, step in enumerate(steps, start=1):
        start = step[0]["time"]
        end = steps[number][0]["time"] if number < len(steps) else run.started_at + run.wall
        screen = [c["time"] for c in step if c["operation"] in SCREEN_OPS]
        counts = Counter(c["operation"] for c in step)
        batch = " ".join(str(len(c["asins"])) for c in step if c["operation"] == "getItemOffersBatch")
        cells = [str(number), f"{start - run.started_at:.1f}", f"{end - start:.1f}", f"{screen[-1] - start:.1f}" if screen else "–"]
        lines.append("| " + " | ".join([*cells, *(str(counts.get(op, 0)) for op in operations), batch or "–"]) + " |")
    return lines


def offers_batching(run: Run) -> str:
    """How full the getItemOffersBatch calls were, and the floor the same ASINs would have in calls of 20."""
    calls = [c for c in run.upstream.calls if c["operation"] == "getItemOffersBatch" and c["status"] != THROTTLED]
    if not calls:
        return "no getItemOffersBatch call"
    sizes = [len(c["asins"]) for c in calls]
    plan = run.plans["getItemOffersBatch"]
    full = math.ceil(sum(sizes) / 20)
    return (
        f"{len(calls)} getItemOffersBatch calls carried {sum(sizes)} ASINs, {sum(sizes) / len(calls):.1f} a call on average "
        f"(fewest {min(sizes)}, most {max(sizes)}; the operation takes 20); at {plan.rate:g}/s every call costs "
        f"{1 / plan.rate:g} s whatever it carries, so they alone need {plan.floor(len(calls)):.0f} s, where the same ASINs in "
        f"full calls ({full}) would need {plan.floor(full):.0f} s"
    )


def idle_report(run: Run, operation: str) -> str:
    """How long `operation`'s bucket sat full (its gaps beyond one refill interval) and which calls went out meanwhile."""
    plan = run.plans[operation]
    interval = 1.0 / plan.rate
    admitted = sorted(c["time"] for c in run.upstream.calls if c["operation"] == operation and c["status"] != THROTTLED)
    if not admitted:
        return f"{operation}: no call."
    others: Counter[str] = Counter()
    idle = admitted[0] - run.started_at
    edges = [(run.started_at, admitted[0])]
    for before, after in zip(admitted, admitted[1:], strict=False):
        if after - before > interval * 1.05:
            idle += after - before - interval
            edges.append((before + interval, after))
    tail = run.started_at + run.wall - admitted[-1]
    for start, end in edges:
        others.update(c["operation"] for c in run.upstream.calls if start <= c["time"] < end and c["operation"] != operation)
    shown = ", ".join(f"{op} {n}" for op, n in sorted(others.items(), key=lambda item: OPERATION_ORDER.index(item[0])))
    return (
        f"{operation} ({plan.rate:g}/s burst {plan.burst}, {len(admitted)} calls, floor {plan.floor(len(admitted)):.1f} s): "
        f"its first call at +{admitted[0] - run.started_at:.1f} s, its last {tail:.1f} s before the end; it waited "
        f"{idle:.1f} s in all with a token ready (before its first call and in the gaps longer than its {interval:g} s refill), "
        f"while these calls went out: {shown or 'none'}"
    )


# --------------------------------------------------------------------------------------------- result


def throttle_report(run: Run) -> list[str]:
    """Each 429: when, and how early it came against its bucket (the calls of its operation since they last paused)."""
    lines = []
    calls = sorted(run.upstream.calls, key=lambda c: c["time"])
    for index, call in enumerate(calls):
        if call["status"] != THROTTLED:
            continue
        operation, plan = call["operation"], run.plans[call["operation"]]
        mine = [c for c in calls[:index] if c["operation"] == operation and c["status"] != THROTTLED]
        run_of = [call]
        for earlier in reversed(mine):
            if run_of[-1]["time"] - earlier["time"] >= 1 / plan.rate:
                break
            run_of.append(earlier)
        first, n = run_of[-1], len(run_of)
        allowed = max(0, n - plan.burst) / plan.rate
        lines.append(
            f"{operation} at +{call['time'] - run.started_at:.3f} s: call {n} of a run that began "
            f"{call['time'] - first['time']:.3f} s earlier (from a full bucket of {plan.burst} at {plan.rate:g}/s, call {n} may "
            f"come {allowed:.3f} s after the first)"
        )
    return lines


def _binding(run: Run) -> str:
    """The operation whose floor is the run's."""
    floors = run.upstream.floors(run.plans)
    return max(floors, key=floors.__getitem__) if floors else "no call"


def _throttled_text(run: Run) -> str:
    """e.g. "getListingsRestrictions 1"."""
    counts = Counter(c["operation"] for c in run.upstream.calls if c["status"] == THROTTLED)
    return ", ".join(f"{op} {n}" for op, n in counts.items())


@dataclass
class ScanResult:
    """Scenario 9: the cold scan, the re-scans, the naive comparison and the memory run."""

    list_rows: list[ListRow]
    full: Run
    high: Run
    low: Run
    prefix: Run
    naive: Run
    naive_verdicts: list[NaiveVerdict]
    memory: Run | None
    memory_kib: dict[int, int]
    settings: dict[str, str]
    # The scan's code as hashed when the scenario started and when it ended (CODE_FILES: path -> sha256).
    versions: tuple[dict[str, str], dict[str, str]] = ({}, {})

    # -- derived ------------------------------------------------------------------------------

    @property
    def speedup(self) -> float:
        return self.naive.wall / self.prefix.wall if self.prefix.wall > 0 else float("inf")

    @property
    def floor_ratio(self) -> float:
        """The naive floor over the prefix scan's: the most the plans let the scan gain with the calls each made."""
        return self.naive.floor / self.prefix.floor if self.prefix.floor > 0 else float("inf")

    @property
    def call_ratio(self) -> float:
        return self.naive.upstream.total / self.prefix.upstream.total if self.prefix.upstream.total else float("inf")

    def bad_rows_answered(self) -> tuple[int, int, list[str]]:
        """(bad rows carrying their expected reason, bad rows, the ones that did not)."""
        wrong = []
        bad = [(i, r) for i, r in enumerate(self.list_rows) if r.kind != GOOD]
        for index, row in bad:
            got = self.full.results[index].get("reasons", "") if index < len(self.full.results) else ""
            if row.expected not in got.split(";"):
                wrong.append(f"{row.sku} ({row.kind}): {got or 'no reason'}")
        return len(bad) - len(wrong), len(bad), wrong

    def buy_filter_ok(self) -> bool:
        """?verdict=BUY answers exactly the BUY rows, in order."""
        return [r.get(SKU) for r in self.full.buy_rows] == [r.get(SKU) for r in self.full.results if r.get("verdict") == "BUY"]

    def verdict_comparison(self) -> tuple[int, list[str], Counter[tuple[str, str]]]:
        """(naive BUY rows, those the scan did not mark BUY, (naive, scan) verdict pairs over every row)."""
        pairs: Counter[tuple[str, str]] = Counter()
        missed = []
        buys = 0
        for index, naive in enumerate(self.naive_verdicts):
            scan = self.prefix.results[index].get("verdict", "") if index < len(self.prefix.results) else "missing"
            pairs[(naive.verdict, scan)] += 1
            if naive.verdict == "BUY":
                buys += 1
                if scan != "BUY":
                    missed.append(f"{self.list_rows[index].sku}: scan {scan} ({self.prefix.results[index].get('reasons')})")
        return buys, missed, pairs

    def newly_passing(self) -> dict[str, list[int]]:
        """Rows deep-checked at ×0.7 that were not at ×1.0, and of them those that needed each deep check."""
        newly = [
            i
            for i, (low, full) in enumerate(zip(self.low.results, self.full.results, strict=False))
            if low["stage"] == FULL != full["stage"]
        ]
        offers = [i for i in newly if not self.full.results[i].get("fba_offer_count")]
        restrictions = [i for i in newly if AMAZON_ON_LISTING not in self.low.results[i]["reasons"].split(";")]
        blocked = ("APPROVAL_REQUIRED", "NOT_ELIGIBLE", "ASIN_NOT_FOUND")
        eligibility = [i for i in restrictions if self.low.results[i].get("restriction_status") not in blocked]
        return {"newly": newly, "offers": offers, "restrictions": restrictions, "eligibility": eligibility}

    def _low_counts(self) -> tuple[Counter[str], int]:
        admitted = self.low.upstream.admitted_by_operation()
        offer_asins = sum(len(c["asins"]) for c in self.low.upstream.calls if c["operation"] in OFFERS_OPS and c["status"] != THROTTLED)
        return admitted, offer_asins

    def _all_runs(self) -> list[Run]:
        return [run for run in (self.full, self.high, self.low, self.prefix, self.naive, self.memory) if run is not None]

    # -- report -------------------------------------------------------------------------------

    def rows(self) -> list[Row]:
        need = self.newly_passing()
        _, offer_asins = self._low_counts()
        rows = [
            self.full.row(f"verdicts: {self.full.verdict_text()}; calls: {self.full.per_operation()}"),
            self.high.row(f"same list, costs ×{HIGH_FACTOR}, same service (cache warm); verdicts: {self.high.verdict_text()}"),
            self.low.row(
                f"same list, costs ×{LOW_FACTOR}; {len(need['newly'])} rows newly pass the screen; calls: "
                f"{self.low.upstream.per_operation(self.low.plans)}; offers asked for {offer_asins} ASINs; "
                f"verdicts: {self.low.verdict_text()}"
            ),
            self.prefix.row(f"fresh stack; verdicts: {self.prefix.verdict_text()}; calls: {self.prefix.per_operation()}"),
            self.naive.row(
                f"fresh stack; the scan is {self.speedup:.2f}× faster and makes {self.call_ratio:.1f}× fewer calls; "
                f"floors' ratio {self.floor_ratio:.2f}; calls: {self.naive.per_operation()}"
            ),
        ]
        if self.memory is not None:
            per_worker = ", ".join(f"{kib / 1024:.1f}" for kib in self.memory_kib.values())
            largest = max(self.memory_kib.values(), default=0) / 1024
            rows.append(
                self.memory.row(
                    f"raised plans (every operation 50/s burst 50: the CPU paces it, not the floor); VmHWM per worker (MiB): "
                    f"{per_worker}, max {largest:.1f}; "
                    f"verdicts: {self.memory.verdict_text()}"
                )
            )
        return rows

    def targets(self) -> list[Target]:
        scans = [run for run in self._all_runs() if run is not self.naive]
        throttled = [run.upstream.throttled for run in scans]
        good, bad, wrong = self.bad_rows_answered()
        floors = self.full.upstream.floors(self.full.plans)
        binding = max(floors, key=floors.__getitem__) if floors else "no call"
        limit = WALL_OVER_FLOOR * self.full.floor
        buys, missed, _ = self.verdict_comparison()
        differ = sum(1 for v in self.naive_verdicts if v.fee_price_differs)
        need = self.newly_passing()
        admitted, offer_asins = self._low_counts()
        screen_calls = sum(admitted.get(op, 0) for op in (*RESOLVE_OPS, *SCREEN_OPS))
        deep = {
            "offers": (offer_asins, len(need["offers"])),
            "restrictions": (admitted.get("getListingsRestrictions", 0), len(need["restrictions"])),
            "eligibility": (admitted.get("getItemEligibilityPreview", 0), len(need["eligibility"])),
        }
        targets = [
            Target(
                "9",
                "no 429 (every scan: cold, re-scans, prefix, memory)",
                " + ".join(str(n) for n in throttled),
                all(n == 0 for n in throttled),
            ),
            Target(
                "9",
                "no 429 (the naive scan, the batch datasets path)",
                str(self.naive.upstream.throttled) + (f" ({_throttled_text(self.naive)})" if self.naive.upstream.throttled else ""),
                self.naive.upstream.throttled == 0,
            ),
            Target(
                "9",
                f"every row answered once, in input order ({self.full.total} rows)",
                f"{len(self.full.results)} result rows, {self.full.answered} with a verdict, in order: {self.full.in_order}; "
                f"?verdict=BUY gives the {self.full.verdicts().get('BUY', 0)} BUY rows: {self.buy_filter_ok()}",
                len(self.full.results) == self.full.total == self.full.answered and self.full.in_order and self.buy_filter_ok(),
            ),
            Target(
                "9",
                "bad rows answered with their reason",
                f"{good}/{bad}" + (f" (not: {'; '.join(wrong)})" if wrong else ""),
                good == bad,
            ),
            Target(
                "9",
                f"scan wall ≤ {WALL_OVER_FLOOR} × floor",
                f"{self.full.wall:.1f} s vs {limit:.1f} s (floor {self.full.floor:.1f} s, {binding}; "
                f"wall/floor {ratio(self.full.wall_over_floor)})",
                self.full.floor > 0 and self.full.wall <= limit,
            ),
            Target(
                "9",
                f"scan ≥ {NAIVE_SPEEDUP:g}× faster than the naive scan ({self.prefix.total}-row prefix)",
                f"{self.speedup:.2f}× ({self.naive.wall:.1f} s vs {self.prefix.wall:.1f} s; floors {self.naive.floor:.0f} s vs "
                f"{self.prefix.floor:.0f} s, ratio {self.floor_ratio:.2f}); calls {self.naive.upstream.total} vs "
                f"{self.prefix.upstream.total} ({self.call_ratio:.1f}×)",
                self.speedup >= NAIVE_SPEEDUP,
            ),
            Target(
                "9",
                "same verdict for every row the naive scan marks BUY",
                f"{buys - len(missed)}/{buys}"
                + (f" (not: {'; '.join(missed)})" if missed else "")
                + (f"; {differ} rows' naive fees at another price than the scan's" if differ else ""),
                not missed,
            ),
            Target(
                "9",
                f"re-scan at costs ×{HIGH_FACTOR}: zero SP-API calls",
                str(self.high.upstream.total),
                self.high.upstream.total == 0,
            ),
            Target(
                "9",
                f"re-scan at costs ×{LOW_FACTOR}: no resolve/pricing/fees call; deep checks only for the rows newly passing",
                f"resolve/pricing/fees calls {screen_calls}; {len(need['newly'])} rows newly pass; "
                + ", ".join(f"{name} {got} (expected {want})" for name, (got, want) in deep.items())
                + " (offers: ASINs asked)",
                screen_calls == 0 and all(got == want for got, want in deep.values()),
            ),
        ]
        if self.memory is not None:
            largest = max(self.memory_kib.values(), default=0) / 1024
            targets.append(
                Target(
                    "9",
                    f"worker peak RSS < {MEMORY_LIMIT_MIB:g} MB during a {self.memory.total}-row scan",
                    f"{largest:.1f} MiB (VmHWM, largest of {len(self.memory_kib)} workers); "
                    f"{self.memory.answered}/{self.memory.total} rows, in order: {self.memory.in_order}",
                    0 < largest < MEMORY_LIMIT_MIB and self.memory.in_order,
                )
            )
        return targets

    def _versions_line(self) -> str:
        before, after = self.versions
        changed = [name for name in before if before[name] != after.get(name)]
        listed = ", ".join(f"{name} {digest[:12]}" for name, digest in before.items())
        return f"Code measured (sha256 at the start of the scenario): {listed}; " + (
            f"CHANGED while the scenario ran: {', '.join(changed)} (servers started later ran the newer code)."
            if changed
            else "unchanged when it ended."
        )

    def details(self) -> list[str]:
        buys, missed, pairs = self.verdict_comparison()
        kinds = Counter(row.kind for row in self.list_rows if row.kind != GOOD)
        need = self.newly_passing()
        settings = " ".join(f"`{k}={v}`" for k, v in self.settings.items())
        floors = self.full.upstream.floors(self.full.plans)
        binding = max(floors, key=floors.__getitem__) if floors else None
        window = float(self.settings.get("RATE_LIMIT_WINDOW", 60))
        most = ", ".join(f"{run.label.split(',')[0]} {run.upstream.most_in_window(window)}" for run in self._all_runs())
        naive_eligibility = self.naive.upstream.admitted_by_operation().get("getItemEligibilityPreview", 0)
        lines = [
            f"### 9. Scan of a {self.full.total}-row supplier list",
            "",
            f"Service: {settings}, everything else the production default (`JOB_BACKEND=sqlite`, `CACHE_BACKEND=sqlite`, "
            "the default scan profile: ROI ≥ 30%, profit ≥ 3.00, FBA, Buy Box price, skip Amazon-on-listing, restricted and "
            "hazmat). The seed's own window (`RATE_LIMIT_CALLS=20` in 60 s) would pace the scan at one SP-API call every 3 s "
            f"and bind long before the plans; the bench raises it to {self.settings.get('RATE_LIMIT_CALLS')} (the other scenarios "
            f"use 120). Most SP-API calls in any {window:g} s: {most}. The emulator runs at the real plans "
            "(searchCatalogItems 2/s burst 2; getCompetitivePricing, getMyFeesEstimates, getItemOffers 0.5/s burst 1; "
            "getItemOffersBatch 0.1/s burst 1; getListingsRestrictions 5/s burst 10; getItemEligibilityPreview 1/s burst 1) "
            "except in the memory run.",
            "",
            f"The list: `{', '.join(HEADER)}`, {len(self.list_rows)} rows; UPCs of the synthetic items B00BEN0000… "
            "(`emulator.identifiers.upc_for_asin`, the UPC `emulator.catalog.item_identifiers` gives them); pack 1, 6 or 12 "
            "(weights 0.5/0.3/0.2); the cost of one supplier pack = reference price × (0.2 + 0.7·√r) × pack / Amazon's "
            "package quantity, the reference price being the item's New Buy Box as the emulator's offer book decides it "
            "(`emulator.offers.buy_box`), else its lowest FBA offer, else its lowest offer (20.00 with no offer). Bad rows: "
            + ", ".join(f"{kind} ×{n}" for kind, n in kinds.items())
            + ". Wall: the client's, from POST /jobs/US?scan=true (the CSV as the body) to the results CSV read; the "
            f"job's status is polled every {POLL_SECONDS} s. Floor: each operation's `max(0, calls − burst) / rate` over the "
            "calls the emulator admitted, the largest over operations (their buckets run side by side, so stages may overlap).",
            "",
            self._versions_line(),
            "",
            f"Cold scan calls: {self.full.per_operation()}. Stages (the job's tallies): {self.full.view.get('scan', {}).get('stages')}.",
            "",
        ]
        if binding is not None:
            over = self.full.wall_over_floor or 0.0
            lines += [
                f"Where the cold scan's time went (emulator call log, relative to the POST; wall/floor {over:.2f}):",
                "",
                *(f"* {idle_report(self.full, op)}." for op in sorted(floors, key=floors.__getitem__, reverse=True)[:4]),
                f"* Offers: {offers_batching(self.full)}.",
                "",
                "The job's steps (a step, up to 100 rows, starts with its cluster of searchCatalogItems calls; the next step "
                "starts only when every row of this one is answered; times in seconds from the step's first call):",
                "",
                *step_table(self.full),
                "",
            ]
        lines += [
            f"Re-scans, same service after the cold scan: ×{HIGH_FACTOR} costs: calls {self.high.upstream.per_operation(self.high.plans)}. "
            f"×{LOW_FACTOR} costs: {len(need['newly'])} rows reach the deep checks that did not at ×1 (stage `full` now, "
            f"`screened` before); of them {len(need['offers'])} had no Offers yet (priced from the Buy Box), "
            f"{len(need['restrictions'])} are not skipped for Amazon on the listing (so need restrictions), "
            f"{len(need['eligibility'])} pass the restrictions (so need eligibility). Its calls: "
            f"{self.low.upstream.per_operation(self.low.plans)}; {offers_batching(self.low)}.",
            "",
            f"Naive scan ({self.naive.total}-row prefix, chosen over the per-call way because it is the service's own "
            "every-dataset path with the same limiter and batching, so the difference is the scan's staging only): one "
            f'`POST /jobs/US` of `{{"identifiers": [the {self.naive.total} UPC cells], "identifier_type": "UPC", '
            f'"include": {list(NAIVE_INCLUDE)}}}` on a fresh stack, against the scan job of the same {self.prefix.total} rows '
            "on another fresh stack; both ran while the cold scan and its re-scans ran on a third (each stack has its own "
            "emulator, so its own buckets; all three are paced by their plans, as their wall/floor shows). "
            f"Floors: naive {self.naive.floor:.0f} s ({_binding(self.naive)}), scan {self.prefix.floor:.0f} s "
            f"({_binding(self.prefix)}): with the calls each made, the plans let the scan be at most {self.floor_ratio:.2f}× faster. "
            "The naive verdicts are worked out from its datasets with services/scan.py's own rules "
            "(bench/scan.py `naive_verdicts`: sale price from Pricing's Buy Box, else Offers by the profile's price source; "
            "`Scanner._judge_money`; Amazon on the listing, `_judge_restrictions`, `_judge_eligibility`, `_scan_entry`). "
            f"Naive BUY rows: {buys}, marked BUY by the scan too: {buys - len(missed)}. (naive, scan) verdict pairs over every "
            "row: "
            + ", ".join(f"{a}/{b} ×{n}" for (a, b), n in sorted(pairs.items()))
            + ". "
            + (
                f"{sum(1 for v in self.naive_verdicts if v.fee_price_differs)} rows without a Buy Box had their naive fees "
                "estimated at their lowest offer (the batch's rule) rather than the lowest FBA offer the scan prices at; their "
                "naive verdict uses those fees."
                if any(v.fee_price_differs for v in self.naive_verdicts)
                else ""
            ),
            "",
            *(
                [f"The naive scan's 429s (the batch datasets path, not the scan's): {'; '.join(throttle_report(self.naive))}.", ""]
                if self.naive.upstream.throttled
                else []
            ),
            f"Naive calls: {self.naive.per_operation()}. Scan of the prefix: {self.prefix.per_operation()}. "
            f"Offers, scan of the prefix: {offers_batching(self.prefix)}; naive: {offers_batching(self.naive)}. For the whole "
            f"{self.full.total}-row list the naive way would make about "
            f"{round(self.naive.upstream.total * self.full.total / self.naive.total)} calls "
            f"(×{self.full.total / self.naive.total:g}); its eligibility alone, one call per found row at 1/s, would take about "
            f"{naive_eligibility * self.full.total / self.naive.total:.0f} s.",
            "",
        ]
        if self.memory is not None:
            listed = ", ".join(f"pid {pid}: {kib} KiB" for pid, kib in self.memory_kib.items())
            lines += [
                f"Memory: a {self.memory.total}-row list (items B00M + 6 digits, made like the one above) scanned as one job on "
                f"an emulator started with `{' '.join(RAISED_ARGS[:4])} --plans '{RAISED_ARGS[5]}'` (every operation 50/s "
                "burst 50; the real plans would take well over an hour), `RATE_LIMIT_CALLS=100000`; VmHWM from "
                f"/proc/<pid>/status of each gunicorn worker after its results CSV was read: {listed}. Its wall "
                f"{self.memory.wall:.1f} s, calls {self.memory.per_operation()}.",
                "",
            ]
        return lines


# -------------------------------------------------------------------------------------------- the run


def _scan_profile(run: Run) -> Profile:
    return Profile().with_overrides((run.view.get("scan") or {}).get("profile"))


# The files whose code the scan runs through, hashed at the scenario's start and end (they may be edited meanwhile).
CODE_FILES = (
    "services/scan.py",
    "services/scan_profile.py",
    "services/dataset_fetch.py",
    "services/jobs/runner.py",
    "routes/jobs.py",
    "utils/supplier_list.py",
)


def code_versions() -> dict[str, str]:
    """sha256 of each of CODE_FILES ("missing" for one that is not there)."""
    found = {}
    for name in CODE_FILES:
        path = ROOT / name
        found[name] = hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "missing"
    return found


def _in_background(name: str, work: Callable[[], T]) -> Callable[[], T]:
    """Start `work` in a daemon thread (an interrupted bench must not wait for it: atexit stops its servers); join() its result."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = work()
        except BaseException as exc:  # handed to whoever joins
            box["error"] = exc

    thread = threading.Thread(target=target, name=f"bench-{name}", daemon=True)
    thread.start()

    def join() -> T:
        thread.join()
        if "error" in box:
            raise box["error"]
        return box["result"]

    return join


def _on_fresh_stack(name: str, log_dir: Path | None, work: Callable[[Emulator, Service], Run]) -> Run:
    with fresh_stack(SCAN_SETTINGS, name=name, log_dir=log_dir) as (emulator, service):
        return work(emulator, service)


def run_scan_scenario(config: Any) -> ScanResult:
    """Scenario 9 (config: bench.scenarios.BenchConfig).

    The prefix scan and the naive scan run on stacks of their own (own emulator, so own buckets) while the cold
    scan and its re-scans run: all three are paced by their plans, not by the CPU (their wall/floor shows it).
    The memory run, which the CPU paces, runs alone afterwards.
    """
    log_dir: Path | None = config.log_dir
    versions_before = code_versions()
    rows = supplier_list(config.scan_rows)
    prefix_rows = rows[: config.scan_naive_rows]
    prefix_label = f"scan of the {len(prefix_rows)}-row prefix, cold"
    naive_label = f"naive: {len(prefix_rows)}-row prefix, every dataset for every row"
    prefix_join = _in_background(
        "prefix", lambda: _on_fresh_stack("9-scan-prefix", log_dir, lambda e, s: run_scan_job(e, s, prefix_rows, prefix_label))
    )
    naive_join = _in_background(
        "naive", lambda: _on_fresh_stack("9-naive-prefix", log_dir, lambda e, s: run_naive_job(e, s, prefix_rows, naive_label))
    )
    try:
        with fresh_stack(SCAN_SETTINGS, name="9-scan", log_dir=log_dir) as (emulator, service):
            full = run_scan_job(emulator, service, rows, f"scan of {len(rows)} rows, cold (CSV job, 2 workers)")
            high = run_scan_job(emulator, service, rows, f"re-scan, costs ×{HIGH_FACTOR}", factor=HIGH_FACTOR)
            low = run_scan_job(emulator, service, rows, f"re-scan, costs ×{LOW_FACTOR}", factor=LOW_FACTOR)
    except Exception:
        # Let the other two stacks finish (and stop) before the error goes up: nothing of this scenario may outlive it.
        for join in (prefix_join, naive_join):
            with contextlib.suppress(Exception):
                join()
        raise
    prefix, naive = prefix_join(), naive_join()
    verdicts = naive_verdicts(supplier_csv(prefix_rows), naive.entries, _scan_profile(prefix))

    memory: Run | None = None
    memory_kib: dict[int, int] = {}
    if config.scan_memory_rows:
        memory_rows = supplier_list(config.scan_memory_rows, prefix="B00M", seed=10)
        with fresh_stack(MEMORY_SETTINGS, name="9-scan-memory", log_dir=log_dir, emulator_args=RAISED_ARGS) as (emulator, service):
            memory = run_scan_job(
                emulator, service, memory_rows, f"scan of {len(memory_rows)} rows, raised plans (memory)", plans=RAISED_PLANS
            )
            memory_kib = {pid: peak_rss_kib(pid) for pid in service.worker_pids()}

    settings = {**COMMON_SETTINGS, **SCAN_SETTINGS}
    result = ScanResult(rows, full, high, low, prefix, naive, verdicts, memory, memory_kib, settings, (versions_before, code_versions()))
    if log_dir is not None:
        # Everything measured, to look at again (or to work on the report) without running the scenario again.
        (log_dir / "9-result.pickle").write_bytes(pickle.dumps(result))
    return result
