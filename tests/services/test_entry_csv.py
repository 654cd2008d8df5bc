"""Result CSVs and NDJSON written from lookup entries, and a result CSV read back to resume it."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from services.entries import LookupEntry, failed_entry, found_entry, identifier_matched_entry
from services.entry_csv import RESULT_COLUMNS, DoneInputs, csv_rows, ndjson_lines, read_done_inputs, result_columns
from services.errors import ServiceError
from utils.csv_io import CsvError
from utils.marketplaces import resolve_country

US = resolve_country("US")


def catalog_item(asin: str, title: str) -> dict[str, Any]:
    """A Catalog Items 2022-04-01 item with the datasets product_facts reads."""
    mp = US.marketplace_id
    return {
        "asin": asin,
        "summaries": [{"marketplaceId": mp, "itemName": title, "brand": "Amazon", "manufacturer": "Amazon", "modelNumber": "C78MP8"}],
        "salesRanks": [
            {
                "marketplaceId": mp,
                "displayGroupRanks": [{"websiteDisplayGroup": "amazon_devices", "title": "Amazon Devices", "rank": 12}],
                "classificationRanks": [{"classificationId": "1", "title": "Smart Speakers", "rank": 3}],
            }
        ],
        "identifiers": [
            {
                "marketplaceId": mp,
                "identifiers": [
                    {"identifierType": "UPC", "identifier": "887276302195"},
                    {"identifierType": "EAN", "identifier": "0887276302195"},
                ],
            }
        ],
        "dimensions": [
            {
                "marketplaceId": mp,
                "package": {
                    "length": {"value": 4.0, "unit": "inches"},
                    "width": {"value": 4.1, "unit": "inches"},
                    "height": {"value": 3.7, "unit": "inches"},
                    "weight": {"value": 0.7, "unit": "pounds"},
                },
            }
        ],
    }


def product(asin: str, title: str) -> LookupEntry:
    """A found entry as the service makes it, answered from the cache at a known time."""
    return {**found_entry(asin, US, catalog_item(asin, title)), "cached": True, "fetched_at": "2026-11-29T04:01:02Z"}


def failed(asin: str, code: str, message: str) -> LookupEntry:
    return failed_entry(asin, US, ServiceError(code, message))


def parse(lines: list[str]) -> list[dict[str, str]]:
    text = "".join(lines)
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert tuple(rows[0]) == RESULT_COLUMNS
    assert all(len(row) == len(RESULT_COLUMNS) for row in rows)
    return [dict(zip(RESULT_COLUMNS, row, strict=True)) for row in rows[1:]]


def test_result_csv_round_trips_through_csv_reader():
    title = 'Echo Dot (3rd Gen), "Charcoal"\nsmart speaker'
    upc_entry = identifier_matched_entry("887276302195", "UPC", [product("B07N4M94X4", title), product("B0BUNDLE01", "Echo Dot bundle")])
    lines = list(
        csv_rows(
            [
                ("887276302195", upc_entry),
                ("B000000000", failed("B000000000", "NOT_FOUND", "ASIN B000000000 not found")),
                ("B07N4M94X5", None),
            ]
        )
    )
    assert all(line.endswith("\r\n") for line in lines)
    found, missing, pending = parse(lines)
    assert found["input"] == "887276302195"
    assert (found["identifier_type"], found["asin"], found["success"], found["error_code"]) == ("UPC", "B07N4M94X4", "true", "")
    assert found["title"] == 'Echo Dot (3rd Gen), "Charcoal"\nsmart speaker'
    assert (found["sales_rank"], found["sales_rank_category"]) == ("12", "Amazon Devices")
    assert found["sales_ranks"] == "Amazon Devices: 12; Smart Speakers: 3"
    assert (found["brand"], found["model_number"], found["upc"], found["ean"]) == ("Amazon", "C78MP8", "887276302195", "0887276302195")
    package = [found[f"package_{name}"] for name in ("length", "width", "height", "dimensions_unit", "weight", "weight_unit")]
    assert package == ["4.0", "4.1", "3.7", "inches", "0.7", "pounds"]
    assert (found["item_length"], found["cached"], found["fetched_at"]) == ("", "true", "2026-11-29T04:01:02Z")
    assert found["other_asins"] == "B0BUNDLE01"
    assert (missing["identifier_type"], missing["success"], missing["error_code"], missing["title"]) == ("ASIN", "false", "NOT_FOUND", "")
    assert missing["error_message"] == "ASIN B000000000 not found"
    assert (pending["input"], pending["success"], pending["error_code"]) == ("B07N4M94X5", "", "PENDING")


def test_the_datasets_a_job_includes_add_their_columns_after_the_catalogs():
    found = found_entry("B07N4M94X4", US, catalog_item("B07N4M94X4", "Echo"))
    entry = {
        **found,
        "Pricing": {"buy_box_price": 24.99, "new_offer_count": 7, "currency": "USD"},
        "Offers": {"buy_box_price": 25.5, "buy_box_seller": "AMAZON", "fba_offer_count": 3, "amazon_on_listing": True, "currency": "USD"},
        "Fees": {"error": {"code": "THROTTLED", "message": "later"}},
        "Restrictions": {
            "status": "APPROVAL_REQUIRED",
            "reasons": [{"code": "APPROVAL_REQUIRED", "message": "m", "approval_url": "https://sellercentral.amazon.com/a"}],
        },
        "Eligibility": {"eligible": False, "reasons": [{"code": "FBA_INB_0004", "message": "m"}, {"code": "FBA_INB_0014", "message": "m"}]},
    }
    include = ("pricing", "offers", "fees", "restrictions", "eligibility")
    (row,) = csv.DictReader(io.StringIO("".join(csv_rows([("B07N4M94X4", entry)], include=include))))
    assert list(row)[: len(RESULT_COLUMNS)] == list(RESULT_COLUMNS)
    assert list(row)[len(RESULT_COLUMNS) :] == list(result_columns(include)[len(RESULT_COLUMNS) :])
    assert row["buy_box_price"] == "24.99", "Pricing's Buy Box when both are included"
    assert (row["buy_box_seller"], row["amazon_on_listing"], row["fba_offer_count"]) == ("AMAZON", "true", "3")
    assert (row["total_fees"], row["fees_error"]) == ("", "THROTTLED")
    assert (row["restriction_status"], row["approval_url"]) == ("APPROVAL_REQUIRED", "https://sellercentral.amazon.com/a")
    assert (row["inbound_eligible"], row["ineligibility_reasons"]) == ("false", "FBA_INB_0004;FBA_INB_0014")
    assert row["currency"] == "USD"
    only_offers = next(csv.DictReader(io.StringIO("".join(csv_rows([("B07N4M94X4", entry)], include=["offers"])))))
    assert only_offers["buy_box_price"] == "25.5" and "total_fees" not in only_offers
    assert next(csv_rows([])) == ",".join(RESULT_COLUMNS) + "\r\n", "no include: the columns as before"


def test_cells_that_a_spreadsheet_would_run_as_formulas_are_quoted():
    entry = product("B07N4M94X4", '=HYPERLINK("http://evil.example","click")')
    entry.update(Brand="@SUM(1+1)", Manufacturer="-2+3", Color="+red")
    row = parse(list(csv_rows([("=1+1", entry)])))[0]
    assert row["input"] == "'=1+1"
    assert row["title"] == '\'=HYPERLINK("http://evil.example","click")'
    assert (row["brand"], row["manufacturer"], row["color"]) == ("'@SUM(1+1)", "'-2+3", "'+red")
    assert row["sales_rank"] == "12"


def test_a_byte_order_mark_only_when_asked():
    assert not next(csv_rows([])).startswith("\ufeff")
    assert next(csv_rows([], bom=True)) == "\ufeff" + ",".join(RESULT_COLUMNS) + "\r\n"


def test_ndjson_lines_parse_one_object_each():
    entries = [product("B07N4M94X4", "Echo\nDot"), failed("B000000000", "NOT_FOUND", "not found")]
    lines = list(ndjson_lines(entries))
    assert len(lines) == 2 and all(line.endswith("\n") and line.count("\n") == 1 for line in lines)
    assert [json.loads(line) for line in lines] == entries


# -- resuming ------------------------------------------------------------------------------------


def write(path: Path, lines: list[str]) -> None:
    path.write_bytes("".join(lines).encode())


def test_done_inputs_of_a_complete_file(tmp_path):
    path = tmp_path / "out.csv"
    write(path, list(csv_rows([("B07N4M94X4", product("B07N4M94X4", "Echo")), ("=cmd", failed("=cmd", "INVALID_ASIN", "bad"))])))
    done = read_done_inputs(path)
    assert done == DoneInputs(["B07N4M94X4", "=cmd"], path.stat().st_size)


def test_a_row_cut_off_by_an_interrupted_write_is_not_done(tmp_path):
    path = tmp_path / "out.csv"
    lines = list(csv_rows([(f"B07N4M94X{i}", product(f"B07N4M94X{i}", "Title\nsecond line")) for i in range(3)]))
    complete = "".join(lines[:3]).encode()
    last = lines[3].encode()
    for cut in (5, last.index(b"\n") + 1, len(last) - 1):
        path.write_bytes(complete + last[:cut])
        assert read_done_inputs(path) == DoneInputs(["B07N4M94X0", "B07N4M94X1"], len(complete)), cut


def test_appending_after_the_done_rows_gives_one_valid_file(tmp_path):
    path = tmp_path / "out.csv"
    rows = [(f"B07N4M94X{i}", product(f"B07N4M94X{i}", f"Title {i}")) for i in range(4)]
    lines = list(csv_rows(rows, bom=True))
    path.write_bytes("".join(lines[:3]).encode() + lines[3].encode()[:20])
    done = read_done_inputs(path)
    assert done.inputs == ["B07N4M94X0", "B07N4M94X1"]
    with open(path, "r+b") as out:
        out.truncate(done.end_offset)
        out.seek(done.end_offset)
        out.write("".join(list(csv_rows(rows[2:]))[1:]).encode())
    assert read_done_inputs(path).inputs == [f"B07N4M94X{i}" for i in range(4)]


def test_pending_rows_are_not_done(tmp_path):
    path = tmp_path / "out.csv"
    write(path, list(csv_rows([("B07N4M94X4", product("B07N4M94X4", "Echo")), ("B07N4M94X5", None), ("B07N4M94X6", None)])))
    done = read_done_inputs(path)
    assert done.inputs == ["B07N4M94X4"]
    assert done.end_offset == len("".join(list(csv_rows([("B07N4M94X4", product("B07N4M94X4", "Echo"))]))).encode())


def test_no_file_or_an_empty_file_means_start_with_the_header(tmp_path):
    assert read_done_inputs(tmp_path / "missing.csv") == DoneInputs([], 0)
    (tmp_path / "empty.csv").write_bytes(b"")
    assert read_done_inputs(tmp_path / "empty.csv") == DoneInputs([], 0)


def test_a_file_that_is_not_a_result_file_is_refused(tmp_path):
    path = tmp_path / "input.csv"
    path.write_bytes(b"asin\r\nB07N4M94X4\r\n")
    with pytest.raises(CsvError, match="not a result file"):
        read_done_inputs(path)
