"""Supplier CSVs in: sniffed, streamed, with clear errors."""

from __future__ import annotations

import io
import tracemalloc

import pytest

from utils.csv_io import SAMPLE_CHARS, CsvColumn, CsvError, read_identifier_column


def read(data: bytes) -> CsvColumn:
    return read_identifier_column(io.BytesIO(data))


def values_of(data: bytes) -> list[str]:
    return list(read(data).values)


# -- reading -------------------------------------------------------------------------------------


def test_a_utf8_byte_order_mark_is_not_part_of_the_header():
    column = read(b"\xef\xbb\xbfASIN,Title\r\nB07N4M94X4,Echo Dot\r\n")
    assert (column.column, column.identifier_type) == ("ASIN", "ASIN")
    assert list(column.values) == ["B07N4M94X4"]


def test_semicolon_separated_with_decimal_commas():
    column = read(b"Title;Price;EAN\nDot, 3rd gen;12,50;4006381333931\nKindle;89,99;4006381333948\n")
    assert (column.delimiter, column.column, column.identifier_type) == (";", "EAN", "EAN")
    assert list(column.values) == ["4006381333931", "4006381333948"]


@pytest.mark.parametrize("delimiter", ["\t", "|", ","])
def test_tab_pipe_and_comma_separated(delimiter):
    data = delimiter.join(["sku", "upc", "name"]) + "\n" + delimiter.join(["S-1", "887276302195", "Echo"]) + "\n"
    column = read(data.encode())
    assert (column.delimiter, column.column, column.identifier_type) == (delimiter, "upc", "UPC")
    assert list(column.values) == ["887276302195"]


def test_blank_lines_are_skipped_wherever_they_are():
    data = b"\n\r\n  \nasin,title\n\nB07N4M94X4,a\n,,\n \t\nB07N4M94X5,b\n\n"
    column = read(data)
    assert column.column == "asin"
    assert list(column.values) == ["B07N4M94X4", "B07N4M94X5"]


def test_quoted_fields_with_delimiters_quotes_and_newlines():
    data = (
        b'title,asin,notes\r\n"Echo Dot, 3rd gen",B07N4M94X4,"line one\r\nline two, with ""quotes"""\r\n'
        b'"Kindle\nPaperwhite",B07N4M94X5,plain\r\n'
    )
    assert values_of(data) == ["B07N4M94X4", "B07N4M94X5"]


def test_a_quoted_multi_line_field_longer_than_the_sample():
    long_notes = "x" * 80 + "\n"
    data = "asin,notes\n" + "".join(f'B{i:09d},"{long_notes * 3}"\n' for i in range(2000))
    assert len(data) > 4 * SAMPLE_CHARS
    assert values_of(data.encode()) == [f"B{i:09d}" for i in range(2000)]


def test_old_mac_line_endings():
    assert values_of(b"asin\rB07N4M94X4\rB07N4M94X5") == ["B07N4M94X4", "B07N4M94X5"]


@pytest.mark.parametrize(
    ("lines", "identifier_type"),
    [
        (["B07N4M94X4", "b07n4m94x5", "0306406152"], "ASIN"),
        (["887276302195", "012345678905"], "UPC"),
        (["4006381333931", "5901234123457"], "EAN"),
        (["9780306406157", "979-10-90636-07-1"], "ISBN"),
        (["00012345678905", "10012345678902"], "GTIN"),
        (["96385074", "73513537"], "EAN"),
    ],
)
def test_header_less_single_column(lines, identifier_type):
    column = read(("\n".join(lines) + "\n").encode())
    assert (column.column, column.identifier_type) == (None, identifier_type)
    assert list(column.values) == lines


@pytest.mark.parametrize(
    ("header", "identifier_type"),
    [
        ("asin", "ASIN"),
        ("ASIN", "ASIN"),
        ("upc", "UPC"),
        ("UPC Code", "UPC"),
        ("upc_code", "UPC"),
        ("ean", "EAN"),
        ("EAN-13", "EAN"),
        ("isbn", "ISBN"),
        ("ISBN13", "ISBN"),
        ("gtin", "GTIN"),
        ("JAN", "JAN"),
    ],
)
def test_a_known_column_name_wins_over_the_first_column(header, identifier_type):
    column = read(f"sku,{header},title\nSKU-0000001,12345,Thing\n".encode())
    assert (column.column, column.identifier_type) == (header, identifier_type)
    assert list(column.values) == ["12345"]


def test_asin_is_preferred_then_upc_then_ean():
    assert read(b"ean,upc,asin\n4006381333931,887276302195,B07N4M94X4\n").column == "asin"
    assert read(b"ean,upc,title\n4006381333931,887276302195,x\n").column == "upc"


def test_a_barcode_column_takes_its_type_from_its_values():
    column = read(b"Name,Barcode\nEcho,887276302195\nKindle,012345678905\n")
    assert (column.column, column.identifier_type) == ("Barcode", "UPC")


def test_an_unknown_header_means_the_first_column():
    column = read(b"Item number;Price\nB07N4M94X4;1,00\nB07N4M94X5;2,00\n")
    assert (column.column, column.identifier_type) == ("Item number", "ASIN")
    assert list(column.values) == ["B07N4M94X4", "B07N4M94X5"]


def test_header_less_rows_with_several_columns_use_the_first():
    column = read(b"B07N4M94X4,Echo,12.50\nB07N4M94X5,Kindle,89.99\n")
    assert (column.column, column.delimiter) == (None, ",")
    assert list(column.values) == ["B07N4M94X4", "B07N4M94X5"]


def test_empty_and_missing_identifier_cells_still_yield_a_row():
    data = b"title,asin\nfirst,B07N4M94X4\nno asin,\nshort row\nlast,  B07N4M94X5  \n"
    assert values_of(data) == ["B07N4M94X4", "", "", "B07N4M94X5"]


def test_excel_text_formulas_are_unwrapped():
    assert values_of(b'upc,title\n="012345678905",x\n') == ["012345678905"]


def test_non_utf8_in_the_first_lines_fails_at_once_naming_the_line():
    with pytest.raises(CsvError, match=r"Line 3 is not UTF-8 \(byte 0xE9.*Save the file as CSV UTF-8"):
        read(b"asin,title\nB07N4M94X4,Cafe\nB07N4M94X5,Caf\xe9\n")


def test_non_utf8_further_down_fails_when_the_values_reach_it():
    data = b"asin\n" + b"B07N4M94X4\n" * 10_000 + b"B07N4M94X\xe9\n"
    column = read(data)
    seen = 0
    with pytest.raises(CsvError, match="Line 10002 is not UTF-8"):
        for _ in column.values:
            seen += 1
    assert seen == 10_000


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xff\xfea\x00s\x00i\x00n\x00", "UTF-16"),
        (b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00\xb1", "Excel workbook"),
        (b"a\x00s\x00i\x00n\x00\n\x00", "NUL bytes"),
    ],
)
def test_spreadsheet_exports_that_are_not_csv_utf8_are_named(data, message):
    with pytest.raises(CsvError, match=message):
        read(data)


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"", "no rows"), (b"\n\r\n ,, \n", "no rows"), (b"\xef\xbb\xbfasin\r\n", "header but no rows")],
)
def test_files_without_rows_are_refused(data, message):
    with pytest.raises(CsvError, match=message):
        read(data)


def test_a_header_followed_only_by_blank_lines_has_no_rows():
    column = read(b"asin\n" + b"\n" * (2 * SAMPLE_CHARS))
    with pytest.raises(CsvError, match="no rows"):
        list(column.values)


def test_a_huge_field_is_a_csv_error_with_its_line():
    column = read(b'asin,notes\nB07N4M94X4,"' + b"x" * 200_000 + b'"\n')
    with pytest.raises(CsvError, match="Line 2: a field is longer than"):
        list(column.values)


@pytest.mark.parametrize("rows_before", [1, 10_000])
def test_a_huge_line_is_a_csv_error_not_a_memory_spike(rows_before):
    data = b"asin\n" + b"B07N4M94X4\n" * rows_before + b"x," * 600_000 + b"\n"
    with pytest.raises(CsvError, match=f"Line {rows_before + 2} is longer than"):
        list(read(data).values)


def test_the_callers_stream_is_left_open():
    stream = io.BytesIO(b"asin\nB07N4M94X4\n")
    assert list(read_identifier_column(stream).values) == ["B07N4M94X4"]
    assert not stream.closed


def test_a_50_mb_file_streams_in_order_with_bounded_memory(tmp_path):
    rows = 100_000
    path = tmp_path / "supplier.csv"
    # 26 columns, one of them quoted with the delimiter inside: about 500 bytes a row.
    header = "sku,asin," + ",".join(f"attribute_{n}" for n in range(23)) + ',"description, long"\r\n'
    filler = ",".join(f"value {n:02d} of this row" for n in range(23)) + ',"quoted, with; delimiters"'
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write(header)
        for start in range(0, rows, 1000):
            out.write("".join(f"SKU-{i:07d},B{i:09d},{filler}\r\n" for i in range(start, start + 1000)))
    size = path.stat().st_size
    assert size >= 50_000_000

    tracemalloc.start()
    try:
        with open(path, "rb") as stream:
            column = read_identifier_column(stream)
            count = 0
            out_of_order = 0
            for index, value in enumerate(column.values):
                count += 1
                out_of_order += value != f"B{index:09d}"
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (column.column, column.identifier_type, count, out_of_order) == ("asin", "ASIN", rows, 0)
    assert peak < 5_000_000, f"peak {peak} bytes while reading a {size}-byte file"
