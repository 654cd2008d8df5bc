"""Two scans and batch lookups at once, under four gunicorn workers, at the models' real usage plans: no 429, no operation over its plan.

The emulator (a process of its own) is the judge: it answers 429 whenever a bucket is exceeded, and the
arrival times in its call log are replayed against each operation's plan here.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from emulator import catalog
from emulator.plans import MODEL_PLANS
from tests.helpers.emulator_log import worst_overrun
from tests.helpers.service import SHARED_BY_FOUR_WORKERS, EmulatorProcess, serve_gunicorn, stop

# The catalog's plan as the emulator serves it by default (2/s, burst 2).
CATALOG_RATE, CATALOG_BURST = 2.0, 2


def supplier_csv(prefix: str) -> str:
    lines = ["upc,cost"]
    for n in range(20):
        asin = f"B00{prefix}{n:04d}"
        code = next(c["identifier"] for c in catalog.item_identifiers(asin) if c["identifierType"] == "UPC")
        lines.append(f"{code},{[0.5, 2, 8, 30][n % 4]}")
    return "\n".join(lines) + "\n"


def test_two_scans_and_batches_keep_every_operation_within_its_plan(tmp_path):
    emulator = EmulatorProcess()
    try:
        url, proc = serve_gunicorn(
            emulator.url,
            tmp_path / "data",
            GUNICORN_THREADS="8",
            RATE_LIMIT_CALLS="10000",
            SP_API_RATE_MARGIN="0.15",  # as tests/deploy/test_shared_limiter.py: arrival jitter on a busy machine
            **SHARED_BY_FOUR_WORKERS,
        )
        try:
            with httpx.Client(base_url=url, timeout=120, headers={"Connection": "close"}) as http:
                jobs = [
                    http.post("/jobs/US?scan=true", content=supplier_csv(prefix), headers={"Content-Type": "text/csv"}).json()["id"]
                    for prefix in ("PAC", "PAD")
                ]

                def batch(n: int) -> int:
                    with httpx.Client(base_url=url, timeout=120, headers={"Connection": "close"}) as client:
                        asins = [f"B0F{n}{i:06d}" for i in range(30)]
                        return client.post("/asin/batch/US", json={"asins": asins, "include": ["pricing"]}).status_code

                with ThreadPoolExecutor(3) as pool:
                    statuses = list(pool.map(batch, range(3)))
                deadline = time.monotonic() + 240
                views = [http.get(f"/jobs/{job}").json() for job in jobs]
                while any(view["status"] != "done" for view in views) and time.monotonic() < deadline:
                    time.sleep(0.5)
                    views = [http.get(f"/jobs/{job}").json() for job in jobs]
                results = [http.get(f"/jobs/{job}/results").json()["results"] for job in jobs]
        finally:
            output = stop(proc)
        assert statuses == [200] * 3, output[-3000:]
        assert [view["status"] for view in views] == ["done", "done"], output[-3000:]
        assert [len(rows) for rows in results] == [20, 20]
        unavailable = [r for rows in results for r in rows for reason in r["Scan"]["reasons"] if reason["code"] == "DATA_UNAVAILABLE"]
        assert unavailable == [], "a throttled check is a pacing failure here"
        plans = {"searchCatalogItems": (CATALOG_RATE, CATALOG_BURST), **{op: (p.rate, p.burst) for op, p in MODEL_PLANS.items()}}
        for operation, (rate, burst) in plans.items():
            calls = emulator.calls(operation)
            assert [c["status"] for c in calls] == [200] * len(calls), f"{operation}: a 429 means the service overran its plan"
            # Replayed against the plan itself (not the margin), with 20 ms of slack for arrival jitter.
            assert worst_overrun([c["time"] for c in calls], rate, burst) <= rate * 0.020, operation
        assert emulator.calls("getItemEligibilityPreview"), "the scans must have reached their deep checks"
    finally:
        emulator.stop()
