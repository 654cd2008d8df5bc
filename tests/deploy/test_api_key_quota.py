"""Four gunicorn workers, one API key, one quota: API_KEY_RATE holds across workers because it lives in the limiter's store.

Eight clients send `GET /config` with the key as fast as they can, each request on a new
connection so the requests spread over the workers; the 200s over the run are judged against
what one quota allows between the times the test recorded, and gunicorn's access log shows that
several workers answered.
"""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.helpers.service import ROOT, SHARED_BY_FOUR_WORKERS, clean_env, free_port, stop, wait_for_health

GUNICORN = Path(sys.executable).parent / "gunicorn"
API_KEY = "fba-quota-test-key-0123456789"
RATE = 2  # API_KEY_RATE: 2 requests/s, so a burst of 2 (one second's worth)
BURST = 2
CLIENTS = 8
RUN_SECONDS = 3.0


@dataclass(frozen=True)
class Answer:
    """One request: when the client sent it and got the answer (time.monotonic()), the status and the error code."""

    sent: float
    answered: float
    status: int
    code: str | None


@dataclass
class Served:
    """gunicorn serving at `url`, its output going to `log` (a file: a pipe read only at the end would fill and block the workers)."""

    url: str
    proc: subprocess.Popen
    log: Path

    def stop(self) -> str:
        """Stop gunicorn; everything it printed."""
        stop(self.proc)
        return self.log.read_text()


def serve(emulator_url: str, tmp_path: Path, backend: str, **env: str) -> Served:
    port = free_port()
    environment = clean_env(
        PORT=str(port),
        SP_API_ENDPOINT=emulator_url,
        DATA_DIR=str(tmp_path / "data"),
        GUNICORN_THREADS="4",
        RATE_LIMIT_BACKEND=backend,
        API_KEYS=API_KEY,
        API_KEY_RATE=str(RATE),
        **SHARED_BY_FOUR_WORKERS,
        **env,
    )
    command = [str(GUNICORN), "-c", "gunicorn.conf.py", "app:create_app()"]
    log = tmp_path / "gunicorn.log"
    with log.open("w") as output:
        proc = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=output, stderr=subprocess.STDOUT, text=True)
    served = Served(f"http://127.0.0.1:{port}", proc, log)
    try:
        wait_for_health(served.url, proc)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{served.stop()[-3000:]}") from None
    return served


def hammer(url: str) -> list[Answer]:
    """CLIENTS threads sending `GET /config` with the key for RUN_SECONDS, each request on a new connection."""
    until = time.monotonic() + RUN_SECONDS

    def client(_: int) -> list[Answer]:
        answers = []
        with httpx.Client(base_url=url, timeout=30, headers={"Connection": "close", "X-API-Key": API_KEY}) as http:
            while time.monotonic() < until:
                sent = time.monotonic()
                response = http.get("/config")
                code = response.json()["error"]["code"] if response.status_code >= 400 else None
                answers.append(Answer(sent, time.monotonic(), response.status_code, code))
        return answers

    with ThreadPoolExecutor(CLIENTS) as pool:
        return [answer for answers in pool.map(client, range(CLIENTS)) for answer in answers]


def workers_that_answered(output: str) -> set[str]:
    """The pids in the access log lines of /config requests."""
    return {line.split("served-by=<")[1].split(">")[0] for line in output.splitlines() if "served-by=" in line and "/config" in line}


def one_quota_allows(answers: list[Answer]) -> float:
    """The most 200s one quota allows: its burst plus its rate over the span in which they can have been admitted.

    Every 200 was admitted between the earliest sending and the latest answer of the 200s; GCRA
    admits at most burst + rate × (last − first admission) in any span (plus a millisecond: the
    store keeps slots in whole milliseconds).
    """
    admitted = [a for a in answers if a.status == 200]
    span = max(a.answered for a in admitted) - min(a.sent for a in admitted)
    return BURST + RATE * (span + 0.001)


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_four_workers_share_one_api_key_quota(backend, emulator, tmp_path, request):
    env = {"REDIS_URL": request.getfixturevalue("redis_url")} if backend == "redis" else {}
    served = serve(emulator.url, tmp_path, backend, **env)
    try:
        answers = hammer(served.url)
    finally:
        output = served.stop()
    assert {(a.status, a.code) for a in answers} == {(200, None), (429, "TOO_MANY_REQUESTS")}, output[-3000:]
    assert len(workers_that_answered(output)) >= 2, "the test means nothing if one worker answered everything"
    ok = sum(a.status == 200 for a in answers)
    # One quota, not four: at most what it allows over the run...
    assert ok <= one_quota_allows(answers), f"{ok} requests let through; one quota allows {one_quota_allows(answers):.1f}"
    # ... and about that much: the clients never stopped asking, so each token was taken soon after it came.
    first, last = min(a.sent for a in answers), max(a.sent for a in answers)
    assert ok >= RATE * (last - first) - 1, f"only {ok} requests let through in {last - first:.1f} s"


def test_with_a_quota_per_process_four_workers_let_four_times_as_much_through(emulator, tmp_path):
    # The control: RATE_LIMIT_BACKEND=memory keeps each worker's quota (and limiter) in the worker itself.
    served = serve(emulator.url, tmp_path, "memory")
    try:
        answers = hammer(served.url)
    finally:
        output = served.stop()
    assert len(workers_that_answered(output)) >= 2
    ok = sum(a.status == 200 for a in answers)
    assert ok > 1.5 * one_quota_allows(answers), f"{ok} let through; one quota allows {one_quota_allows(answers):.1f}"
