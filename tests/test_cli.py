"""`flask asin lookup` and `flask asin batch`, over real HTTP to the SP-API emulator (in-process and as `flask` itself)."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from flask import Flask

import cli
from emulator import EmulatorServer
from emulator.catalog import build_item
from tests.helpers.data import SANDBOX_TITLE, US, synthetic_asins
from tests.helpers.emulator_log import calls_by_status, operation_calls
from utils.retry import RetryPolicy

ROOT = Path(__file__).resolve().parents[1]
# Variables that would make a `flask` child call Amazon, or load another app than .flaskenv names.
OUTSIDE_VARS = ("LWA_APP_ID", "LWA_CLIENT_SECRET", "SP_API_REFRESH_TOKEN", "SP_API_ENDPOINT", "LWA_ENDPOINT", "FLASK_APP")
PROGRESS_LINE = re.compile(r"^batch: (\d+)/(\d+) \((\d+\.\d)%\) (\d+\.\d)/s ETA (\d+)s$")


def run(app: Flask, *args: str) -> Result:
    """`flask <args>` against `app`, in this process."""
    return app.test_cli_runner().invoke(args=list(args))


def write_csv(path: Path, header: str, values: list[str]) -> Path:
    path.write_text("\n".join([header, *values]) + "\n", encoding="utf-8")
    return path


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as stream:
        return list(csv.DictReader(stream))


def searched_asins(emulator: EmulatorServer, since: int = 0) -> list[str]:
    """Every ASIN the searchCatalogItems calls asked for (after the first `since` calls of the log)."""
    return [asin for call in operation_calls(emulator, "searchCatalogItems")[since:] for asin in call["asins"]]


def title_of(asin: str) -> str:
    return build_item(asin, US, ["summaries"])["summaries"][0]["itemName"]


@pytest.fixture
def fast_app(make_app: Callable[..., Flask], emulator: EmulatorServer) -> Callable[..., Flask]:
    """Apps on an emulator with a generous plan, so batches of hundreds take a moment."""
    emulator.configure(rate=200.0, burst=20)

    def build(**overrides: object) -> Flask:
        return make_app(**{"sp_api_rate": 200.0, "sp_api_burst": 20, **overrides})

    return build


# -- lookup ---------------------------------------------------------------------------------------


def test_lookup_prints_the_sandbox_item_as_json(app, emulator):
    result = run(app, "asin", "lookup", "B07N4M94X4", "--country", "us")
    assert result.exit_code == 0, result.output
    entry = json.loads(result.stdout)
    assert (entry["asin"], entry["country"], entry["success"]) == ("B07N4M94X4", "US", True)
    assert entry["Title"] == SANDBOX_TITLE
    assert entry["SalesRank"] == 72855
    assert calls_by_status(emulator, "getCatalogItem") == {"200": 1}


def test_lookup_invalid_asin_exits_1_with_the_error(app, emulator):
    result = run(app, "asin", "lookup", "abc")
    assert result.exit_code == 1
    entry = json.loads(result.stdout)
    assert entry["success"] is False and entry["error"]["code"] == "INVALID_ASIN"
    assert emulator.calls()["total"] == 0


def test_lookup_of_several_is_one_search_and_a_table(app, emulator):
    result = run(app, "asin", "lookup", "B07N4M94X4", "NF00000001", "B0TEST0001", "--format", "table")
    assert result.exit_code == 1  # NF00000001 does not exist
    header, sandbox, missing, synthetic = result.stdout.splitlines()
    assert header.split()[:3] == ["ASIN", "COUNTRY", "RESULT"]
    assert sandbox.startswith("B07N4M94X4") and "72855 (Electronics)" in sandbox and sandbox.endswith(SANDBOX_TITLE)
    assert missing.split()[:3] == ["NF00000001", "US", "NOT_FOUND"]
    assert synthetic.endswith(title_of("B0TEST0001"))
    assert calls_by_status(emulator, "searchCatalogItems") == {"200": 1}


def test_lookup_unknown_country_is_a_usage_error(app, emulator):
    result = run(app, "asin", "lookup", "B07N4M94X4", "--country", "XX")
    assert result.exit_code == 2
    assert "Unsupported country 'XX'" in result.stderr
    assert emulator.calls()["total"] == 0


# -- batch ----------------------------------------------------------------------------------------


def test_batch_writes_every_row_in_order_and_progress_lines(fast_app, emulator, tmp_path):
    asins = synthetic_asins(248) + ["NF00000001", "B07N4M94X4"]
    source = write_csv(tmp_path / "in.csv", "asin", asins)
    out = tmp_path / "out.csv"
    result = run(fast_app(), "asin", "batch", str(source), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""

    rows = read_rows(out)
    assert [row["input"] for row in rows] == asins
    assert [row["asin"] for row in rows] == asins
    assert all(row["success"] == "true" for row in rows[:248]) and rows[-1]["success"] == "true"
    assert (rows[248]["success"], rows[248]["error_code"]) == ("false", "NOT_FOUND")
    assert rows[-1]["title"] == SANDBOX_TITLE
    assert [row["title"] for row in rows[:3]] == [title_of(asin) for asin in asins[:3]]
    # Chunks of MAX_BATCH_SIZE=100, each 20 ASINs a call: 5 + 5 + 3 searchCatalogItems calls, each ASIN once.
    assert calls_by_status(emulator, "searchCatalogItems") == {"200": 13}
    assert sorted(searched_asins(emulator)) == sorted(asins)

    # Not a terminal: a plain line per chunk with counts, percent, rate and ETA; then the summary.
    lines = result.stderr.splitlines()
    progress = [PROGRESS_LINE.match(line) for line in lines if PROGRESS_LINE.match(line)]
    assert [(m[1], m[2], m[3]) for m in progress] == [("100", "250", "40.0"), ("200", "250", "80.0"), ("250", "250", "100.0")]
    assert all(float(m[4]) > 0 for m in progress)
    assert lines[0] == f"batch: 250 ASIN from {source} (column 'asin'), US; writing {out}"
    assert re.fullmatch(
        rf"batch: done: 250 rows in {re.escape(str(out))}; this run 250: 249 succeeded, 1 failed, 0 cached, \d+\.\ds", lines[-1]
    )


def test_batch_of_upcs_resolves_the_sandbox_item(fast_app, emulator, tmp_path):
    source = tmp_path / "upc.csv"
    source.write_text("Product,UPC\nTV,887276302195\nbad,887276302196\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    result = run(fast_app(), "asin", "batch", str(source), "-o", str(out))
    assert result.exit_code == 0, result.output
    tv, bad = read_rows(out)
    assert (tv["input"], tv["identifier_type"], tv["asin"], tv["title"]) == ("887276302195", "UPC", "B07N4M94X4", SANDBOX_TITLE)
    assert (bad["success"], bad["error_code"]) == ("false", "INVALID_IDENTIFIER")  # wrong check digit: no call spent
    assert calls_by_status(emulator, "searchCatalogItems") == {"200": 1}
    assert "batch: 2 UPC from" in result.stderr


def test_batch_resumes_after_a_row_cut_short(fast_app, emulator, tmp_path):
    asins = synthetic_asins(120)
    source = write_csv(tmp_path / "in.csv", "asin", asins)
    out = tmp_path / "out.csv"
    app = fast_app(cache_backend="none")
    assert run(app, "asin", "batch", str(source), "-o", str(out), "--chunk", "40").exit_code == 0
    complete = out.read_bytes()
    # As a crash would leave it: 70 whole rows, then half of the 71st.
    lines = complete.split(b"\r\n")
    out.write_bytes(b"\r\n".join(lines[:71]) + b"\r\n" + lines[71][:25])
    calls_before = len(operation_calls(emulator, "searchCatalogItems"))

    result = run(app, "asin", "batch", str(source), "-o", str(out), "--chunk", "40")
    assert result.exit_code == 0, result.output
    assert f"70 already in {out}, resuming" in result.stderr
    assert [row["input"] for row in read_rows(out)] == asins
    # With no cache, only the 50 inputs without a whole row were looked up again, each once.
    assert sorted(searched_asins(emulator, since=calls_before)) == asins[70:]

    again = run(app, "asin", "batch", str(source), "-o", str(out))
    assert again.exit_code == 0 and "120 already in" in again.stderr
    assert len(operation_calls(emulator, "searchCatalogItems")) == calls_before + 3  # nothing more to do: no call


def test_batch_refuses_an_output_of_another_input_unless_restart(fast_app, emulator, tmp_path):
    out = tmp_path / "out.csv"
    app = fast_app()
    first = write_csv(tmp_path / "first.csv", "asin", synthetic_asins(30))
    assert run(app, "asin", "batch", str(first), "-o", str(out)).exit_code == 0
    other = write_csv(tmp_path / "other.csv", "asin", synthetic_asins(30, start=500))

    refused = run(app, "asin", "batch", str(other), "-o", str(out))
    assert refused.exit_code == 2
    assert "holds the results of another input" in refused.stderr and "--restart" in refused.stderr
    assert "row 1 is for 'B0TEST0000' but input row 1 is 'B0TEST0500'" in refused.stderr
    assert [row["input"] for row in read_rows(out)] == synthetic_asins(30)  # untouched

    restarted = run(app, "asin", "batch", str(other), "-o", str(out), "--restart")
    assert restarted.exit_code == 0
    assert [row["input"] for row in read_rows(out)] == synthetic_asins(30, start=500)

    not_results = write_csv(tmp_path / "mine.csv", "sku,price", ["a,1"])
    assert run(app, "asin", "batch", str(first), "-o", str(not_results)).exit_code == 2
    assert not_results.read_text() == "sku,price\na,1\n"


def test_batch_unreadable_input_exits_2_before_any_lookup(app, emulator, tmp_path):
    source = tmp_path / "in.csv"
    source.write_bytes(b"asin\nB0TEST0001\n\xff\xfe broken\n")
    out = tmp_path / "out.csv"
    result = run(app, "asin", "batch", str(source), "-o", str(out))
    assert result.exit_code == 2
    assert "not UTF-8" in result.stderr
    assert not out.exists()
    assert emulator.calls()["total"] == 0


def test_batch_waits_for_the_quota_instead_of_writing_throttled_rows(fast_app, emulator, tmp_path):
    # At most 3 calls (the LWA token's included) in any 2 s: the last calls of a chunk of 100 would wait beyond
    # REQUEST_TIMEOUT, so the limiter answers THROTTLED at once; the batch waits for the slot and asks again.
    asins = synthetic_asins(100)
    source = write_csv(tmp_path / "in.csv", "asin", asins)
    out = tmp_path / "out.csv"
    app = fast_app(rate_limit_calls=3, rate_limit_window=2.0, request_timeout=1.0)
    result = run(app, "asin", "batch", str(source), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert re.search(r"^batch: 0/100 waiting \d+\.\ds \(\d+ THROTTLED\)$", result.stderr, re.MULTILINE)
    rows = read_rows(out)
    assert [row["input"] for row in rows] == asins and all(row["success"] == "true" for row in rows)
    assert calls_by_status(emulator, "searchCatalogItems") == {"200": 5}  # each ASIN asked of SP-API once
    assert sorted(searched_asins(emulator)) == asins


def test_batch_stops_when_sp_api_keeps_failing_and_resumes(fast_app, emulator, tmp_path, monkeypatch):
    # Two retries of the job schedule, at once.
    monkeypatch.setattr(cli, "ITEM_RETRIES", RetryPolicy(max_retries=2, first_delay=0.0, jitter=0.0))
    asins = synthetic_asins(60)
    source = write_csv(tmp_path / "in.csv", "asin", asins)
    out = tmp_path / "out.csv"
    app = fast_app(circuit_failures=1000, max_retries=1)
    assert run(app, "asin", "batch", str(source), "-o", str(out), "--chunk", "20").exit_code == 0
    out.write_bytes(b"\r\n".join(out.read_bytes().split(b"\r\n")[:21]) + b"\r\n")  # keep the first 20 rows
    emulator.configure(fault_rate=1.0, fault_statuses=[500])

    stopped = run(app, "asin", "batch", str(source), "-o", str(out), "--refresh")
    assert stopped.exit_code == 1
    assert "stopped: SP-API kept failing for 40 inputs (UPSTREAM_ERROR: " in stopped.stderr
    assert f"20 of 60 written to {out}; run the same command again to resume" in stopped.stderr
    assert len(read_rows(out)) == 20  # no row holds a passing failure
    # The first look-up and the two asked again: three times two calls, each retried once by the service.
    assert calls_by_status(emulator, "searchCatalogItems") == {"200": 3, "500": 12}

    emulator.configure(fault_rate=0.0)
    resumed = run(app, "asin", "batch", str(source), "-o", str(out))
    assert resumed.exit_code == 0, resumed.output
    rows = read_rows(out)
    assert [row["input"] for row in rows] == asins and all(row["success"] == "true" for row in rows)


def test_batch_chunk_above_max_batch_size_is_refused(app, tmp_path):
    source = write_csv(tmp_path / "in.csv", "asin", synthetic_asins(3))
    result = run(app, "asin", "batch", str(source), "-o", str(tmp_path / "out.csv"), "--chunk", "101")
    assert result.exit_code == 2
    assert "at most MAX_BATCH_SIZE (100)" in result.stderr


# -- `flask` itself, as a user runs it from the repository root --------------------------------------


def flask_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A user's environment: no credentials, no endpoint, no FLASK_APP (.flaskenv names the app); DATA_DIR of its own."""
    env = {name: value for name, value in os.environ.items() if name not in OUTSIDE_VARS}
    # Blank, not absent: a developer's .env in the repository root must not give the child credentials.
    env.update({name: "" for name in OUTSIDE_VARS[:5]})
    env.update(DATA_DIR=str(tmp_path / "data"), PYTHONUNBUFFERED="1", **extra)
    return env


def flask_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "flask", *args]


def default_sigint() -> None:
    """In the child: Ctrl-C raises KeyboardInterrupt even if this test runs where SIGINT is ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_flask_lookup_starts_the_bundled_emulator_and_keeps_stdout_for_json(tmp_path):
    done = subprocess.run(
        flask_command("asin", "lookup", "B07N4M94X4"), cwd=ROOT, env=flask_env(tmp_path), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["Title"] == SANDBOX_TITLE  # nothing but the entry on stdout
    assert "using the bundled SP-API emulator at http://127.0.0.1:" in done.stderr
    assert "fba-backend 1.0.0 ready: mode=emulator endpoint=http://127.0.0.1:" in done.stderr  # the start-up line too


def test_flask_batch_interrupted_by_sigint_resumes_without_fetching_written_rows_again(emulator, tmp_path):
    asins = synthetic_asins(250)
    source = write_csv(tmp_path / "in.csv", "asin", asins)
    out = tmp_path / "out.csv"
    # Slow answers at the real plan (2 calls/s): the 15 calls of this batch take several seconds.
    emulator.configure(latency_ms=150)
    env = flask_env(tmp_path, SP_API_ENDPOINT=emulator.url, CACHE_BACKEND="none", RATE_LIMIT_CALLS="1000")
    command = flask_command("asin", "batch", str(source), "-o", str(out), "--chunk", "50")

    child = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint
    )
    try:
        deadline = time.monotonic() + 60
        while child.poll() is None and not (out.exists() and len(read_rows(out)) >= 50) and time.monotonic() < deadline:
            time.sleep(0.05)
        child.send_signal(signal.SIGINT)
        stdout, stderr = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 130, stderr
    written = int(re.search(rf"^interrupted: (\d+) of 250 written to {re.escape(str(out))}; run the same command again", stderr, re.M)[1])
    assert 0 < written < 250 and written % 50 == 0
    assert [row["input"] for row in read_rows(out)] == asins[:written]
    first_run_calls = len(operation_calls(emulator, "searchCatalogItems"))

    again = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert f"{written} already in {out}, resuming" in again.stderr
    rows = read_rows(out)
    assert [row["input"] for row in rows] == asins  # complete, in order, no row twice
    assert all(row["success"] == "true" for row in rows)
    # No cache: the second run asked SP-API for exactly the ASINs without a row, each once.
    assert sorted(searched_asins(emulator, since=first_run_calls)) == asins[written:]


# -- flask jobs ---------------------------------------------------------------------------------


def test_jobs_list_show_and_cancel(app):
    client = app.test_client()
    job_id = client.post("/jobs/US", json={"asins": ["B07N4M94X4", "B0TEST0001"]}).get_json()["id"]

    listed = run(app, "jobs", "list")
    assert listed.exit_code == 0 and job_id in listed.output and "queued" in listed.output and "0/2" in listed.output

    shown = run(app, "jobs", "show", job_id)
    assert shown.exit_code == 0 and json.loads(shown.output)["counts"]["total"] == 2

    cancelled = run(app, "jobs", "cancel", job_id)
    assert cancelled.exit_code == 0 and "cancelled" in cancelled.output
    assert client.get(f"/jobs/{job_id}").get_json()["status"] == "cancelled"
    again = run(app, "jobs", "cancel", job_id)
    assert again.exit_code == 1 and "already cancelled" in again.output

    missing = run(app, "jobs", "show", "0123456789abcdef")
    assert missing.exit_code == 1 and "no job" in missing.output


def test_jobs_worker_is_not_needed_with_the_sqlite_backend(app):
    result = run(app, "jobs", "worker")
    assert result.exit_code == 0 and "JOB_BACKEND=sqlite" in result.output
