"""Supplier price lists in: a CSV or XLSX upload, or JSON items, read into rows a seller can scan for profit.

Forms. `read_supplier_csv` reads a UTF-8 CSV (BOM or not) the way utils/csv_io.py does: the
delimiter is sniffed from the first `SAMPLE_CHARS`, the rest is parsed one line at a time.
`read_supplier_xlsx` reads the first worksheet of an .xlsx with openpyxl in read-only mode
(cached formula values, not formulas). `read_supplier_upload` tells the two apart by the first
bytes (an .xlsx is a zip). `read_supplier_items` takes JSON items: a list of objects such as
`{"upc": "...", "cost": 3.20, "pack_quantity": 6}`, each with its own keys.

Columns. A file's header is the first non-blank row that names an identifier column; rows above it
(a title, a date) are skipped, among at most `HEADER_SEARCH_ROWS` non-blank rows. Names are
compared as csv_io compares them (lower case; spaces, `_`, `-`, `.`, `#`, `/` ignored), and the
identifier column is chosen by csv_io's rules (asin, upc, ean, gtin, isbn, jan and their variants;
"barcode" takes its type from the values). The cost column is the first of `COST_NAMES` present,
the pack column the first of `PACK_NAMES`; `cost_column=` and `pack_column=` name them instead
(exactly, or by the same comparison). Header names are stripped; a blank header cell is named
"column N" (N counted from 1) and a repeated name gets " (2)", " (3)", so that every cell keeps its
place in `fields`. Blank header cells at the right end are dropped, and so are cells to the right
of the last named column.

Cells. Every problem of a cell fails its own row only (`SupplierRow.error`, the row's first
problem in the order identifier, cost, pack):
- Codes. A number lost its leading zeros in a spreadsheet (12345678905 for UPC 012345678905):
  up to `MAX_RESTORED_ZEROS` zeros are put back, to the length of the column's type (UPC 12,
  EAN and JAN 13, GTIN 14, ISBN and a digits-only ASIN 10, the ISBN-10 of a book), and the code is
  kept only when its check digit holds. GTINs come out as 14 digits, as utils/identifiers gives
  them. An XLSX number cell (12345678905.0) and a CSV's "12345678905.0" are the integer's digits.
  A code in scientific notation (1.23457E+11) lost its digits for good: INVALID_IDENTIFIER.
- Cost. An amount in any of the forms people type: $3.20, 3.20 USD, €3,20, 1,234.50, 1.234,50,
  1 234,50, (3.20) for a negative. A lone separator followed by exactly three digits is a
  thousands separator unless it is the list's decimal separator (a comma in a `;`-separated CSV,
  a point everywhere else): "1,234" is 1234 in a comma CSV and 1.234 in a `;` one. An empty cell,
  text that is not an amount, and a negative amount are INVALID_COST; 0 is a cost. The cost is
  the cell's amount as the supplier states it: nothing here divides it by the pack quantity.
- Pack. An empty cell is 1; a whole number of 1 or more (6, 6.0, "1,000") is kept; anything else
  is INVALID_PACK (its row's pack_quantity then reads 1).

Memory. After the header, rows are read, checked and handed out one at a time: a 100,000-row
file is never held in memory (XLSX: besides openpyxl's shared strings). Consume `rows` to the end
(or close it) so that the workbook is closed; the caller's stream is never closed.
"""

from __future__ import annotations

import re
import unicodedata
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from itertools import chain, islice
from typing import BinaryIO

from openpyxl import load_workbook
from openpyxl.workbook.workbook import Workbook

from utils.asins import InvalidAsin, normalize_asin
from utils.csv_io import (
    HEADER_NAMES,
    CsvError,
    Lines,
    choose_column,
    clean_cell,
    data_rows,
    header_key,
    open_csv,
)
from utils.identifiers import InvalidIdentifier, normalize_identifier

INVALID_IDENTIFIER = "INVALID_IDENTIFIER"
INVALID_COST = "INVALID_COST"
# Bounds beyond any supplier's list: a cell past them is a slip (a code in the cost column, say), not a price or a case.
MAX_COST = 10**9
MAX_PACK = 10**6
INVALID_PACK = "INVALID_PACK"

# Column names (compared as csv_io's header_key leaves them), the first present wins.
COST_NAMES = ("cost", "unitcost", "wholesale", "wholesaleprice", "supplierprice", "buyprice")
PACK_NAMES = ("pack", "packquantity", "casepack", "packsize", "unitspercase")
_COST_NAMES_SHOWN = "cost, unit cost, wholesale, wholesale price, supplier price or buy price"
_IDENTIFIER_NAMES_SHOWN = "asin, upc, ean, gtin, isbn or jan"
# A title or a date may stand above the header; further down, a missing header is a missing header.
HEADER_SEARCH_ROWS = 10
# XLSX rows read ahead to guess the type of a "barcode" column (CSV uses csv_io's sample).
XLSX_SAMPLE_ROWS = 200
# A GTIN-14 of a UPC that starts with 0 has three leading zeros; a shorter number is no code.
MAX_RESTORED_ZEROS = 3
# Length a code of each type is padded to when a spreadsheet stored it as a number.
_PADDED_LENGTH = {"UPC": 12, "EAN": 13, "JAN": 13, "GTIN": 14, "ISBN": 10, "ASIN": 10}

_ZIP_MAGIC = b"PK\x03\x04"
_SCIENTIFIC = re.compile(r"[0-9]+(?:[.,][0-9]+)?[eE]\+[0-9]+")  # Excel writes 1.23457E+11
_WHOLE_DECIMAL = re.compile(r"([0-9]+)\.0+")
# From the first digit (or the separator before it: .50) to the last one.
_NUMBER_SPAN = re.compile(r"[.,]?[0-9](?:.*[0-9])?")
_NUMBER = re.compile(r"[0-9.,' \u00a0\u202f]+")
_GROUP_SEPARATORS = re.compile(r"[.,' \u00a0\u202f]")
_CURRENCY_WORD = re.compile(r"(?:[^\W\d_]{1,3}\.?)?")  # USD, EUR, kr, Rs.
_SIGNS = str.maketrans("", "", "+-\u2212")
_SHOWN_MAX = 40


class SupplierListError(ValueError):
    """A supplier list that cannot be read at all (no identifier or cost column, not CSV/XLSX); the message is meant for the user."""


@dataclass(frozen=True)
class SupplierRow:
    """One row of a supplier list: its own cells, the code to look up, the cost and pack, and its first problem."""

    position: int  # 0-based among the list's rows, in input order (blank rows are not rows)
    fields: dict[str, object]  # the row's cells by column name, in the file's order (JSON: the item's keys)
    identifier: str  # normalized code; the cell's text when invalid
    identifier_type: str  # ASIN, UPC, EAN, GTIN, ISBN or JAN
    cost: Decimal | None  # None when the cost is invalid
    pack_quantity: int  # 1 when empty (or invalid)
    error: tuple[str, str] | None = None  # (INVALID_IDENTIFIER | INVALID_COST | INVALID_PACK, message)


@dataclass(frozen=True)
class SupplierList:
    """A supplier list's columns and its rows, read lazily."""

    columns: list[str]
    identifier_column: str
    identifier_type: str
    cost_column: str
    pack_column: str | None
    # Read as consumed; raises SupplierListError on a line that cannot be read at all (not UTF-8, too long).
    rows: Iterator[SupplierRow]


class _CellError(ValueError):
    """A cell that fails its row; the message says why."""


@dataclass(frozen=True)
class _Columns:
    """Where a file's identifier, cost and pack cells are."""

    names: list[str]
    identifier: int
    identifier_type: str
    cost: int
    pack: int | None
    decimal_comma: bool

    def row(self, position: int, cells: Sequence[object], missing: object) -> SupplierRow:
        """The row of a file's cells (a short row's missing cells read as `missing`)."""
        fields = {name: cells[index] if index < len(cells) else missing for index, name in enumerate(self.names)}
        return _supplier_row(
            position,
            fields,
            fields[self.names[self.identifier]],
            self.identifier_type,
            fields[self.names[self.cost]],
            None if self.pack is None else fields[self.names[self.pack]],
            self.decimal_comma,
        )

    def supplier_list(self, rows: Iterator[SupplierRow]) -> SupplierList:
        return SupplierList(
            columns=self.names,
            identifier_column=self.names[self.identifier],
            identifier_type=self.identifier_type,
            cost_column=self.names[self.cost],
            pack_column=None if self.pack is None else self.names[self.pack],
            rows=rows,
        )


# -- entry points ----------------------------------------------------------------------------------


def read_supplier_upload(stream: BinaryIO, *, cost_column: str | None = None, pack_column: str | None = None) -> SupplierList:
    """Read an uploaded supplier list, XLSX when it starts like a zip (and the stream can seek), CSV otherwise."""
    if stream.seekable():
        start = stream.tell()
        magic = stream.read(len(_ZIP_MAGIC))
        stream.seek(start)
        if magic == _ZIP_MAGIC:
            return read_supplier_xlsx(stream, cost_column=cost_column, pack_column=pack_column)
    return read_supplier_csv(stream, cost_column=cost_column, pack_column=pack_column)


def read_supplier_csv(stream: BinaryIO, *, cost_column: str | None = None, pack_column: str | None = None) -> SupplierList:
    """Read a CSV supplier list (binary, UTF-8 with or without BOM; `,` `;` tab or `|` sniffed), rows lazily."""
    try:
        opened = open_csv(stream)
    except CsvError as exc:
        raise SupplierListError(str(exc)) from None
    try:
        skipped, columns = _find_columns(opened.rows, cost_column, pack_column, decimal_comma=opened.delimiter == ";")
        if opened.complete and len(opened.rows) == skipped + 1:
            raise SupplierListError("The CSV file has a header but no rows")
    except SupplierListError:
        opened.lines.release()
        raise
    return columns.supplier_list(_csv_rows(opened.lines, opened.delimiter, skipped + 1, columns))


def read_supplier_xlsx(stream: BinaryIO, *, cost_column: str | None = None, pack_column: str | None = None) -> SupplierList:
    """Read the first worksheet of an .xlsx supplier list (openpyxl read-only, cached values), rows lazily."""
    try:
        workbook = load_workbook(stream, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError) as exc:  # KeyError: a zip without a workbook in it
        raise SupplierListError(f"The file is not an .xlsx workbook ({exc}); save it as .xlsx or CSV UTF-8 and upload it again") from None
    try:
        if not workbook.worksheets:
            raise SupplierListError("The workbook has no worksheet")
        rows = (row for row in workbook.worksheets[0].iter_rows(values_only=True) if not _is_blank_xlsx_row(row))
        ahead = list(islice(rows, HEADER_SEARCH_ROWS + XLSX_SAMPLE_ROWS))
        if not ahead:
            raise SupplierListError("The first worksheet has no rows")
        skipped, columns = _find_columns([[_cell_text(cell) for cell in row] for row in ahead], cost_column, pack_column)
        if len(ahead) == skipped + 1:
            raise SupplierListError("The first worksheet has a header but no rows")
    except SupplierListError:
        workbook.close()
        raise
    return columns.supplier_list(_xlsx_rows(workbook, chain(ahead[skipped + 1 :], rows), columns))


def read_supplier_items(
    items: Sequence[Mapping[str, object]], *, cost_column: str | None = None, pack_column: str | None = None
) -> SupplierList:
    """Read JSON items (objects with an identifier key such as "upc", a cost and a pack key); each item keeps its own keys."""
    if isinstance(items, str | bytes) or not isinstance(items, Sequence):
        raise SupplierListError(f"The items must be a list of objects, got {type(items).__name__}")
    if not items:
        raise SupplierListError("The list has no items")
    keys: dict[str, None] = {}
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise SupplierListError(f"Item {index} is not an object (got {type(item).__name__})")
        keys.update(dict.fromkeys(item))
    names = list(keys)
    identifier = next((found for item in items if (found := _item_identifier(item)) is not None), None)
    if identifier is None:
        raise SupplierListError(f"No item has an identifier ({_IDENTIFIER_NAMES_SHOWN}); keys seen: {_shown_names(names)}")
    cost = _column(names, COST_NAMES, cost_column, "cost")
    if cost is None:
        raise SupplierListError(f"No item has a cost ({_COST_NAMES_SHOWN}); keys seen: {_shown_names(names)}")
    pack = _column(names, PACK_NAMES, pack_column, "pack")
    return SupplierList(
        columns=names,
        identifier_column=identifier[0],
        identifier_type=identifier[1],
        cost_column=names[cost],
        pack_column=None if pack is None else names[pack],
        rows=_item_rows(items, identifier[1], cost_column, pack_column),
    )


# -- columns ---------------------------------------------------------------------------------------


def _find_columns(
    rows: list[list[str]], cost_column: str | None, pack_column: str | None, decimal_comma: bool = False
) -> tuple[int, _Columns]:
    """(non-blank rows above the header, the columns) from the first non-blank rows of a file, their cells as text."""
    skipped, identifier = next(
        ((skipped, found) for skipped in range(min(len(rows), HEADER_SEARCH_ROWS)) if (found := _identifier_column(rows[skipped:]))),
        (0, None),
    )
    if identifier is None:
        shown = _shown_names(_column_names(rows[0]))
        raise SupplierListError(f"The list has no identifier column (name one {_IDENTIFIER_NAMES_SHOWN}); columns seen: {shown}")
    names = _column_names(rows[skipped])
    index, identifier_type = identifier
    cost = _column(names, COST_NAMES, cost_column, "cost")
    if cost is None:
        raise SupplierListError(
            f"The list has no cost column (name one {_COST_NAMES_SHOWN}, or say which column holds the cost); "
            f"columns seen: {_shown_names(names)}"
        )
    pack = _column(names, PACK_NAMES, pack_column, "pack")
    return skipped, _Columns(names, index, identifier_type, cost, pack, decimal_comma)


def _identifier_column(rows: list[list[str]]) -> tuple[int, str] | None:
    """(index, type) of the identifier column named in rows[0] by csv_io's rules, or None when none is named."""
    header = rows[0]
    if not any(header_key(cell) in HEADER_NAMES for cell in header):
        return None
    _, index, _, identifier_type = choose_column(rows)
    return index, identifier_type


def _column_names(header: Sequence[str]) -> list[str]:
    """Header cells stripped, trailing blanks dropped; a blank is "column N", a repeat "name (2)"."""
    cells = [cell.strip() for cell in header]
    while cells and not cells[-1]:
        cells.pop()
    names: list[str] = []
    seen: set[str] = set()
    for number, cell in enumerate(cells, start=1):
        name = cell or f"column {number}"
        repeat = 1
        while name in seen:
            repeat += 1
            name = f"{cell or f'column {number}'} ({repeat})"
        seen.add(name)
        names.append(name)
    return names


def _column(names: list[str], known: tuple[str, ...], override: str | None, role: str) -> int | None:
    """The index of the column named `override` (an error when there is none), or of the first known name present."""
    index = _find_column(names, known, override)
    if index is None and override is not None:
        raise SupplierListError(f"There is no column {_shown(override)!r} (the {role} column); columns seen: {_shown_names(names)}")
    return index


def _find_column(names: list[str], known: tuple[str, ...], override: str | None) -> int | None:
    """The index of the column named `override` (exactly, else as header names compare), or of the first known name; None when absent."""
    keys = [header_key(name) for name in names]
    wanted = known if override is None else (header_key(override),)
    if override is not None and override.strip() in names:
        return names.index(override.strip())
    return next((keys.index(key) for key in wanted if key in keys), None)


def _shown_names(names: Iterable[str]) -> str:
    shown = ", ".join(repr(_shown(name)) for name in names)
    return shown or "none"


def _shown(value: object) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= _SHOWN_MAX else text[:_SHOWN_MAX] + "..."


# -- rows ------------------------------------------------------------------------------------------


def _csv_rows(lines: Lines, delimiter: str, skip: int, columns: _Columns) -> Iterator[SupplierRow]:
    """The rows after the header (the first `skip` non-blank rows), blank rows skipped, one line at a time."""
    try:
        for position, cells in enumerate(data_rows(lines, delimiter, skip)):
            yield columns.row(position, cells, "")
    except CsvError as exc:
        raise SupplierListError(str(exc)) from None


def _xlsx_rows(workbook: Workbook, rows: Iterator[tuple[object, ...]], columns: _Columns) -> Iterator[SupplierRow]:
    """The worksheet's rows after the header, blank rows skipped; the workbook is closed at the end."""
    try:
        for position, cells in enumerate(rows):
            yield columns.row(position, cells, None)
    finally:
        workbook.close()


def _is_blank_xlsx_row(row: tuple[object, ...]) -> bool:
    return all(cell is None or (isinstance(cell, str) and not cell.strip()) for cell in row)


def _item_identifier(item: Mapping[str, object]) -> tuple[str, str] | None:
    """(key, type) of an item's identifier by the file columns' rules, or None when it has none."""
    keys = list(item)
    found = _identifier_column([[str(key) for key in keys], [_cell_text(value) for value in item.values()]])
    return None if found is None else (keys[found[0]], found[1])


def _item_rows(
    items: Sequence[Mapping[str, object]], list_type: str, cost_column: str | None, pack_column: str | None
) -> Iterator[SupplierRow]:
    """One row per item, its identifier, cost and pack found among its own keys."""
    for position, item in enumerate(items):
        fields = dict(item)
        names = list(fields)
        identifier = _item_identifier(item)
        cost = _find_column(names, COST_NAMES, cost_column)
        pack = _find_column(names, PACK_NAMES, pack_column)
        yield _supplier_row(
            position,
            fields,
            None if identifier is None else fields[identifier[0]],
            list_type if identifier is None else identifier[1],
            None if cost is None else fields[names[cost]],
            None if pack is None else fields[names[pack]],
            decimal_comma=False,
        )


def _supplier_row(
    position: int,
    fields: dict[str, object],
    raw_identifier: object,
    identifier_type: str,
    raw_cost: object,
    raw_pack: object,
    decimal_comma: bool,
) -> SupplierRow:
    """A row with its cells parsed; the first cell that fails gives the row's error."""
    errors: list[tuple[str, str]] = []
    identifier = _cell_text(raw_identifier)
    try:
        identifier = _code(identifier, identifier_type)
    except _CellError as exc:
        errors.append((INVALID_IDENTIFIER, str(exc)))
    cost: Decimal | None = None
    try:
        cost = _cost(raw_cost, decimal_comma)
    except _CellError as exc:
        errors.append((INVALID_COST, str(exc)))
    pack = 1
    try:
        pack = _pack(raw_pack, decimal_comma)
    except _CellError as exc:
        errors.append((INVALID_PACK, str(exc)))
    return SupplierRow(position, fields, identifier, identifier_type, cost, pack, errors[0] if errors else None)


# -- cells -----------------------------------------------------------------------------------------


def _cell_text(value: object) -> str:
    """A cell as the text of a code: a number's integer digits, a string stripped (Excel's ="..." unwrapped)."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return str(int(value))
    if not isinstance(value, str):
        return str(value)
    text = clean_cell(value)
    whole = _WHOLE_DECIMAL.fullmatch(text)  # "12345678905.0": a float column written out as text
    return whole.group(1) if whole else text


def _code(text: str, identifier_type: str) -> str:
    """The normalized code of a cell's text, with the leading zeros a spreadsheet dropped put back when the check digit holds."""
    if not text:
        raise _CellError(f"No code: the {identifier_type} cell is empty")
    if _SCIENTIFIC.fullmatch(text):
        raise _CellError(
            f"{identifier_type} {_shown(text)!r} is in scientific notation: the spreadsheet stored the code as a number and "
            "its last digits are lost. Format the column as text in the spreadsheet and export the list again"
        )
    try:
        return _normalized(text, identifier_type)
    except (InvalidIdentifier, InvalidAsin) as exc:
        padded = _PADDED_LENGTH[identifier_type]
        if not (text.isascii() and text.isdigit() and padded - MAX_RESTORED_ZEROS <= len(text) < padded):
            raise _CellError(str(exc)) from None
        try:
            if identifier_type == "ASIN":
                normalize_identifier(text.zfill(padded), "ISBN")  # a book's ASIN is its ISBN-10: only a valid one gets zeros back
            return _normalized(text.zfill(padded), identifier_type)
        except (InvalidIdentifier, InvalidAsin):
            raise _CellError(f"{exc}; with the leading zeros a spreadsheet drops put back, its check digit does not hold either") from None


def _normalized(text: str, identifier_type: str) -> str:
    return normalize_asin(text) if identifier_type == "ASIN" else normalize_identifier(text, identifier_type)


def _cost(value: object, decimal_comma: bool) -> Decimal:
    """The amount of a cost cell; _CellError when it is empty, not an amount, or negative."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise _CellError("The cost is missing or empty")
    try:
        amount = _number(value, decimal_comma, currency=True)
    except _CellError:
        raise _CellError(f"Cost {_shown(value)!r} is not an amount (write it like 3.20, $3.20 or 3,20 €)") from None
    if amount < 0:
        raise _CellError(f"Cost {_shown(value)!r} is negative")
    if amount >= MAX_COST:
        raise _CellError(f"Cost {_shown(value)!r} is not a supplier's price (it must be below {MAX_COST:,})")
    return amount


def _pack(value: object, decimal_comma: bool) -> int:
    """The pack quantity of a cell: 1 when empty; _CellError unless a whole number of 1 or more."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return 1
    try:
        amount = _number(value, decimal_comma, currency=False)
    except _CellError:
        raise _CellError(f"Pack quantity {_shown(value)!r} is not a number; it must be a whole number of 1 or more") from None
    if amount != amount.to_integral_value():
        raise _CellError(f"Pack quantity {_shown(value)!r} is not a whole number")
    if amount < 1:
        raise _CellError(f"Pack quantity {_shown(value)!r} must be 1 or more")
    if amount > MAX_PACK:
        raise _CellError(f"Pack quantity {_shown(value)!r} is more than a case holds (at most {MAX_PACK:,})")
    return int(amount)


def _number(value: object, decimal_comma: bool, *, currency: bool) -> Decimal:
    """A cell's number: a JSON/XLSX number as it is, text as a person writes amounts (currency around it when allowed)."""
    if isinstance(value, bool):
        raise _CellError("a boolean")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float | Decimal):
        amount = Decimal(repr(value)) if isinstance(value, float) else value
        if not amount.is_finite():
            raise _CellError("not finite")
        return amount
    if not isinstance(value, str):
        raise _CellError(type(value).__name__)
    text = value.strip()
    negative = text.startswith("(") and text.endswith(")")  # accounting's (3.20)
    if negative:
        text = text[1:-1]
    if text.isascii() and text.isdigit():
        return Decimal(text)
    number = _NUMBER_SPAN.search(text)
    if number is None:
        raise _CellError("no digits")
    start, end = number.span()
    for around in (text[:start], text[end:]):
        negative = negative or "-" in around or "\u2212" in around
        rest = around.translate(_SIGNS).strip()
        if rest and not (currency and _is_currency(rest)):
            raise _CellError("not a number")
    amount = Decimal(_decimal_text(text[start:end], decimal_comma))
    return -amount if negative and amount else amount


def _is_currency(text: str) -> bool:
    """True for a currency symbol and/or a code of up to 3 letters: $, €, US$, USD, kr, Rs."""
    word = "".join(char for char in text if unicodedata.category(char) != "Sc" and not char.isspace())
    return bool(_CURRENCY_WORD.fullmatch(word))


def _decimal_text(number: str, decimal_comma: bool) -> str:
    """Digits and separators as Decimal reads them: "1.234,50" -> "1234.50"; _CellError when the groups are not of 3."""
    if not _NUMBER.fullmatch(number):
        raise _CellError("not a number")
    dots, commas = number.count("."), number.count(",")
    decimal: str | None = None
    if dots and commas:
        decimal = "." if number.rfind(".") > number.rfind(",") else ","
    elif dots + commas == 1:
        separator = "." if dots else ","
        before, _, after = number.partition(separator)
        thousands = len(after) == 3 and before.strip("0 ") != "" and separator != ("," if decimal_comma else ".")
        decimal = None if thousands else separator
    integer, fraction = number.rsplit(decimal, 1) if decimal else (number, "")
    groups = _GROUP_SEPARATORS.split(integer)
    if not fraction.isdigit() and fraction:
        raise _CellError("not a number")
    if len(groups) > 1 and (not 1 <= len(groups[0]) <= 3 or any(len(group) != 3 for group in groups[1:])):
        raise _CellError("digit groups are not of three")
    return ("".join(groups) or "0") + (f".{fraction}" if fraction else "")
