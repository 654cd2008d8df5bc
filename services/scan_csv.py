"""A scan's result CSV (and XLSX): the supplier's columns exactly as given, then what the scan found and decided, one row per input row.

Money is rounded to cents here only (JSON keeps SP-API's numbers), percentages to one decimal. An
output column whose name the input already has (compared case-insensitively) is written `scan_<name>`,
so both are kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font, PatternFill

from services.entry_csv import csv_lines

SCAN_COLUMNS: tuple[str, ...] = (
    "asin",
    "title",
    "sales_rank",
    "sales_rank_category",
    "amazon_pack_quantity",
    "buy_box_price",
    "buy_box_seller",
    "fba_offer_count",
    "fbm_offer_count",
    "amazon_on_listing",
    "referral_fee",
    "fba_fee",
    "total_fees",
    "sale_price",
    "unit_cost",
    "profit",
    "roi_percent",
    "margin_percent",
    "max_cost",
    "restriction_status",
    "approval_url",
    "inbound_eligible",
    "verdict",
    "reasons",
    "stage",
)
_MONEY = frozenset({"buy_box_price", "referral_fee", "fba_fee", "total_fees", "sale_price", "unit_cost", "profit", "max_cost"})
_PERCENT = frozenset({"roi_percent", "margin_percent"})
# The verdict cell's fill in the XLSX: green, amber, grey.
_VERDICT_FILLS = {
    "BUY": PatternFill("solid", fgColor="C6EFCE"),
    "REVIEW": PatternFill("solid", fgColor="FFEB9C"),
    "SKIP": PatternFill("solid", fgColor="E7E6E6"),
}


def output_names(input_columns: Sequence[str]) -> list[str]:
    """SCAN_COLUMNS as the file names them: `scan_<name>` where the input has a column of that name."""
    taken = {column.strip().lower() for column in input_columns}
    return [f"scan_{name}" if name in taken else name for name in SCAN_COLUMNS]


def _rounded(value: Any, places: str) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    return Decimal(str(value)).quantize(Decimal(places), rounding=ROUND_HALF_UP)


def scan_cells(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The SCAN_COLUMNS cells of one scan entry."""

    def part(key: str) -> Mapping[str, Any]:
        found = entry.get(key)
        return found if isinstance(found, Mapping) and "error" not in found else {}

    scan, pricing, offers, fees = part("Scan"), part("Pricing"), part("Offers"), part("Fees")
    restrictions, eligibility = part("Restrictions"), part("Eligibility")
    approval = next((r.get("approval_url") for r in restrictions.get("reasons") or [] if r.get("approval_url")), None)
    cells = {
        "asin": entry.get("asin") if entry.get("success") else None,
        "title": entry.get("Title"),
        "sales_rank": entry.get("SalesRank"),
        "sales_rank_category": entry.get("SalesRankCategory"),
        "amazon_pack_quantity": scan.get("amazon_pack_quantity"),
        "buy_box_price": pricing.get("buy_box_price") if pricing.get("buy_box_price") is not None else offers.get("buy_box_price"),
        "buy_box_seller": offers.get("buy_box_seller"),
        "fba_offer_count": offers.get("fba_offer_count"),
        "fbm_offer_count": offers.get("fbm_offer_count"),
        "amazon_on_listing": offers.get("amazon_on_listing"),
        "referral_fee": fees.get("referral_fee"),
        "fba_fee": fees.get("fba_fee"),
        **{key: scan.get(key) for key in ("total_fees", "sale_price", "unit_cost", "profit", "roi_percent", "margin_percent", "max_cost")},
        "restriction_status": restrictions.get("status"),
        "approval_url": approval,
        "inbound_eligible": eligibility.get("eligible"),
        "verdict": scan.get("verdict"),
        "reasons": ";".join(reason["code"] for reason in scan.get("reasons") or []),
        "stage": scan.get("stage"),
    }
    for key in _MONEY:
        cells[key] = _rounded(cells[key], "0.01")
    for key in _PERCENT:
        cells[key] = _rounded(cells[key], "0.1")
    return cells


def scan_csv_rows(input_columns: Sequence[str], entries: Iterable[Mapping[str, Any]], *, bom: bool = False) -> Iterator[str]:
    """The header (the input's columns, then the scan's), then one CRLF-terminated line per entry."""
    names = output_names(input_columns)
    lines = csv_lines()
    yield ("\ufeff" if bom else "") + lines([*input_columns, *names])
    for entry in entries:
        given = entry.get("input") if isinstance(entry.get("input"), Mapping) else {}
        cells = scan_cells(entry)
        yield lines([*(given.get(column) for column in input_columns), *(cells[name] for name in SCAN_COLUMNS)])


def scan_xlsx(input_columns: Sequence[str], entries: Iterable[Mapping[str, Any]], path_or_stream: Any) -> None:
    """The same table as scan_csv_rows, as an XLSX workbook (one sheet, written as a stream) with each verdict cell coloured."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet("scan")
    names = output_names(input_columns)
    header = []
    for name in [*input_columns, *names]:
        cell = WriteOnlyCell(sheet, value=name)
        cell.font = Font(bold=True)
        header.append(cell)
    sheet.append(header)
    for entry in entries:
        given = entry.get("input") if isinstance(entry.get("input"), Mapping) else {}
        cells = scan_cells(entry)
        row: list[Any] = [_xlsx_value(given.get(column)) for column in input_columns]
        for name in SCAN_COLUMNS:
            value = _xlsx_value(cells[name])
            if name == "verdict" and value in _VERDICT_FILLS:
                cell = WriteOnlyCell(sheet, value=value)
                cell.fill = _VERDICT_FILLS[value]
                value = cell
            row.append(value)
        sheet.append(row)
    book.save(path_or_stream)


def _xlsx_value(value: Any) -> Any:
    """A cell's value: numbers as numbers (Decimal as float), everything else as text; a formula start never runs."""
    if isinstance(value, Decimal):
        return float(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    text = str(value)
    return "'" + text if text.startswith("=") else text
