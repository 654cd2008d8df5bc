"""Four gunicorn workers, eight clients, one SP-API plan: the limiter's state must be shared.

The emulator is the judge: it answers 429 whenever its token bucket is exceeded, and its call
log gives the arrival time of every call, which is replayed against the plan here as well.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.helpers.emulator_log import assert_within_plan
from tests.helpers.service import EmulatorProcess, serve_shared_by_four, stop, workers_that_served

RATE, BURST = 5.0, 3
CLIENTS = 8


def serve(emulator_url: str, tmp_path: Path, **env: str) -> tuple[str, subprocess.Popen]:
    return serve_shared_by_four(emulator_url, tmp_path / "data", SP_API_RATE=str(RATE), SP_API_BURST=str(BURST), **env)


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


@pytest.fixture
def emulator_at_plan() -> Iterator[EmulatorProcess]:
    """The emulator at RATE and BURST."""
    emulator = EmulatorProcess("--rate", str(RATE), "--burst", str(BURST))
    yield emulator
    emulator.stop()


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
    assert len(workers_that_served(output, "/asin/batch")) >= 2, "the test means nothing if one worker served everything"
    for operation, expected in (("searchCatalogItems", CLIENTS * 3 * 2), ("getCatalogItem", CLIENTS * 4)):
        calls = emulator_at_plan.calls(operation)
        assert len(calls) == expected, operation
        assert_within_plan(calls, RATE, BURST, operation)


def test_without_a_shared_store_four_workers_overrun_the_plan(emulator_at_plan, tmp_path):
    # The control: each worker with its own memory limiter believes it has the whole plan.
    url, proc = serve(emulator_at_plan.url, tmp_path, RATE_LIMIT_BACKEND="memory", MAX_RETRIES="0")
    try:
        hammer(url)
    finally:
        output = stop(proc)
    assert len(workers_that_served(output, "/asin/batch")) >= 2
    statuses = [c["status"] for c in emulator_at_plan.calls("searchCatalogItems")]
    assert statuses.count(429) > 0
