"""The client side of the bench: ASINs, batch and single-ASIN load, and wrk runs.

Wall times are measured here, by the client, from the first request sent to the last answer.
"""

from __future__ import annotations

import random
import re
import string
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

COUNTRY = "US"
# A Fees dataset may fail NO_PRICE where the entry has no Buy Box to estimate its fees at (the emulator, like
# Amazon, has listings without one): the answer the data calls for, counted apart from real errors.
NO_PRICE_WITHOUT_BUY_BOX = "NO_PRICE (no Buy Box)"
ANSWERED = ("ok", NO_PRICE_WITHOUT_BUY_BOX)
# A batch can wait a long time on the plan; gunicorn itself gives a request 120 s.
CLIENT_TIMEOUT = httpx.Timeout(180.0, connect=10.0)
_ASIN_TAIL = string.ascii_uppercase + string.digits


class AsinPool:
    """Random ASINs ("B0" + 8 letters/digits, which the emulator always finds), never the same one twice."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.SystemRandom()
        self._issued: set[str] = set()

    def take(self, count: int) -> list[str]:
        """`count` ASINs no earlier call returned."""
        asins: list[str] = []
        while len(asins) < count:
            asin = "B0" + "".join(self._rng.choice(_ASIN_TAIL) for _ in range(8))
            if asin not in self._issued:
                self._issued.add(asin)
                asins.append(asin)
        return asins


def chunked(items: Sequence[str], size: int) -> list[list[str]]:
    """`items` cut into lists of at most `size`."""
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def dataset_outcome(entry: dict[str, Any], key: str) -> str:
    """How an entry's dataset `key` (Pricing, Offers, Fees, ...) came back: "ok", its error code, NO_PRICE_WITHOUT_BUY_BOX or "missing".

    A Fees NO_PRICE counts as NO_PRICE_WITHOUT_BUY_BOX only when neither the entry's Pricing nor its
    Offers has a Buy Box price (and neither failed): otherwise it is an error like any other.
    """
    found = entry.get(key)
    if not isinstance(found, dict):
        return "missing"
    error = found.get("error")
    if error is None:
        return "ok"
    code = str(error.get("code", "?")) if isinstance(error, dict) else "?"
    if key == "Fees" and code == "NO_PRICE":
        sources = [entry[name] for name in ("Pricing", "Offers") if isinstance(entry.get(name), dict)]
        if all("error" not in source and source.get("buy_box_price") is None for source in sources):
            return NO_PRICE_WITHOUT_BUY_BOX
    return code


@dataclass
class LoadOutcome:
    """What the clients saw: which ASINs came back successfully, errors by code, and the wall time.

    With `datasets` (entry keys such as "Pricing", "Fees"), an ASIN succeeds only when its entry says
    success and every one of those datasets is there without an error (ANSWERED); each dataset's
    outcome is counted in `dataset_counts`, and a failed one counts in `errors` as "Key:CODE".
    """

    requested: list[str]
    datasets: tuple[str, ...] = ()
    started_at: float = 0.0  # time.time() when the first request went out (compare with the emulator log)
    wall: float = 0.0  # seconds from the first request sent to the last answer received
    succeeded: set[str] = field(default_factory=set)
    errors: Counter[str] = field(default_factory=Counter)  # error code (or HTTP status) -> ASINs
    dataset_counts: Counter[tuple[str, str]] = field(default_factory=Counter)  # (entry key, dataset_outcome) -> ASINs
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def ok(self) -> int:
        """How many of the requested ASINs were answered with success: true."""
        return len(self.succeeded.intersection(self.requested))

    @property
    def total(self) -> int:
        """How many ASINs were requested."""
        return len(self.requested)

    def record(self, asin: str, entry: dict[str, Any] | None, fallback: str) -> None:
        """Count one ASIN's answer (`entry` None: no usable answer, counted under `fallback`)."""
        with self._lock:
            if entry is not None and entry.get("success") is True:
                outcomes = {key: dataset_outcome(entry, key) for key in self.datasets}
                for key, outcome in outcomes.items():
                    self.dataset_counts[(key, outcome)] += 1
                    if outcome not in ANSWERED:
                        self.errors[f"{key}:{outcome}"] += 1
                if all(outcome in ANSWERED for outcome in outcomes.values()):
                    self.succeeded.add(asin)
                return
            error = entry.get("error") if isinstance(entry, dict) else None
            self.errors[error.get("code", fallback) if isinstance(error, dict) else fallback] += 1

    def error_summary(self) -> str:
        """e.g. "THROTTLED×12, HTTP 502×1"; empty when nothing failed."""
        return ", ".join(f"{code}×{count}" for code, count in self.errors.most_common())

    def dataset_count(self, key: str, outcome: str) -> int:
        """How many entries had dataset `key` come back as `outcome`."""
        return self.dataset_counts[(key, outcome)]

    def dataset_errors(self) -> int:
        """Datasets that came back failed or missing (NO_PRICE_WITHOUT_BUY_BOX is no error), over every entry."""
        return sum(n for (_, outcome), n in self.dataset_counts.items() if outcome not in ANSWERED)

    def dataset_summary(self) -> str:
        """e.g. "Pricing: ok×100; Fees: ok×76, NO_PRICE (no Buy Box)×24"; empty without datasets."""
        parts = []
        for key in self.datasets:
            counts = sorted(((o, n) for (k, o), n in self.dataset_counts.items() if k == key), key=lambda item: (item[0] != "ok", -item[1]))
            parts.append(f"{key}: " + (", ".join(f"{outcome}×{n}" for outcome, n in counts) or "none"))
        return "; ".join(parts)


def _timed(outcome: LoadOutcome, clients: int, jobs: Iterable[Any], work: Callable[[httpx.Client, Any], None]) -> LoadOutcome:
    """Run `work(client, job)` for every job on `clients` threads; fill in the start time and wall time."""
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    with httpx.Client(timeout=CLIENT_TIMEOUT, limits=limits) as http, ThreadPoolExecutor(max_workers=clients) as pool:
        outcome.started_at = time.time()
        started = time.perf_counter()
        for future in [pool.submit(work, http, job) for job in jobs]:
            future.result()
        outcome.wall = time.perf_counter() - started
    return outcome


def post_batch(http: httpx.Client, url: str, asins: list[str], outcome: LoadOutcome, include: Sequence[str] = ()) -> None:
    """POST one batch (with `include`'s datasets, if any) and count every ASIN's entry."""
    body: dict[str, Any] = {"asins": asins, "include": list(include)} if include else {"asins": asins}
    try:
        response = http.post(f"{url}/asin/batch/{COUNTRY}", json=body)
    except httpx.TransportError as exc:
        for asin in asins:
            outcome.record(asin, None, type(exc).__name__)
        return
    entries = response.json().get("results", []) if response.status_code == 200 else []
    by_asin = {entry.get("asin"): entry for entry in entries if isinstance(entry, dict)}
    missing = "MISSING" if response.status_code == 200 else f"HTTP {response.status_code}"
    for asin in asins:
        outcome.record(asin, by_asin.get(asin), missing)


def get_single(http: httpx.Client, url: str, asin: str, outcome: LoadOutcome) -> None:
    """GET /asin/<asin> and count its answer."""
    try:
        response = http.get(f"{url}/asin/{asin}", params={"country": COUNTRY})
    except httpx.TransportError as exc:
        outcome.record(asin, None, type(exc).__name__)
        return
    try:
        body = response.json()
    except ValueError:
        body = None
    outcome.record(asin, body if isinstance(body, dict) else None, f"HTTP {response.status_code}")


def fetch_batches(url: str, batches: list[list[str]], clients: int, include: Sequence[str] = ()) -> LoadOutcome:
    """Send `batches` to POST /asin/batch/US from `clients` concurrent clients (each takes the next batch).

    With `include` (dataset names: "pricing", "fees", ...), each batch asks for those datasets, and an ASIN
    succeeds only with every one of them (LoadOutcome.datasets).
    """
    keys = tuple(name.capitalize() for name in include)  # services/datasets.py ENTRY_KEYS
    outcome = LoadOutcome(requested=[asin for batch in batches for asin in batch], datasets=keys)
    return _timed(outcome, clients, batches, lambda http, batch: post_batch(http, url, batch, outcome, include))


def fetch_singles(url: str, asins: list[str], clients: int) -> LoadOutcome:
    """GET /asin/<asin> once per ASIN from `clients` concurrent client threads."""
    outcome = LoadOutcome(requested=list(asins))
    return _timed(outcome, clients, asins, lambda http, asin: get_single(http, url, asin, outcome))


# ---------------------------------------------------------------------------------------- wrk


@dataclass(frozen=True)
class WrkRun:
    """One wrk run: throughput, latency percentiles and anything that went wrong."""

    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: int  # connect + read + write errors and timeouts (wrk's default timeout is 2 s)

    @property
    def clean(self) -> bool:
        """True when every response was 2xx/3xx and no socket error or timeout happened."""
        return self.non_2xx == 0 and self.socket_errors == 0


_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def _latency_ms(text: str, percentile: str) -> float:
    match = re.search(rf"^\s*{percentile}%\s+([\d.]+)(us|ms|s|m|h)\s*$", text, re.MULTILINE)
    if match is None:
        raise ValueError(f"no {percentile}% latency in wrk's output:\n{text}")
    return float(match.group(1)) * _UNIT_MS[match.group(2)]


def parse_wrk(text: str) -> WrkRun:
    """A WrkRun from `wrk --latency` output."""
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.MULTILINE)
    requests = re.search(r"^\s*(\d+) requests in", text, re.MULTILINE)
    if rate is None or requests is None:
        raise ValueError(f"unexpected wrk output:\n{text}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    return WrkRun(
        requests_per_s=float(rate.group(1)),
        p50_ms=_latency_ms(text, "50"),
        p99_ms=_latency_ms(text, "99"),
        requests=int(requests.group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(n) for n in sockets.groups()) if sockets else 0,
    )


def write_path_script(paths: Sequence[str], destination: Path) -> Path:
    """A wrk Lua script that requests `paths` in turn, over and over."""
    listed = ",\n".join(f'  "{path}"' for path in paths)
    destination.write_text(
        f"""-- generated by bench/load.py: GET each path in turn
local paths = {{
{listed}
}}
local i = 0
request = function()
  i = (i % #paths) + 1
  return wrk.format("GET", paths[i])
end
"""
    )
    return destination


def run_wrk(url: str, *, threads: int, connections: int, seconds: int, script: Path | None = None) -> WrkRun:
    """Run `wrk -tT -cC -dSs --latency [-s script] url` and parse what it prints."""
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if script is not None:
        command += ["-s", str(script)]
    done = subprocess.run([*command, url], capture_output=True, text=True, timeout=seconds + 60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} {url} failed with status {done.returncode}:\n{done.stdout}{done.stderr}")
    return parse_wrk(done.stdout)


def wait_until_idle(url: str, *, concurrency: int, fast: float = 0.2, timeout: float = 45.0) -> bool:
    """Wait until `concurrency` simultaneous GETs of `url` all answer within `fast` seconds; False on timeout.

    Requests wrk gave up on (its timeout is 2 s) may still hold server threads, e.g. waiting for a
    rate-limit slot; the next wrk run must not start against a half-busy server.
    """

    def quick(http: httpx.Client) -> bool:
        started = time.perf_counter()
        try:
            http.get(url)
        except httpx.TransportError:
            return False
        return time.perf_counter() - started < fast

    deadline = time.monotonic() + timeout
    limits = httpx.Limits(max_connections=concurrency)
    with httpx.Client(timeout=httpx.Timeout(timeout), limits=limits) as http, ThreadPoolExecutor(max_workers=concurrency) as pool:
        while time.monotonic() < deadline:
            if all(pool.map(lambda _: quick(http), range(concurrency))):
                return True
            time.sleep(0.5)
    return False
