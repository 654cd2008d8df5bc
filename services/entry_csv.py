"""Result CSVs and NDJSON written from lookup entries, and a result CSV read back to resume it.

Writing. `csv_rows` and `ndjson_lines` are generators of text lines for a streamed response
(`GET /jobs/<id>/results`) or a file (`flask asin batch`). A result CSV has one row of
`RESULT_COLUMNS` per input: the entry flattened (dimensions as numbers with a unit column, each
identifier type's codes in a column), or `PENDING` for an input not answered yet. Cells starting
with `=`, `+`, `-`, `@`, tab, CR or `'` get a leading `'` so a spreadsheet shows them as text
instead of running them as formulas (OWASP "CSV injection").

Resuming. `read_done_inputs` reads such a file back (removing that `'` again): the inputs it
already answers, and where its last whole row ends, so an interrupted `flask asin batch` appends
after them.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, BinaryIO

from services.entries import LookupEntry
from utils.csv_io import CsvError

PENDING = "PENDING"

RESULT_COLUMNS: tuple[str, ...] = (
    "input",
    "identifier_type",
    "asin",
    "country",
    "success",
    "error_code",
    "error_message",
    "title",
    "brand",
    "manufacturer",
    "sales_rank",
    "sales_rank_category",
    "sales_ranks",
    "model_number",
    "part_number",
    "color",
    "size",
    "item_classification",
    "product_type",
    "parent_asin",
    "upc",
    "ean",
    "gtin",
    "isbn",
    "image_url",
    "package_length",
    "package_width",
    "package_height",
    "package_dimensions_unit",
    "package_weight",
    "package_weight_unit",
    "item_length",
    "item_width",
    "item_height",
    "item_dimensions_unit",
    "item_weight",
    "item_weight_unit",
    "cached",
    "fetched_at",
    "other_asins",
)

# The columns each dataset adds after RESULT_COLUMNS when a job includes it: its facts flattened, and its error's code.
# `buy_box_price` is Pricing's, or Offers' when pricing is not included; `currency` once for every money dataset.
DATASET_COLUMNS: dict[str, tuple[str, ...]] = {
    "pricing": ("buy_box_price", "buy_box_listing_price", "buy_box_shipping", "new_offer_count", "used_offer_count", "pricing_error"),
    "offers": (
        "buy_box_price",
        "buy_box_seller",
        "lowest_fba_price",
        "lowest_fbm_price",
        "offer_count",
        "fba_offer_count",
        "fbm_offer_count",
        "amazon_on_listing",
        "offers_error",
    ),
    "fees": ("fees_price", "fees_price_source", "referral_fee", "fba_fee", "closing_fee", "other_fees", "total_fees", "fees_error"),
    "restrictions": ("restriction_status", "approval_url", "restriction_reasons", "restrictions_error"),
    "eligibility": ("inbound_eligible", "ineligibility_reasons", "eligibility_error"),
}
_MONEY_DATASETS = ("pricing", "offers", "fees")

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")


def result_columns(include: Iterable[str] = ()) -> tuple[str, ...]:
    """RESULT_COLUMNS, then the columns of each dataset `include` names (services/datasets.py's order), each once."""
    wanted = set(include)
    extra = [column for name, columns in DATASET_COLUMNS.items() if name in wanted for column in columns]
    if wanted.intersection(_MONEY_DATASETS):
        extra.append("currency")
    return RESULT_COLUMNS + tuple(dict.fromkeys(extra))


def _cell(value: Any) -> str:
    """A value as spreadsheet-safe text: booleans true/false, None empty, formula starts quoted."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)  # a number, negative or not, is no formula
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _dimension_cells(prefix: str, dimensions: Any) -> dict[str, Any]:
    """Length, width, height and weight as numbers with one unit column each (units in the cells if they differ)."""
    dims = dimensions if isinstance(dimensions, Mapping) else {}
    sides = {name: dims.get(name) or {} for name in ("length", "width", "height")}
    units = {side.get("unit") for side in sides.values() if side}
    one_unit = len(units) == 1
    cells: dict[str, Any] = {
        f"{prefix}_{name}": side.get("value") if one_unit else f"{side.get('value')} {side.get('unit')}"
        for name, side in sides.items()
        if side
    }
    cells[f"{prefix}_dimensions_unit"] = next(iter(units)) if one_unit else None
    weight = dims.get("weight") or {}
    cells[f"{prefix}_weight"] = weight.get("value")
    cells[f"{prefix}_weight_unit"] = weight.get("unit")
    return cells


def _result_cells(input_value: str, entry: LookupEntry | None) -> dict[str, Any]:
    """The RESULT_COLUMNS cells of one input's entry (None: not processed yet)."""
    if entry is None:
        return {"input": input_value, "error_code": PENDING, "error_message": "Not processed yet"}
    error = entry.get("error") or {}
    identifiers = entry.get("Identifiers") or {}
    ranks = entry.get("SalesRanks") or []
    asin = entry.get("asin")
    return {
        "input": input_value,
        "identifier_type": entry.get("identifier_type") or "ASIN",
        "asin": asin,
        "country": entry.get("country"),
        "success": entry.get("success"),
        "error_code": error.get("code"),
        "error_message": error.get("message"),
        "title": entry.get("Title"),
        "brand": entry.get("Brand"),
        "manufacturer": entry.get("Manufacturer"),
        "sales_rank": entry.get("SalesRank"),
        "sales_rank_category": entry.get("SalesRankCategory"),
        "sales_ranks": "; ".join(f"{rank.get('title') or rank.get('id')}: {rank.get('rank')}" for rank in ranks),
        "model_number": entry.get("ModelNumber"),
        "part_number": entry.get("PartNumber"),
        "color": entry.get("Color"),
        "size": entry.get("Size"),
        "item_classification": entry.get("ItemClassification"),
        "product_type": entry.get("ProductType"),
        "parent_asin": entry.get("ParentAsin"),
        **{kind.lower(): " ".join(identifiers.get(kind) or []) for kind in ("UPC", "EAN", "GTIN", "ISBN")},
        "image_url": entry.get("ImageUrl"),
        **_dimension_cells("package", entry.get("PackageDimensions")),
        **_dimension_cells("item", entry.get("ItemDimensions")),
        "cached": entry.get("cached"),
        "fetched_at": entry.get("fetched_at"),
        "other_asins": " ".join(
            match["asin"] for match in entry.get("matches") or [] if isinstance(match, Mapping) and match.get("asin") not in (None, asin)
        ),
    }


def _dataset_cells(entry: Mapping[str, Any], include: frozenset[str]) -> dict[str, Any]:
    """The DATASET_COLUMNS cells of the datasets `include` names that the entry carries."""

    def facts(key: str) -> Mapping[str, Any]:
        found = entry.get(key)
        return found if key.lower() in include and isinstance(found, Mapping) else {}

    def error_code(key: str) -> Any:
        error = facts(key).get("error")
        return error.get("code") if isinstance(error, Mapping) else None

    def codes(reasons: Any) -> str:
        return ";".join(str(r.get("code")) for r in reasons if isinstance(r, Mapping)) if isinstance(reasons, list) else ""

    pricing, offers, fees = facts("Pricing"), facts("Offers"), facts("Fees")
    restrictions, eligibility = facts("Restrictions"), facts("Eligibility")
    approval = next(
        (r.get("approval_url") for r in restrictions.get("reasons") or [] if isinstance(r, Mapping) and r.get("approval_url")), None
    )
    cells: dict[str, Any] = {
        **{column: offers.get(column) for column in DATASET_COLUMNS["offers"]},
        **{column: pricing.get(column) for column in DATASET_COLUMNS["pricing"] if "pricing" in include},
        "fees_price": fees.get("price"),
        "fees_price_source": fees.get("price_source"),
        **{column: fees.get(column) for column in ("referral_fee", "fba_fee", "closing_fee", "other_fees", "total_fees")},
        "restriction_status": restrictions.get("status"),
        "approval_url": approval,
        "restriction_reasons": codes(restrictions.get("reasons")),
        "inbound_eligible": eligibility.get("eligible"),
        "ineligibility_reasons": codes(eligibility.get("reasons")),
        "currency": next((found.get("currency") for found in (pricing, offers, fees) if found.get("currency")), None),
    }
    for key in ("Pricing", "Offers", "Fees", "Restrictions", "Eligibility"):
        cells[f"{key.lower()}_error"] = error_code(key)
    return cells


def csv_lines() -> Callable[[Iterable[Any]], str]:
    """A writer of CSV lines: each call turns one row of values into one CRLF-terminated line of spreadsheet-safe cells."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def line(values: Iterable[Any]) -> str:
        writer.writerow(_cell(value) for value in values)
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    return line


def csv_rows(items: Iterable[tuple[str, LookupEntry | None]], *, bom: bool = False, include: Iterable[str] = ()) -> Iterator[str]:
    """The header line (result_columns(include)), then one CRLF-terminated line per (input, entry or None for pending)."""
    line = csv_lines()
    # Excel reads a CSV without a byte-order mark as the local code page, garbling non-ASCII titles.
    included = frozenset(include)
    columns = result_columns(included)
    yield ("\ufeff" if bom else "") + line(columns)
    for input_value, entry in items:
        cells = _result_cells(input_value, entry)
        if included and entry is not None:
            cells.update(_dataset_cells(entry, included))
        yield line(cells.get(column) for column in columns)


def ndjson_lines(items: Iterable[LookupEntry]) -> Iterator[str]:
    """One compact JSON object per entry, each on a line of its own ending in a newline."""
    for item in items:
        yield json.dumps(item, separators=(",", ":")) + "\n"


# -- resuming a result file --------------------------------------------------------------------------


@dataclass(frozen=True)
class DoneInputs:
    """What a result CSV already holds: its finished inputs in order, and where to append the next row."""

    inputs: list[str]
    # Bytes from the start of the file to the end of the last finished row: truncate the file here
    # before appending. 0 means there is no header yet either.
    end_offset: int


class _WholeLines:
    """Complete UTF-8 lines of a binary file, counting the bytes handed out; a last line without a newline is dropped."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.offset = 0

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        raw = self._stream.readline()
        if not raw.endswith(b"\n"):  # the end, or a row cut off by an interrupted write
            raise StopIteration
        try:
            line = raw.decode("utf-8-sig" if self.offset == 0 else "utf-8")
        except UnicodeDecodeError as exc:
            raise CsvError(f"The result file is not UTF-8 after byte {self.offset}: {exc.reason}") from None
        self.offset += len(raw)
        return line


def _uncell(text: str) -> str:
    """Undo _cell's formula guard."""
    return text[1:] if text.startswith("'") and text[1:].startswith(_FORMULA_STARTS) else text


class WholeRows:
    """The rows of a result CSV with `header`, as far as they are whole; `end` is where the last row taken ends.

    A row is taken once the next one is asked for (a loop that stops at a row leaves `end` before it);
    the rows stop at one cut off by an interrupted write. CsvError(`refusal`) if the header is another.
    """

    def __init__(self, stream: BinaryIO, header: Sequence[str], refusal: str) -> None:
        self._lines = _WholeLines(stream)
        # strict: a quoted field cut off by the end of the file is an error, not a short row.
        self._reader = csv.reader(self._lines, strict=True)
        self._width = len(header)
        self.end = 0
        try:
            found = next(self._reader, None)
        except csv.Error:
            found = []
        self._empty = found is None
        if found is not None:
            if list(found) != list(header):
                raise CsvError(refusal)
            self.end = self._lines.offset

    def __iter__(self) -> Iterator[list[str]]:
        if self._empty:
            return
        while True:
            try:
                row = next(self._reader)
            except (StopIteration, csv.Error):
                return
            if len(row) != self._width:
                return
            ends_at = self._lines.offset
            yield row
            self.end = ends_at


def read_done_inputs(path: str | os.PathLike[str]) -> DoneInputs:
    """The inputs of a result CSV written by csv_rows, up to its first pending or cut-off row (none if no file)."""
    if not os.path.exists(path):
        return DoneInputs([], 0)
    error_code = RESULT_COLUMNS.index("error_code")
    inputs: list[str] = []
    with open(path, "rb") as stream:
        rows = WholeRows(stream, RESULT_COLUMNS, f"{os.fspath(path)} is not a result file: its header is not {','.join(RESULT_COLUMNS)}")
        for row in rows:
            if row[error_code] == PENDING:
                break
            inputs.append(_uncell(row[0]))
    return DoneInputs(inputs, rows.end)
