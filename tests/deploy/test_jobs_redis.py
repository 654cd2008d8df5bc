"""JOB_BACKEND=redis: two `flask jobs worker` processes share one job's parts through RQ, under one shared limiter.

Real parts throughout: a real redis-server, RQ, two worker processes started as an operator
would, the emulator in a process of its own whose call log judges the plan.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from app import create_app
from config import Settings
from emulator.process import start_emulator_process, stop_emulator_process
from tests.helpers.data import synthetic_asins
from tests.helpers.emulator_log import worst_overrun
from tests.helpers.service import ROOT, clean_env, free_port

FLASK = Path(sys.executable).parent / "flask"
RATE, BURST = 10.0, 3
ASINS = synthetic_asins(2000, start=3000)  # ten parts of 200


def worker(emulator_url: str, redis_url: str, data_dir: Path, log: Path) -> subprocess.Popen:
    env = clean_env(
        SP_API_ENDPOINT=emulator_url,
        JOB_BACKEND="redis",
        RATE_LIMIT_BACKEND="redis",
        REDIS_URL=redis_url,
        CACHE_BACKEND="none",
        DATA_DIR=str(data_dir),
        SP_API_RATE=str(RATE),
        SP_API_BURST=str(BURST),
        RATE_LIMIT_CALLS="10000",
    )
    # --burst: each worker leaves once the queue is empty.
    return subprocess.Popen([str(FLASK), "jobs", "worker", "--burst"], cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)


def test_two_workers_share_a_jobs_parts_and_the_plan(redis_url, tmp_path):
    port = free_port()
    emulator = start_emulator_process(port, extra_args=["--rate", str(RATE), "--burst", str(BURST)])
    emulator_url = f"http://127.0.0.1:{port}"
    app = create_app(
        Settings(
            sp_api_endpoint=emulator_url,
            job_backend="redis",
            rate_limit_backend="redis",
            redis_url=redis_url,
            cache_backend="none",
            data_dir=str(tmp_path / "web"),
        )
    )
    client = app.test_client()
    workers: list[subprocess.Popen] = []
    try:
        submitted = client.post("/jobs/US", json={"asins": ASINS})
        assert submitted.status_code == 202
        job_id = submitted.get_json()["id"]
        logs = [tmp_path / "worker-1.log", tmp_path / "worker-2.log"]
        workers = [worker(emulator_url, redis_url, tmp_path / f"data-{n}", log) for n, log in enumerate(logs)]
        for proc in workers:
            proc.wait(timeout=180)
        view = client.get(f"/jobs/{job_id}").get_json()
        outputs = [log.read_text() for log in logs]
        assert view["status"] == "done", outputs
        assert view["counts"]["succeeded"] == len(ASINS)
        results = client.get(f"/jobs/{job_id}/results").get_json()["results"]
        assert [entry["asin"] for entry in results] == ASINS

        # Both workers did parts of this one job.
        parts_by_worker = [output.count("Successfully completed job") for output in outputs]
        assert all(parts >= 1 for parts in parts_by_worker), parts_by_worker

        # One plan across both processes: no 429, no interval over it; every ASIN fetched once.
        calls = [c for c in httpx.get(f"{emulator_url}/_emulator/calls").json()["calls"] if c["operation"] == "searchCatalogItems"]
        assert {c["status"] for c in calls} == {200}
        assert worst_overrun([c["time"] for c in calls], RATE, BURST) <= RATE * 0.020
        fetched = [asin for c in calls for asin in c["asins"]]
        assert sorted(fetched) == sorted(ASINS)
    finally:
        for proc in workers:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        app.extensions["jobs"].stop()
        stop_emulator_process(emulator)
