"""Supplier CSVs in: sniffed and streamed, so a 50 MB list never sits in memory.

Reading. `read_identifier_column` sniffs the first `SAMPLE_CHARS` of an upload for its delimiter
(`,` `;` tab `|`), its header and the identifier column, then hands back a lazy iterator over that
column's cells. The rest of the file is decoded and parsed one line at a time.

Header rules. The first non-blank row is a header when one of its cells, lower-cased with spaces,
`_`, `-`, `.`, `#` and `/` removed, is a known name (`HEADER_NAMES`: asin, upc, ean, gtin, isbn,
jan and variants such as "UPC Code", "EAN-13", "isbn13"; "barcode" and "EAN/UPC" take their type
from the values), or when its first cell does not look like an identifier. Among several known
columns the first of asin, upc, ean, gtin, isbn, jan, barcode wins. Otherwise the first column is
used, and its type is guessed from the values: 10 letters/digits (with a digit) is an ASIN,
all-digit values go by length (8 EAN, 11 or 12 UPC, 13 EAN or ISBN for 978/979, 14 GTIN, 10 ASIN).

Rows. Rows whose cells are all empty are skipped; any other row yields its stripped cell ("" when
empty or missing), so every row gets an answer. Excel's `="0123..."` (kept leading zeros) is
unwrapped. Memory stays bounded: besides the sample, one row of at most `MAX_ROW_CHARS` at a time.

The result CSVs and NDJSON written from lookup entries are services/entry_csv.py's.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

# Sniffing reads this much (whole lines) before the first value is handed out.
SAMPLE_CHARS = 32 * 1024
# One row (all its lines, for quoted fields with newlines) may not exceed this.
MAX_ROW_CHARS = 1024 * 1024
DELIMITERS = (",", ";", "\t", "|")

# Header name (normalised by header_key) -> identifier type; None: guessed from the column's values.
HEADER_NAMES: dict[str, str | None] = {
    "asin": "ASIN",
    "amazonasin": "ASIN",
    "upc": "UPC",
    "upca": "UPC",
    "upccode": "UPC",
    "ean": "EAN",
    "ean8": "EAN",
    "ean13": "EAN",
    "eancode": "EAN",
    "gtin": "GTIN",
    "gtin14": "GTIN",
    "isbn": "ISBN",
    "isbn10": "ISBN",
    "isbn13": "ISBN",
    "jan": "JAN",
    "jancode": "JAN",
    "barcode": None,
    "eanupc": None,
    "upcean": None,
}
_HEADER_PREFERENCE = ("ASIN", "UPC", "EAN", "GTIN", "ISBN", "JAN", None)
_HEADER_PUNCTUATION = str.maketrans("", "", " _-.#/")

_ASIN_LIKE = re.compile(r"(?=.*[0-9])[A-Z0-9]{10}")
_DIGITS = re.compile(r"[0-9]{8,14}")
# Excel's way of keeping leading zeros: ="012345678905".
_EXCEL_TEXT = re.compile(r'="(.*)"')
# Bytes that are not UTF-8 come out of the "surrogateescape" decoder as U+DC80..U+DCFF; NUL means UTF-16.
_NOT_UTF8 = re.compile("[\x00\udc80-\udcff]")


class CsvError(ValueError):
    """An upload that cannot be read as a CSV list of identifiers; the message is meant for the user."""


@dataclass(frozen=True)
class CsvColumn:
    """The identifier column of an upload: its header (None when header-less), type and lazy values."""

    column: str | None
    identifier_type: str
    delimiter: str
    # One stripped cell per data row, in order ("" for an empty cell). Raises CsvError when it reaches
    # a bad line (not UTF-8, a row too long), so consume it fully before accepting the upload.
    values: Iterator[str]


class Lines:
    """Physical lines of an upload (line endings kept, as csv wants), each checked as it is read."""

    def __init__(self, text: io.TextIOWrapper) -> None:
        self._text = text
        self._buffered: list[str] = []
        self._replay = 0
        self.read_count = 0
        self.handed_out = 0
        self.row_chars = 0
        self.at_eof = False

    def sample(self, chars: int) -> list[str]:
        """Read whole lines until `chars` characters or the end; they are handed out again by iteration."""
        total = 0
        while total < chars:
            line = self._read()
            if not line:
                break
            self._buffered.append(line)
            total += len(line)
        return list(self._buffered)

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        if self._replay < len(self._buffered):
            line = self._buffered[self._replay]
            self._replay += 1
            if self._replay == len(self._buffered):
                self._buffered, self._replay = [], 0
        else:
            line = self._read()
            if not line:
                raise StopIteration
        self.handed_out += 1
        self.row_chars += len(line)
        if self.row_chars > MAX_ROW_CHARS:
            raise CsvError(f"The row ending on line {self.handed_out} is longer than {MAX_ROW_CHARS} characters")
        return line

    def _read(self) -> str:
        line = self._text.readline(MAX_ROW_CHARS + 1)
        if not line:
            self.at_eof = True
            return line
        self.read_count += 1
        bad = _NOT_UTF8.search(line)
        if bad:
            raise CsvError(_not_utf8_message(self.read_count, line, bad.start()))
        if len(line) > MAX_ROW_CHARS:
            raise CsvError(f"Line {self.read_count} is longer than {MAX_ROW_CHARS} characters")
        return line

    def release(self) -> None:
        """Let go of the caller's stream without closing it."""
        try:
            self._text.detach()
        except ValueError:  # already detached
            pass


def _not_utf8_message(line_no: int, line: str, position: int) -> str:
    if line_no == 1 and line.startswith("PK\x03\x04"):
        problem = "The file is an Excel workbook or another zip file, not CSV."
    elif line_no == 1 and line.startswith(("\udcff\udcfe", "\udcfe\udcff")):
        problem = "The file is UTF-16, not UTF-8."
    elif line[position] == "\x00":
        problem = f"Line {line_no} contains NUL bytes: the file is not UTF-8 text (UTF-16?)."
    else:
        problem = f"Line {line_no} is not UTF-8 (byte 0x{ord(line[position]) - 0xDC00:02X} at character {position + 1})."
    return f"{problem} Save the file as CSV UTF-8 and upload it again."


def header_key(cell: str) -> str:
    return cell.strip().lower().translate(_HEADER_PUNCTUATION)


def clean_cell(cell: str) -> str:
    value = cell.strip()
    excel_text = _EXCEL_TEXT.fullmatch(value)
    return excel_text.group(1).strip() if excel_text else value


def _kind(value: str) -> str | None:
    """The identifier type a value looks like, or None."""
    compact = _compact(value)
    if _DIGITS.fullmatch(compact):
        if len(compact) == 13:
            return "ISBN" if compact.startswith(("978", "979")) else "EAN"
        # 11 digits: a UPC whose leading zero a spreadsheet dropped.
        return {8: "EAN", 10: "ASIN", 11: "UPC", 12: "UPC", 14: "GTIN"}.get(len(compact))
    return "ASIN" if _ASIN_LIKE.fullmatch(compact) else None


def _compact(value: str) -> str:
    """A value without hyphens and spaces, upper-cased if ASCII ("ß".upper() is "SS")."""
    compact = value.replace("-", "").replace(" ", "")
    return compact.upper() if compact.isascii() else compact


def _looks_like_identifier(cell: str) -> bool:
    compact = _compact(clean_cell(cell))
    return bool(_DIGITS.fullmatch(compact) or _ASIN_LIKE.fullmatch(compact))


def _guess_type(values: Iterable[str]) -> str:
    """The most common identifier type among `values` (ties: the first seen), ASIN when none fits."""
    kinds = Counter(kind for kind in map(_kind, values) if kind)
    return kinds.most_common(1)[0][0] if kinds else "ASIN"


def is_blank(row: list[str]) -> bool:
    return not any(cell.strip() for cell in row)


def csv_reader(lines: Iterable[str], delimiter: str) -> Iterator[list[str]]:
    return csv.reader(lines, delimiter=delimiter, quotechar='"', doublequote=True, skipinitialspace=True)


def sample_rows(sample: list[str], delimiter: str, complete: bool) -> list[list[str]]:
    """Non-blank rows of the sample; its last row is dropped unless the sample is the whole file."""
    rows: list[list[str]] = []
    try:
        rows.extend(row for row in csv_reader(sample, delimiter) if not is_blank(row))
    except csv.Error:  # a field over csv's size limit: the full parse reports it with its line number
        complete = True  # the rows before it are whole
    return rows if complete else rows[:-1]


def sniff_delimiter(sample: list[str], complete: bool) -> str:
    """The candidate that splits the first row into 2+ cells and the most rows into as many cells."""
    # csv.Sniffer guesses from character frequencies and fails on a single column; this is simpler.
    best, best_score = DELIMITERS[0], 0.0
    for delimiter in DELIMITERS:
        rows = sample_rows(sample, delimiter, complete)
        if not rows or len(rows[0]) < 2:
            continue
        score = sum(len(row) == len(rows[0]) for row in rows) / len(rows)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def choose_column(rows: list[list[str]]) -> tuple[bool, int, str | None, str]:
    """(has header, column index, header name, identifier type) from the first rows of the file."""
    first = rows[0]
    known: dict[str | None, int] = {}
    for index, cell in enumerate(first):
        key = header_key(cell)
        if key in HEADER_NAMES:
            known.setdefault(HEADER_NAMES[key], index)
    if known:
        identifier_type = next(kind for kind in _HEADER_PREFERENCE if kind in known)
        index = known[identifier_type]
        if identifier_type is None:
            identifier_type = _guess_type(clean_cell(row[index]) for row in rows[1:] if index < len(row))
        return True, index, first[index].strip(), identifier_type
    has_header = not _looks_like_identifier(first[0])
    data = rows[1:] if has_header else rows
    identifier_type = _guess_type(clean_cell(row[0]) for row in data if row)
    return has_header, 0, first[0].strip() if has_header else None, identifier_type


def csv_error_message(line_no: int, exc: csv.Error) -> str:
    if "field limit" in str(exc):
        return f"Line {line_no}: a field is longer than {csv.field_size_limit()} characters"
    return f"Line {line_no} cannot be read as CSV: {exc}"


def data_rows(lines: Lines, delimiter: str, skip: int) -> Iterator[list[str]]:
    """The rows of `lines` after the first `skip` non-blank ones (the header), blank rows skipped, read one at a time.

    CsvError for a row that cannot be read, or when no row is left; `lines` is released at the end.
    """
    reader = csv_reader(lines, delimiter)
    yielded = False
    try:
        while True:
            lines.row_chars = 0
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                raise CsvError(csv_error_message(reader.line_num, exc)) from None
            if is_blank(row):
                continue
            if skip:
                skip -= 1
                continue
            yielded = True
            yield row
        if not yielded:
            raise CsvError("The CSV file has no rows")
    finally:
        lines.release()


def _column_values(lines: Lines, delimiter: str, index: int, has_header: bool) -> Iterator[str]:
    """Each data row's cell at `index` ("" when empty or missing), blank rows skipped."""
    for row in data_rows(lines, delimiter, 1 if has_header else 0):
        yield clean_cell(row[index]) if index < len(row) else ""


@dataclass(frozen=True)
class OpenedCsv:
    """A CSV upload opened for reading: its lines (read on as the rows are), delimiter, first rows, and whether they are all."""

    lines: Lines
    delimiter: str
    rows: list[list[str]]
    complete: bool


def open_csv(stream: BinaryIO) -> OpenedCsv:
    """Open a CSV upload (binary, UTF-8 with or without BOM): sniff its delimiter from a sample; CsvError when it holds no rows."""
    # surrogateescape, not strict: the decoder works in chunks, and we want the line of a bad byte.
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline="")
    lines = Lines(text)
    try:
        sample = lines.sample(SAMPLE_CHARS)
        complete = lines.at_eof
        delimiter = sniff_delimiter(sample, complete)
        rows = sample_rows(sample, delimiter, complete=True)
        if not rows:
            raise CsvError("The CSV file has no rows" if complete else f"The first {SAMPLE_CHARS} characters of the file hold no rows")
    except CsvError:
        lines.release()
        raise
    return OpenedCsv(lines, delimiter, rows, complete)


def read_identifier_column(stream: BinaryIO) -> CsvColumn:
    """Sniff a CSV upload (binary, UTF-8 with or without BOM) and return its identifier column, values lazily."""
    opened = open_csv(stream)
    try:
        has_header, index, column, identifier_type = choose_column(opened.rows)
        if opened.complete and has_header and len(opened.rows) == 1:
            raise CsvError("The CSV file has a header but no rows")
    except CsvError:
        opened.lines.release()
        raise
    return CsvColumn(column, identifier_type, opened.delimiter, _column_values(opened.lines, opened.delimiter, index, has_header))
