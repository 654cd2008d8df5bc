"""JOB_BACKEND=redis: two `flask jobs worker` processes share one job's parts through RQ, under one shared limiter.

Real parts throughout: a real redis-server, RQ, two worker processes started as an operator
would, the emulator in a process of its own whose call log judges the plan.
"""

from __future__ import annotations

import subprocess
import sys
import time
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


def worker(
    emulator_url: str, redis_url: str, data_dir: Path, log: Path, *, burst: bool = True, rate: float = RATE, burst_size: int = BURST
) -> subprocess.Popen:
    """`flask jobs worker` (with --burst: it leaves once the queue is empty) as an operator starts it."""
    env = clean_env(
        SP_API_ENDPOINT=emulator_url,
        JOB_BACKEND="redis",
        RATE_LIMIT_BACKEND="redis",
        REDIS_URL=redis_url,
        CACHE_BACKEND="none",
        DATA_DIR=str(data_dir),
        SP_API_RATE=str(rate),
        SP_API_BURST=str(burst_size),
        RATE_LIMIT_CALLS="10000",
    )
    command = [str(FLASK), "jobs", "worker", *(["--burst"] if burst else [])]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)


def web_app(emulator_url: str, redis_url: str, tmp_path: Path):
    """The service's app on the Redis job backend: it takes jobs and queues their parts; the workers answer them."""
    return create_app(
        Settings(
            sp_api_endpoint=emulator_url,
            job_backend="redis",
            rate_limit_backend="redis",
            redis_url=redis_url,
            cache_backend="none",
            data_dir=str(tmp_path / "web"),
        )
    )


def test_two_workers_share_a_jobs_parts_and_the_plan(redis_url, tmp_path):
    port = free_port()
    emulator = start_emulator_process(port, extra_args=["--rate", str(RATE), "--burst", str(BURST)])
    emulator_url = f"http://127.0.0.1:{port}"
    app = web_app(emulator_url, redis_url, tmp_path)
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
        stop_everything(workers, app, emulator)


def test_a_part_whose_worker_was_killed_goes_on_within_a_minute(redis_url, tmp_path):
    """kill -9 a worker mid-part: the job says it waits for a worker, and a restarted worker takes the part up again."""
    port = free_port()
    emulator = start_emulator_process(port)  # the real plan, 2 calls/s: a part of 200 ASINs takes about 5 s
    emulator_url = f"http://127.0.0.1:{port}"
    app = web_app(emulator_url, redis_url, tmp_path)
    client = app.test_client()
    asins = synthetic_asins(400, start=6000)  # two parts
    workers: list[subprocess.Popen] = []

    def searched() -> list[dict]:
        return [c for c in httpx.get(f"{emulator_url}/_emulator/calls").json()["calls"] if c["operation"] == "searchCatalogItems"]

    def view() -> dict:
        return client.get(f"/jobs/{job_id}").get_json()

    try:
        job_id = client.post("/jobs/US", json={"asins": asins}).get_json()["id"]
        assert view()["waiting_for_worker"] is True  # queued, and no worker alive

        first = worker(emulator_url, redis_url, tmp_path / "data-1", tmp_path / "worker-1.log", burst=False, rate=2.0, burst_size=2)
        workers.append(first)
        wait_until(lambda: len(searched()) >= 3, 60)  # the first part is under way
        first.kill()
        first.wait()
        killed_at = searched()[-1]["time"]
        assert view()["status"] == "running"
        wait_until(lambda: view()["waiting_for_worker"], 60)  # its heartbeat goes stale: nobody serves the job

        second = worker(emulator_url, redis_url, tmp_path / "data-2", tmp_path / "worker-2.log", burst=False, rate=2.0, burst_size=2)
        workers.append(second)
        wait_until(lambda: view()["status"] == "done", 150)
        done = view()
        assert done["counts"]["succeeded"] == len(asins) and done["waiting_for_worker"] is False
        assert [entry["asin"] for entry in client.get(f"/jobs/{job_id}/results").get_json()["results"]] == asins

        calls = searched()
        fetched = [asin for call in calls for asin in call["asins"]]
        assert set(fetched) == set(asins)
        # At most the killed worker's step in flight (100 ASINs) is fetched twice; nothing stored is fetched again.
        assert len(fetched) - len(asins) <= 100
        # The killed part went on within a minute of its worker's death (its lease lapses, live upkeep queues it).
        part_one = set(asins[:200])
        resumed = [c["time"] for c in calls if c["time"] > killed_at and part_one & set(c["asins"])]
        assert resumed and resumed[0] - killed_at <= 60, resumed[:1]
    finally:
        stop_everything(workers, app, emulator)


def stop_everything(workers: list[subprocess.Popen], app, emulator: subprocess.Popen) -> None:
    """Kill the workers still running, stop the app's job service and the emulator."""
    for proc in workers:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    app.extensions["jobs"].stop()
    stop_emulator_process(emulator)


def wait_until(condition, seconds: float) -> None:
    """Poll `condition` every 0.2 s until it holds, failing after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.2)
