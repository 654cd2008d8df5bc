"""A 2,000-row scan survives kill -9 of the whole service: it resumes, refetches nothing stored, and answers as an uninterrupted scan.

gunicorn (two workers, the embedded SQLite job backend, no result cache, so that a stored row fetched
again would show in the emulator's log) runs in a session of its own; the emulator, at plans fast
enough for the test, runs in its own process and logs the ASINs of every call of every operation.
"""

from __future__ import annotations

import json
import signal
import sqlite3
from pathlib import Path

import httpx

from emulator import catalog
from services.spapi import OPERATION_PLANS
from tests.helpers.service import EmulatorProcess, KillableService

ASINS = [f"B00K{n:06d}" for n in range(2000)]
UPCS = {next(c["identifier"] for c in catalog.item_identifiers(asin) if c["identifierType"] == "UPC"): asin for asin in ASINS}
OPERATIONS = ("searchCatalogItems", *OPERATION_PLANS)
# Fields that differ between two runs of the same scan by nature.
VOLATILE = ("fetched_at", "cached")


def supplier_csv() -> str:
    lines = ["sku,upc,cost,case pack"]
    for n, code in enumerate(UPCS):
        # One row in eight cheap enough to pass the screen: the deep checks (a call per row) stay a few hundred.
        lines.append(f"S{n},{code},{1.5 if n % 8 == 0 else 250},{[1, 6, 12][n % 3]}")
    return "\n".join(lines) + "\n"


def asked(emulator: EmulatorProcess) -> dict[tuple[str, float], list[str]]:
    """The ASINs of every call by (operation, arrival time); searchCatalogItems logs the codes it was asked for, mapped back here."""
    return {
        (operation, call["time"]): [UPCS.get(item, item) for item in call["asins"]]
        for operation in OPERATIONS
        for call in emulator.calls(operation)
    }


def stored_skus(data_dir: Path, job_id: str) -> set[str]:
    """The rows whose answers the killed service had committed, read from its job store."""
    with sqlite3.connect(data_dir / "jobs.sqlite") as conn:
        rows = conn.execute("SELECT input FROM job_items WHERE job_id = ? AND entry IS NOT NULL", (job_id,)).fetchall()
    return {json.loads(row[0])["fields"]["sku"] for row in rows}


def comparable(value: object) -> object:
    if isinstance(value, dict):
        return {k: comparable(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [comparable(v) for v in value]
    return value


def start(emulator: EmulatorProcess, data_dir: Path, log: Path) -> KillableService:
    return KillableService(emulator.url, data_dir, log, WEB_CONCURRENCY="2", CACHE_BACKEND="none", SP_API_RATE="100", SP_API_BURST="50")


def test_a_scan_killed_halfway_finishes_as_an_uninterrupted_one(tmp_path):
    plans = json.dumps(dict.fromkeys(OPERATION_PLANS, [100, 20]))
    emulator = EmulatorProcess("--rate", "100", "--burst", "50", "--plans", plans)
    data_dir, log = tmp_path / "data", tmp_path / "gunicorn.log"
    service = start(emulator, data_dir, log)
    try:
        body = supplier_csv()
        job_id = httpx.post(f"{service.url}/jobs/US?scan=true", content=body, headers={"Content-Type": "text/csv"}, timeout=60).json()["id"]
        service.wait(job_id, lambda v: v["counts"]["done"] >= 600, timeout=300)
        service.interrupt(signal.SIGKILL)
        stored = stored_skus(data_dir, job_id)
        calls_before = asked(emulator)
        assert 600 <= len(stored) < len(ASINS)
        stored_asins = {ASINS[int(sku[1:])] for sku in stored}

        service = start(emulator, data_dir, log)
        done = service.wait(job_id, lambda v: v["status"] == "done", timeout=300)
        assert done["counts"]["done"] == len(ASINS) and done["scan"]["stages"]["done"] == len(ASINS)
        results = httpx.get(f"{service.url}/jobs/{job_id}/results", timeout=60).json()["results"]
        assert [entry["input"]["sku"] for entry in results] == [f"S{n}" for n in range(len(ASINS))], "every row once, in order"
        fetched_after = {asin for key, asins in asked(emulator).items() if key not in calls_before for asin in asins}
        assert not stored_asins & fetched_after, "no stored row is fetched again"

        reference_id = httpx.post(
            f"{service.url}/jobs/US?scan=true", content=body, headers={"Content-Type": "text/csv"}, timeout=60
        ).json()["id"]
        service.wait(reference_id, lambda v: v["status"] == "done", timeout=300)
        reference = httpx.get(f"{service.url}/jobs/{reference_id}/results", timeout=60).json()["results"]
        assert comparable(results) == comparable(reference)
        assert {entry["Scan"]["verdict"] for entry in results} >= {"BUY", "SKIP"}, "the list means nothing if every row had one verdict"
    finally:
        service.stop()
        emulator.stop()
    assert "taking over from" in log.read_text()
