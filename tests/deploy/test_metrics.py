"""/metrics scraped from the service as users run it, with two gunicorn workers: every worker is counted."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from prometheus_client.multiprocess import MultiProcessCollector

from tests.helpers.metrics_scrape import parse, series
from tests.helpers.service import GUNICORN, ROOT, clean_env, free_port, stop, wait_for_health

# A new connection per request, closed after it, so the kernel hands requests to either worker.
CLOSE = {"Connection": "close"}
ROUTES = {"/health", "/metrics", "/asin/<anypath:asin>", "/asin/batch/<country>", "unmatched"}


def worker_files(metrics_dir: Path) -> dict[int, Path]:
    """Each worker's counter file (a worker writes one once it has counted something), by pid."""
    return {int(path.stem.rsplit("_", 1)[1]): path for path in metrics_dir.glob("counter_*.db")}


def http_counts(samples: dict) -> Counter:
    return series(samples, "fba_http_requests_total", "method", "route", "status")


@pytest.mark.parametrize(
    "command",
    [[str(GUNICORN), "-c", "gunicorn.conf.py", "app:create_app()"], [sys.executable, "app.py"]],
    ids=["gunicorn", "python app.py"],
)
def test_metrics_add_up_both_workers(command, tmp_path):
    port, emulator_port = free_port(), free_port()
    env = clean_env(PORT=str(port), EMULATOR_PORT=str(emulator_port), WEB_CONCURRENCY="2", GUNICORN_THREADS="4")
    # The log goes to a file: a pipe nobody reads until the end would block the workers once full.
    log_path = tmp_path / "service.log"
    with log_path.open("w") as log_file:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    metrics_dir = Path(env["DATA_DIR"]).resolve() / f"metrics-{proc.pid}"
    sent: Counter = Counter()

    def send(method: str, path: str, route: str, status: int, **kwargs) -> httpx.Response:
        response = httpx.request(method, f"{url}{path}", headers=CLOSE, timeout=30, **kwargs)
        assert response.status_code == status, response.text
        sent[(method if method in ("GET", "POST") else "other", route, str(status))] += 1
        return response

    try:
        wait_for_health(url, proc)
        sent[("GET", "/health", "200")] += 1
        # Until both workers have answered something (each then has its own file of values).
        deadline = time.monotonic() + 30
        while len(worker_files(metrics_dir)) < 2:
            assert time.monotonic() < deadline, f"metric files of two workers expected: {sorted(metrics_dir.iterdir())}"
            send("GET", "/health", "/health", 200)
            time.sleep(0.05)

        send("GET", "/asin/B07N4M94X4", "/asin/<anypath:asin>", 200)
        send("GET", "/asin/B08N5WRWNW", "/asin/<anypath:asin>", 200)
        send("GET", "/asin/B0TEST0001?country=US", "/asin/<anypath:asin>", 200)
        send("GET", "/asin/NF00000001", "/asin/<anypath:asin>", 404)
        assert send("GET", "/asin/B07N4M94X4", "/asin/<anypath:asin>", 200).json()["cached"] is True
        batch = send("POST", "/asin/batch/US", "/asin/batch/<country>", 200, json={"asins": ["B0TEST0002", "B0TEST0003", "B07N4M94X4"]})
        assert batch.json()["successful"] == 3
        send("GET", "/nowhere", "unmatched", 404)
        send("FROB", "/health", "unmatched", 405)

        # Each scrape, whichever worker answers it, shows every request both workers answered.
        for scrapes_before in range(6):
            response = httpx.get(f"{url}/metrics", headers=CLOSE, timeout=30)
            assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/plain; version=")
            samples = parse(response.text)
            assert http_counts(samples) == sent + Counter({("GET", "/metrics", "200"): scrapes_before})
        sent[("GET", "/metrics", "200")] += 6

        # Both workers' shares are real, and they add up to what a scrape shows.
        files = worker_files(metrics_dir)
        assert len(files) == 2
        shares = [
            sum(s.value for m in MultiProcessCollector.merge([str(path)]) if m.name == "fba_http_requests" for s in m.samples)
            for path in files.values()
        ]
        assert all(share > 0 for share in shares) and sum(shares) == sum(sent.values())

        # The route label is the URL rule, never the raw path.
        assert {route for _, route, _ in http_counts(samples)} == ROUTES
        durations = series(samples, "fba_http_request_duration_seconds_count", "method", "route")
        assert durations[("GET", "/asin/<anypath:asin>")] == 5 and durations[("POST", "/asin/batch/<country>")] == 1

        # SP-API calls by operation and status, as the emulator the service started saw them.
        upstream = httpx.get(f"http://127.0.0.1:{emulator_port}/_emulator/calls", timeout=10).json()["by_operation"]
        expected = Counter({(op, status): n for op, statuses in upstream.items() if op != "lwaToken" for status, n in statuses.items()})
        assert expected == Counter({("getCatalogItem", "200"): 3, ("getCatalogItem", "404"): 1, ("searchCatalogItems", "200"): 1})
        assert series(samples, "fba_spapi_calls_total", "operation", "status") == expected
        per_operation = Counter({("getCatalogItem",): 4, ("searchCatalogItems",): 1})
        assert series(samples, "fba_spapi_call_duration_seconds_count", "operation") == per_operation
        assert series(samples, "fba_limiter_wait_seconds_count", "operation") == per_operation
        # Singles: 4 misses and 1 hit; the batch: B07N4M94X4 hit, two misses (NOT_FOUND is cached, but was asked once).
        assert series(samples, "fba_cache_lookups_total", "result") == Counter({("hit",): 2, ("miss",): 6})
    finally:
        if proc.poll() is None:
            stop(proc)
    assert f"Prometheus metrics of every worker in {metrics_dir}" in log_path.read_text()
    assert not metrics_dir.exists()  # the master removed its directory on exit
