"""Four gunicorn workers, eight clients, one SP-API plan: the limiter's state must be shared.

The emulator is the judge: it answers 429 whenever its token bucket is exceeded, and its call
log gives the arrival time of every call, which is replayed against the plan here as well.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from emulator.process import start_emulator_process, stop_emulator_process
from tests.helpers.emulator_log import worst_overrun
from tests.helpers.service import ROOT, SHARED_BY_FOUR_WORKERS, clean_env, free_port, stop, wait_for_health

GUNICORN = Path(sys.executable).parent / "gunicorn"
RATE, BURST = 5.0, 3
CLIENTS = 8


def serve(emulator_url: str, tmp_path: Path, **env: str) -> tuple[str, subprocess.Popen]:
    port = free_port()
    environment = clean_env(
        PORT=str(port),
        SP_API_ENDPOINT=emulator_url,
        DATA_DIR=str(tmp_path / "data"),
        GUNICORN_THREADS="8",
        SP_API_RATE=str(RATE),
        SP_API_BURST=str(BURST),
        RATE_LIMIT_CALLS="10000",
        # A wider margin than the default: this test is about four workers sharing one plan, on a
        # machine whose load (CI, the suite's other processes) jitters the time from admission to arrival.
        SP_API_RATE_MARGIN="0.15",
        **SHARED_BY_FOUR_WORKERS,
        **env,
    )
    command = [str(GUNICORN), "-c", "gunicorn.conf.py", "app:create_app()"]
    proc = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    wait_for_health(url, proc)
    return url, proc


def hammer(url: str) -> list[int]:
    """Eight clients at once: each sends three batches of 40 ASINs and four single lookups; the statuses."""

    def client(n: int) -> list[int]:
        statuses = []
        # A new connection per request (Connection: close), so the requests spread over the workers.
        with httpx.Client(base_url=url, timeout=60, headers={"Connection": "close"}) as http:
            for b in range(3):
                asins = [f"B0C{n}{b}{i:05d}" for i in range(40)]
                statuses.append(http.post("/asin/batch/US", json={"asins": asins}).status_code)
            for i in range(4):
                statuses.append(http.get(f"/asin/B0S{n}{i:06d}").status_code)
        return statuses

    with ThreadPoolExecutor(CLIENTS) as pool:
        return [status for statuses in pool.map(client, range(CLIENTS)) for status in statuses]


def workers_that_served(output: str) -> set[str]:
    """The pids in the access log lines of batch requests."""
    return {line.split("served-by=<")[1].split(">")[0] for line in output.splitlines() if "served-by=" in line and "/asin/batch" in line}


class EmulatorProcess:
    """The emulator in a process of its own (not sharing the GIL with the eight clients), at RATE and BURST."""

    def __init__(self) -> None:
        port = free_port()
        self.proc = start_emulator_process(port, extra_args=["--rate", str(RATE), "--burst", str(BURST)])
        self.url = f"http://127.0.0.1:{port}"

    def calls(self, operation: str) -> list[dict]:
        return [c for c in httpx.get(f"{self.url}/_emulator/calls").json()["calls"] if c["operation"] == operation]


@pytest.fixture
def emulator_at_plan() -> Iterator[EmulatorProcess]:
    emulator = EmulatorProcess()
    yield emulator
    stop_emulator_process(emulator.proc)


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_four_workers_share_one_plan(backend, emulator_at_plan, tmp_path, request):
    env = {"RATE_LIMIT_BACKEND": backend}
    if backend == "redis":
        env["REDIS_URL"] = request.getfixturevalue("redis_url")
    url, proc = serve(emulator_at_plan.url, tmp_path, **env)
    try:
        statuses = hammer(url)
    finally:
        output = stop(proc)
    assert statuses == [200] * len(statuses), output[-3000:]
    assert len(workers_that_served(output)) >= 2, "the test means nothing if one worker served everything"
    for operation, expected in (("searchCatalogItems", CLIENTS * 3 * 2), ("getCatalogItem", CLIENTS * 4)):
        calls = emulator_at_plan.calls(operation)
        assert [c["status"] for c in calls] == [200] * expected, f"{operation}: a 429 means the workers overran the plan"
        # Replayed against the plan itself (not the margin), with 20 ms of slack for arrival jitter.
        assert worst_overrun([c["time"] for c in calls], RATE, BURST) <= RATE * 0.020


def test_without_a_shared_store_four_workers_overrun_the_plan(emulator_at_plan, tmp_path):
    # The control: each worker with its own memory limiter believes it has the whole plan.
    url, proc = serve(emulator_at_plan.url, tmp_path, RATE_LIMIT_BACKEND="memory", MAX_RETRIES="0")
    try:
        hammer(url)
    finally:
        output = stop(proc)
    assert len(workers_that_served(output)) >= 2
    statuses = [c["status"] for c in emulator_at_plan.calls("searchCatalogItems")]
    assert statuses.count(429) > 0
