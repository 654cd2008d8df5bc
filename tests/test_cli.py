"""`flask asin lookup`, `batch` and `scan`, over real HTTP to the SP-API emulator (in-process, and as `flask` itself)."""

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

import openpyxl
import pytest
from click.testing import Result
from flask import Flask

import cli
from emulator import EmulatorServer
from emulator.catalog import build_item, item_identifiers
from services.scan_csv import output_names
from tests.helpers.data import SANDBOX_TITLE, US, synthetic_asins
from tests.helpers.emulator_log import calls_by_status, operation_calls
from tests.helpers.spapi import FAMILY_PLANS
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


# -- scan -----------------------------------------------------------------------------------------

# Synthetic items the emulator finds by UPC (searchCatalogItems), priced, with fees, restrictions and eligibility.
SCAN_ASINS = [f"B00SCAN{n:03d}" for n in range(12)]
SUPPLIER_COLUMNS = ["UPC", "Description", "Unit Cost", "Case Pack"]
# A valid UPC whose cost is no amount, and a UPC with a wrong check digit: each only its row's SKIP, never looked up.
BAD_COST, BAD_UPC = "012345678905;broken cost;abc;1", "012345678900;broken code;2,50;1"
SUMMARY = re.compile(r"^scan: done: (\d+) rows in (.+): (\d+) BUY, (\d+) REVIEW, (\d+) SKIP; this run (\d+), \d+\.\ds$", re.MULTILINE)


def upc_of(asin: str) -> str:
    return next(code["identifier"] for code in item_identifiers(asin) if code["identifierType"] == "UPC")


def write_supplier_list(path: Path) -> list[str]:
    """A `;` list as a European supplier sends it (decimal comma, case packs of 1 to 3, two bad rows); its UPCs in order."""
    lines = [f"{upc_of(asin)};item {n};{n + 1},50;{1 + n % 3}" for n, asin in enumerate(SCAN_ASINS)]
    lines[2:2] = [BAD_COST, BAD_UPC]
    path.write_text("\n".join([";".join(SUPPLIER_COLUMNS), *lines]) + "\n", encoding="utf-8")
    return [line.split(";")[0] for line in lines]


def verdicts_of(rows: list[dict[str, str]]) -> dict[str, int]:
    return {verdict: sum(1 for row in rows if row["verdict"] == verdict) for verdict in ("BUY", "REVIEW", "SKIP")}


def summary_of(result: Result) -> tuple[int, str, dict[str, int], int]:
    """(rows, file, verdicts, rows scanned this run) of a scan's last line."""
    found = SUMMARY.search(result.stderr)
    assert found, result.stderr
    return int(found[1]), found[2], dict(zip(("BUY", "REVIEW", "SKIP"), map(int, found.groups()[2:5]), strict=True)), int(found[6])


@pytest.fixture
def scan_app(fast_app: Callable[..., Flask], emulator: EmulatorServer) -> Callable[..., Flask]:
    """Apps as fast_app's, with the pricing, fees, restrictions and eligibility plans raised too."""
    emulator.configure(plans=FAMILY_PLANS)
    return fast_app


def test_scan_writes_every_row_once_in_order_with_a_verdict(scan_app, emulator, tmp_path):
    source = tmp_path / "suppliers.csv"
    upcs = write_supplier_list(source)
    out = tmp_path / "out.csv"
    result = run(scan_app(), "asin", "scan", str(source), "-o", str(out), "--country", "us")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""

    with out.open(encoding="utf-8", newline="") as stream:
        header = next(csv.reader(stream))
    assert header == [*SUPPLIER_COLUMNS, *output_names(SUPPLIER_COLUMNS)]  # the list's columns first, as given
    rows = read_rows(out)
    assert [row["UPC"] for row in rows] == upcs
    assert [row["Unit Cost"] for row in rows[:2]] == ["1,50", "2,50"]  # the cell as the supplier wrote it
    assert all(row["verdict"] in ("BUY", "REVIEW", "SKIP") for row in rows)
    found = [row for row in rows if row["Description"].startswith("item")]
    assert [row["asin"] for row in found] == SCAN_ASINS
    # The cost read with its decimal comma, per unit of the case pack (each of these items is sold one to a listing).
    assert [row["unit_cost"] for row in found[:3]] == ["1.50", "1.25", "1.17"]
    bad_cost, bad_upc = rows[2], rows[3]
    assert (bad_cost["verdict"], bad_cost["reasons"], bad_cost["asin"]) == ("SKIP", "INVALID_COST", "")
    assert (bad_upc["verdict"], bad_upc["reasons"], bad_upc["asin"]) == ("SKIP", "INVALID_IDENTIFIER", "")
    for row in rows:
        if row["verdict"] == "BUY":
            assert float(row["profit"]) >= 3 and float(row["roi_percent"]) >= 30 and row["reasons"] == ""
        if row["restriction_status"] == "APPROVAL_REQUIRED":  # SCAN_SKIP_RESTRICTED=true by default
            assert (row["verdict"], row["reasons"]) == ("SKIP", "APPROVAL_REQUIRED")
    verdicts = verdicts_of(rows)
    assert verdicts["BUY"] > 0 and verdicts["SKIP"] > 2

    # Each good UPC searched once, 20 a call; the bad rows never.
    assert sorted(searched_asins(emulator)) == sorted(upcs[:2] + upcs[4:])
    assert calls_by_status(emulator, "searchCatalogItems") == {"200": 1}
    lines = result.stderr.splitlines()
    assert f"scan: 14 rows from {source} (UPC column 'UPC', cost 'Unit Cost', pack 'Case Pack'), US; writing {out}" in lines
    assert "scan: 14/14 (100.0%)" in result.stderr
    assert summary_of(result) == (14, str(out), verdicts, 14)


def test_scan_options_change_the_verdicts(scan_app, emulator, tmp_path):
    source = tmp_path / "suppliers.csv"
    write_supplier_list(source)
    app = scan_app()
    default = run(app, "asin", "scan", str(source), "-o", str(tmp_path / "default.csv"))
    assert default.exit_code == 0, default.output
    rows = read_rows(tmp_path / "default.csv")
    bought = [row["UPC"] for row in rows if row["verdict"] == "BUY"]
    restricted = [row["UPC"] for row in rows if row["reasons"] == "APPROVAL_REQUIRED"]
    amazon = [row["UPC"] for row in rows if row["reasons"] == "AMAZON_ON_LISTING"]
    assert bought and restricted and amazon and verdicts_of(rows)["REVIEW"] == 0

    strict = run(app, "asin", "scan", str(source), "-o", str(tmp_path / "strict.csv"), "--min-roi", "100000")
    assert strict.exit_code == 0, strict.output
    assert "min_roi_percent=100000.0" in strict.stderr
    rows = read_rows(tmp_path / "strict.csv")
    assert verdicts_of(rows)["BUY"] == 0 == summary_of(strict)[2]["BUY"]
    assert all(row["verdict"] == "SKIP" and "ROI_BELOW_MIN" in row["reasons"] for row in rows if row["UPC"] in bought)

    kept = run(app, "asin", "scan", str(source), "-o", str(tmp_path / "kept.csv"), "--keep-restricted", "--keep-amazon")
    assert kept.exit_code == 0, kept.output
    rows = {row["UPC"]: row for row in read_rows(tmp_path / "kept.csv")}
    # Kept, they are looked at further (an item Amazon sells may be restricted as well): REVIEW, for that reason first.
    assert all((rows[upc]["verdict"], rows[upc]["reasons"]) == ("REVIEW", "APPROVAL_REQUIRED") for upc in restricted)
    assert all((rows[upc]["verdict"], rows[upc]["reasons"].split(";")[0]) == ("REVIEW", "AMAZON_ON_LISTING") for upc in amazon)
    assert summary_of(kept)[2]["REVIEW"] == len(restricted) + len(amazon)


def test_scan_resumes_after_the_rows_written_without_scanning_them_again(scan_app, emulator, tmp_path):
    source = tmp_path / "suppliers.csv"
    upcs = write_supplier_list(source)
    out = tmp_path / "out.csv"
    app = scan_app(cache_backend="none")
    first = run(app, "asin", "scan", str(source), "-o", str(out), "--chunk", "4")
    assert first.exit_code == 0, first.output
    complete = out.read_bytes()
    # As an interrupted run leaves it: the header and 6 whole rows (two chunks and a half), then half of the 7th.
    lines = complete.split(b"\r\n")
    out.write_bytes(b"\r\n".join(lines[:7]) + b"\r\n" + lines[7][:30])
    before, searches_before = len(emulator.calls()["calls"]), len(operation_calls(emulator, "searchCatalogItems"))

    result = run(app, "asin", "scan", str(source), "-o", str(out), "--chunk", "4")
    assert result.exit_code == 0, result.output
    assert f"6 already in {out}, resuming" in result.stderr
    assert out.read_bytes() == complete  # every row once, in order, as the uninterrupted run wrote it
    # With no cache, only the rows without a whole line were scanned again: their UPCs searched, their ASINs priced.
    assert sorted(searched_asins(emulator, since=searches_before)) == sorted(upcs[6:])
    again = emulator.calls()["calls"][before:]
    priced = {asin for call in again if call["operation"] == "getCompetitivePricing" for asin in call["asins"]}
    assert priced == set(SCAN_ASINS[4:])  # rows 6 to 13 (rows 2 and 3 are the bad ones)
    assert not {code for call in again for code in call["asins"]} & (set(upcs[:6]) | set(SCAN_ASINS[:4]))
    total, _, verdicts, this_run = summary_of(result)
    assert (total, this_run) == (14, 8) and verdicts == summary_of(first)[2]  # the file's verdicts, earlier rows too

    nothing_left = run(app, "asin", "scan", str(source), "-o", str(out))
    assert nothing_left.exit_code == 0 and "14 already in" in nothing_left.stderr
    assert len(emulator.calls()["calls"]) == before + len(again)


def test_scan_refuses_an_output_of_another_list_unless_restart(scan_app, emulator, tmp_path):
    source = tmp_path / "suppliers.csv"
    write_supplier_list(source)
    out = tmp_path / "out.csv"
    app = scan_app()
    assert run(app, "asin", "scan", str(source), "-o", str(out)).exit_code == 0
    scanned = out.read_bytes()
    source.write_text(source.read_text(encoding="utf-8").replace(";2,50;2", ";2,75;2"), encoding="utf-8")  # a new price

    refused = run(app, "asin", "scan", str(source), "-o", str(out))
    assert refused.exit_code == 2
    assert "its row 2 has Unit Cost '2,50' but the list's row 2 has '2,75'" in refused.stderr and "--restart" in refused.stderr
    assert out.read_bytes() == scanned

    restarted = run(app, "asin", "scan", str(source), "-o", str(out), "--restart")
    assert restarted.exit_code == 0
    assert read_rows(out)[1]["Unit Cost"] == "2,75"

    batch_file = write_csv(tmp_path / "batch.csv", "asin", ["B0TEST0001"])
    not_a_scan = run(app, "asin", "scan", str(source), "-o", str(batch_file))
    assert not_a_scan.exit_code == 2 and "is not a scan result file of this list" in not_a_scan.stderr


def test_scan_reads_an_xlsx_list_and_resumes_it(scan_app, emulator, tmp_path):
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["Price list, December"])  # a title above the header
    sheet.append(["Item", "UPC", "Wholesale", "Units per case"])
    for n, asin in enumerate(SCAN_ASINS[:3]):
        sheet.append([f"item {n}", int(upc_of(asin)), 1.5 + n, 6 if n == 1 else None])  # numbers, as a spreadsheet keeps them
    source = tmp_path / "suppliers.xlsx"
    workbook.save(source)
    out = tmp_path / "out.csv"
    app = scan_app()

    result = run(app, "asin", "scan", str(source), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "(UPC column 'UPC', cost 'Wholesale', pack 'Units per case')" in result.stderr
    rows = read_rows(out)
    assert [(row["Item"], row["Wholesale"], row["asin"]) for row in rows] == [
        ("item 0", "1.5", SCAN_ASINS[0]),
        ("item 1", "2.5", SCAN_ASINS[1]),
        ("item 2", "3.5", SCAN_ASINS[2]),
    ]
    assert rows[1]["unit_cost"] == "0.42"  # 2.50 for a case of 6
    calls = emulator.calls()["total"]

    # The cells read back from OUT.csv are the workbook's numbers as written: a second run finds nothing left to do.
    again = run(app, "asin", "scan", str(source), "-o", str(out))
    assert again.exit_code == 0, again.output
    assert f"3 already in {out}, resuming" in again.stderr
    assert summary_of(again)[3] == 0 and summary_of(again)[2] == summary_of(result)[2]
    assert emulator.calls()["total"] == calls


def test_scan_errors_exit_2_before_any_lookup(app, emulator, tmp_path):
    out = tmp_path / "out.csv"
    no_cost = tmp_path / "no_cost.csv"
    no_cost.write_text("UPC,Description,Price\n758060622839,item,3.20\n", encoding="utf-8")
    result = run(app, "asin", "scan", str(no_cost), "-o", str(out))
    assert result.exit_code == 2
    assert f"Error: {no_cost}: The list has no cost column (name one cost, unit cost, wholesale" in result.stderr
    assert "columns seen: 'UPC', 'Description', 'Price'" in result.stderr

    named = run(app, "asin", "scan", str(no_cost), "-o", str(out), "--cost-column", "Cost")
    assert named.exit_code == 2 and "There is no column 'Cost' (the cost column)" in named.stderr

    source = tmp_path / "suppliers.csv"
    write_supplier_list(source)
    bad_roi = run(app, "asin", "scan", str(source), "-o", str(out), "--min-roi", "thirty")
    assert bad_roi.exit_code == 2
    assert "Error: --min-roi: Scan setting 'min_roi_percent' must be a number, not 'thirty'" in bad_roi.stderr
    bad_source = run(app, "asin", "scan", str(source), "-o", str(out), "--price-source", "cheapest")
    assert bad_source.exit_code == 2 and "--price-source: Scan setting 'price_source' must be one of buy_box" in bad_source.stderr

    garbled = tmp_path / "garbled.csv"
    garbled.write_bytes(b"UPC;Cost\n758060622839;1,50\n\xff\xfe;2,50\n")  # a bad line after a good one: still before any lookup
    unreadable = run(app, "asin", "scan", str(garbled), "-o", str(out))
    assert unreadable.exit_code == 2
    assert f"Error: {garbled}: Line 3 is not UTF-8 (byte 0xFF at character 1)" in unreadable.stderr

    assert not out.exists()
    assert emulator.calls()["total"] == 0


def test_scan_stops_when_sp_api_keeps_failing_and_resumes(scan_app, emulator, tmp_path, monkeypatch):
    monkeypatch.setattr(cli, "ITEM_RETRIES", RetryPolicy(max_retries=1, first_delay=0.0, jitter=0.0))
    source = tmp_path / "suppliers.csv"
    upcs = write_supplier_list(source)
    out = tmp_path / "out.csv"
    app = scan_app(circuit_failures=1000, max_retries=1, cache_backend="none")
    emulator.configure(fault_rate=1.0, fault_statuses=[500])

    stopped = run(app, "asin", "scan", str(source), "-o", str(out), "--chunk", "4")
    assert stopped.exit_code == 1
    # The first chunk's two bad rows need no SP-API, but its first two rows do: nothing is written.
    assert "stopped: SP-API kept failing for 2 inputs (UPSTREAM_ERROR: " in stopped.stderr
    assert f"0 of 14 written to {out}; run the same command again to resume" in stopped.stderr
    assert read_rows(out) == []
    # The first step and the one asked again: a search each, retried once by the service; nothing else was asked.
    assert calls_by_status(emulator, "searchCatalogItems") == {"500": 4}
    assert {call["operation"] for call in emulator.calls()["calls"]} == {"lwaToken", "searchCatalogItems"}

    emulator.configure(fault_rate=0.0)
    resumed = run(app, "asin", "scan", str(source), "-o", str(out), "--chunk", "4")
    assert resumed.exit_code == 0, resumed.output
    assert [row["UPC"] for row in read_rows(out)] == upcs


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
