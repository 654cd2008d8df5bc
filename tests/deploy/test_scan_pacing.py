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
from tests.helpers.emulator_log import assert_within_plan
from tests.helpers.service import EmulatorProcess, serve_shared_by_four, stop

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
        url, proc = serve_shared_by_four(emulator.url, tmp_path / "data")
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
            assert_within_plan(emulator.calls(operation), rate, burst, operation)
        assert emulator.calls("getItemEligibilityPreview"), "the scans must have reached their deep checks"
    finally:
        emulator.stop()
