"""A job survives kill -9 (or a SIGTERM restart) of the whole service: it resumes, refetches nothing stored, loses nothing.

gunicorn (two workers, the embedded SQLite job backend) runs in a session of its own so that
SIGKILL reaches the master and every worker at once, as a power cut or an OOM kill would. The
emulator runs in its own process; its call log names the ASINs of every searchCatalogItems call.
"""

from __future__ import annotations

import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers.data import synthetic_asins
from tests.helpers.service import EmulatorProcess, KillableService

RATE, BURST = 20.0, 5
ASINS = synthetic_asins(2000)
# Fields that differ between two runs of the same lookup by nature.
VOLATILE = ("fetched_at", "cached")


@pytest.fixture
def emulator_process() -> Iterator[EmulatorProcess]:
    emulator = EmulatorProcess("--rate", str(RATE), "--burst", str(BURST))
    yield emulator
    emulator.stop()


def searched(emulator: EmulatorProcess) -> list[list[str]]:
    """The ASINs of each searchCatalogItems call, in arrival order."""
    return [call["asins"] for call in emulator.calls("searchCatalogItems")]


def start_service(emulator_url: str, data_dir: Path, log: Path) -> KillableService:
    # No cache: a stored result fetched again would show in the emulator's log, not hide in a cache hit.
    return KillableService(
        emulator_url, data_dir, log, WEB_CONCURRENCY="2", SP_API_RATE=str(RATE), SP_API_BURST=str(BURST), CACHE_BACKEND="none"
    )


def stored_inputs(data_dir: Path, job_id: str) -> set[str]:
    """ASINs whose answers the killed service had committed, read from its job store."""
    with sqlite3.connect(data_dir / "jobs.sqlite") as conn:
        rows = conn.execute("SELECT input FROM job_items WHERE job_id = ? AND entry IS NOT NULL", (job_id,)).fetchall()
    return {row[0] for row in rows}


def comparable(results: list[dict]) -> list[dict]:
    return [{k: v for k, v in entry.items() if k not in VOLATILE} for entry in results]


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_a_job_survives_a_restart_and_resumes_where_it_stopped(signum, emulator_process, tmp_path):
    data_dir = tmp_path / "data"
    service = start_service(emulator_process.url, data_dir, tmp_path / "gunicorn.log")
    try:
        job_id = httpx.post(f"{service.url}/jobs/US", json={"asins": ASINS}).json()["id"]
        service.wait(job_id, lambda v: v["counts"]["done"] >= 400)
        service.interrupt(signum)
        stored = stored_inputs(data_dir, job_id)
        calls_before_kill = len(searched(emulator_process))
        assert 400 <= len(stored) < len(ASINS)

        service = start_service(emulator_process.url, data_dir, tmp_path / "gunicorn.log")
        done = service.wait(job_id, lambda v: v["status"] == "done")
        assert done["counts"]["done"] == done["counts"]["succeeded"] == len(ASINS)
        resumed = service.job(job_id)
        results = httpx.get(f"{service.url}/jobs/{job_id}/results", timeout=30).json()["results"]

        # Every item once, in order.
        assert [entry["asin"] for entry in results] == ASINS
        # Nothing stored before the kill was fetched again; only the calls in flight at the kill repeat.
        calls = searched(emulator_process)
        fetched_after = [asin for call in calls[calls_before_kill:] for asin in call]
        assert not stored & set(fetched_after)
        refetched = {asin for call in calls[:calls_before_kill] for asin in call} & set(fetched_after)
        if signum == signal.SIGKILL:
            assert len(refetched) <= 2 * 100, "at most one step of 100 ASINs per worker was in flight"
        else:
            assert not refetched, "SIGTERM lets the step in flight finish and store its answers"
        assert resumed["started_at"] is not None

        # The same list uninterrupted gives the same answers.
        reference_id = httpx.post(f"{service.url}/jobs/US", json={"asins": ASINS}).json()["id"]
        service.wait(reference_id, lambda v: v["status"] == "done")
        reference = httpx.get(f"{service.url}/jobs/{reference_id}/results", timeout=30).json()["results"]
        assert comparable(results) == comparable(reference)
    finally:
        service.stop()
    log = (tmp_path / "gunicorn.log").read_text()
    if signum == signal.SIGKILL:
        assert "taking over from" in log, log[-3000:]  # the dead worker's claim, taken over at once
    else:
        assert "taking over from" not in log, log[-3000:]  # the stopping worker let go of the job itself
