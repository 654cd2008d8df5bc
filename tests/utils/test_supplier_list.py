"""Supplier price lists in: columns by name, codes as spreadsheets leave them, money as people write it, rows streamed."""

from __future__ import annotations

import io
import tracemalloc
from decimal import Decimal
from itertools import islice

import pytest
from openpyxl import Workbook

from utils.supplier_list import (
    INVALID_COST,
    INVALID_IDENTIFIER,
    INVALID_PACK,
    SupplierList,
    SupplierListError,
    SupplierRow,
    read_supplier_csv,
    read_supplier_items,
    read_supplier_upload,
    read_supplier_xlsx,
)


def read(data: bytes | str, **overrides: str) -> SupplierList:
    return read_supplier_csv(io.BytesIO(data.encode() if isinstance(data, str) else data), **overrides)


def rows_of(data: bytes | str, **overrides: str) -> list[SupplierRow]:
    return list(read(data, **overrides).rows)


def only_row(data: bytes | str) -> SupplierRow:
    (row,) = rows_of(data)
    return row


def xlsx(rows: list[list[object]]) -> io.BytesIO:
    workbook = Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    workbook.create_sheet("second sheet").append(["asin", "cost"])
    stream = io.BytesIO()
    workbook.save(stream)
    stream.seek(0)
    return stream


# -- columns ---------------------------------------------------------------------------------------


def test_a_byte_order_mark_is_not_part_of_the_first_column_name():
    supplier_list = read(b"\xef\xbb\xbfUPC,Cost,Title\r\n012345678905,3.20,Echo\r\n")
    assert supplier_list.columns == ["UPC", "Cost", "Title"]
    assert (supplier_list.identifier_column, supplier_list.identifier_type, supplier_list.cost_column) == ("UPC", "UPC", "Cost")
    (row,) = supplier_list.rows
    assert row.fields == {"UPC": "012345678905", "Cost": "3.20", "Title": "Echo"}
    assert (row.position, row.identifier, row.cost, row.pack_quantity, row.error) == (0, "012345678905", Decimal("3.20"), 1, None)


def test_semicolon_separated_with_decimal_commas():
    supplier_list = read("EAN;Bezeichnung;Wholesale Price;Pack Size\n4006381333931;Stifte, 12er;3,20;12\n4006381333948;Block;1.234,50;\n")
    assert (supplier_list.cost_column, supplier_list.pack_column) == ("Wholesale Price", "Pack Size")
    rows = list(supplier_list.rows)
    assert [(row.identifier, row.cost, row.pack_quantity) for row in rows] == [
        ("4006381333931", Decimal("3.20"), 12),
        ("4006381333948", Decimal("1234.50"), 1),
    ]
    assert rows[0].fields["Bezeichnung"] == "Stifte, 12er"


def test_tab_separated():
    row = only_row("asin\tbuy price\tunits per case\nB07N4M94X4\t7.99\t24\n")
    assert (row.identifier, row.identifier_type, row.cost, row.pack_quantity) == ("B07N4M94X4", "ASIN", Decimal("7.99"), 24)


@pytest.mark.parametrize(
    ("cost_header", "pack_header"),
    [
        ("cost", "pack"),
        ("Unit Cost", "Pack Quantity"),
        ("unit_cost", "pack_quantity"),
        ("WHOLESALE", "Case-Pack"),
        ("wholesale price", "Pack Size"),
        ("Supplier Price", "Units per Case"),
        ("buy-price", "PACK"),
    ],
)
def test_cost_and_pack_columns_are_found_by_name_whatever_the_case_and_separators(cost_header, pack_header):
    supplier_list = read(f"title,{pack_header},upc,{cost_header}\nEcho,6,012345678905,3.20\n")
    assert (supplier_list.cost_column, supplier_list.pack_column) == (cost_header, pack_header)
    (row,) = supplier_list.rows
    assert (row.cost, row.pack_quantity) == (Decimal("3.20"), 6)


def test_without_a_pack_column_every_row_is_a_single_unit():
    supplier_list = read("upc,cost\n012345678905,3.20\n887276302195,4.00\n")
    assert supplier_list.pack_column is None
    assert [row.pack_quantity for row in supplier_list.rows] == [1, 1]


def test_overrides_name_the_cost_and_pack_columns():
    data = "upc,cost,Our Price,pack,Inner\n012345678905,3.20,2.90,6,3\n"
    supplier_list = read(data, cost_column="Our Price", pack_column="inner")
    assert (supplier_list.cost_column, supplier_list.pack_column) == ("Our Price", "Inner")
    (row,) = supplier_list.rows
    assert (row.cost, row.pack_quantity) == (Decimal("2.90"), 3)


@pytest.mark.parametrize("override", ["cost_column", "pack_column"])
def test_an_override_naming_no_column_is_refused_with_the_columns_seen(override):
    with pytest.raises(SupplierListError, match=r"There is no column 'Net Price'.*columns seen: 'upc', 'cost', 'title'"):
        read("upc,cost,title\n012345678905,3.20,Echo\n", **{override: "Net Price"})


def test_a_list_without_a_cost_column_is_refused_naming_its_columns():
    with pytest.raises(SupplierListError, match=r"no cost column.*columns seen: 'UPC', 'Title', 'Price'") as refused:
        read("UPC,Title,Price\n012345678905,Echo,3.20\n")
    assert "wholesale price" in str(refused.value)


def test_a_list_without_an_identifier_column_is_refused_naming_its_columns():
    with pytest.raises(SupplierListError, match=r"no identifier column.*columns seen: 'sku', 'cost'"):
        read("sku,cost\nSKU-1,3.20\n")


def test_title_lines_above_the_header_are_skipped():
    supplier_list = read("Acme Wholesale price list,,\nMarch 2026,,\n,,\nUPC,Cost,Title\n012345678905,3.20,Echo\n")
    assert supplier_list.columns == ["UPC", "Cost", "Title"]
    assert [row.identifier for row in supplier_list.rows] == ["012345678905"]


def test_blank_and_repeated_header_names_keep_every_cell():
    supplier_list = read("upc,cost,,notes,notes,\n012345678905,3.20,x,first,second,\n")
    assert supplier_list.columns == ["upc", "cost", "column 3", "notes", "notes (2)"]
    (row,) = supplier_list.rows
    assert row.fields == {"upc": "012345678905", "cost": "3.20", "column 3": "x", "notes": "first", "notes (2)": "second"}


def test_a_barcode_column_takes_its_type_from_its_values():
    supplier_list = read("Barcode,Cost\n4006381333931,1.00\n5901234123457,2.00\n")
    assert (supplier_list.identifier_column, supplier_list.identifier_type) == ("Barcode", "EAN")
    assert [row.error for row in supplier_list.rows] == [None, None]


def test_short_rows_and_blank_lines():
    rows = rows_of("upc,cost,title\n\n012345678905,3.20\n,,\n887276302195,4.00,Kindle\n")
    assert [(row.position, row.identifier, row.fields["title"]) for row in rows] == [(0, "012345678905", ""), (1, "887276302195", "Kindle")]


# -- money -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "amount"),
    [
        ("3.20", "3.20"),
        ("$3.20", "3.20"),
        ("3.20 USD", "3.20"),
        ("US$ 12", "12"),
        ('"€3,20"', "3.20"),
        ('"3,20 €"', "3.20"),
        ('"1,234.50"', "1234.50"),
        ('"1.234,50"', "1234.50"),
        ('"1 234,50"', "1234.50"),
        ('"1\u00a0234,50 EUR"', "1234.50"),
        ('"1,234"', "1234"),
        ("1.234", "1.234"),
        (".99", "0.99"),
        ("0", "0"),
        ("£7", "7"),
    ],
)
def test_money_is_read_as_a_person_means_it(cell, amount):
    row = only_row(f"upc,cost\n012345678905,{cell}\n")
    assert (row.cost, row.error) == (Decimal(amount), None)


@pytest.mark.parametrize(("cell", "amount"), [("3,20", "3.20"), ("1,234", "1.234"), ("1.234", "1234"), ("1.234,50 €", "1234.50")])
def test_a_semicolon_list_writes_decimal_commas(cell, amount):
    assert only_row(f"upc;cost\n012345678905;{cell}\n").cost == Decimal(amount)


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("", "The cost is missing or empty"),
        ("abc", "Cost 'abc' is not an amount"),
        ("-1.00", "Cost '-1.00' is negative"),
        ("$-1.00", "is negative"),
        ("(3.20)", "is negative"),
        ("3.20 each", "is not an amount"),
        ('"1,23,456"', "is not an amount"),
        ("N/A", "is not an amount"),
        ("3.20%", "is not an amount"),
    ],
)
def test_a_bad_cost_fails_only_its_row(cell, message):
    rows = rows_of(f"upc,cost\n012345678905,{cell}\n887276302195,4.00\n")
    assert rows[0].error is not None and rows[0].error[0] == INVALID_COST
    assert message in rows[0].error[1]
    assert (rows[0].cost, rows[0].identifier) == (None, "012345678905")
    assert (rows[1].cost, rows[1].error) == (Decimal("4.00"), None)


# -- pack ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("cell", "pack"), [("", 1), ("6", 6), (" 12 ", 12), ("6.0", 6), ('"1,000"', 1000)])
def test_pack_quantities(cell, pack):
    row = only_row(f"upc,cost,case pack\n012345678905,3.20,{cell}\n")
    assert (row.pack_quantity, row.error) == (pack, None)


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("0", "'0' must be 1 or more"),
        ("-6", "'-6' must be 1 or more"),
        ("2.5", "'2.5' is not a whole number"),
        ("six", "'six' is not a number"),
        ("6 pcs", "is not a number"),
    ],
)
def test_a_bad_pack_fails_only_its_row(cell, message):
    rows = rows_of(f"upc,cost,pack\n012345678905,3.20,{cell}\n887276302195,4.00,2\n")
    code, text = rows[0].error or ("", "")
    assert (code, text.startswith("Pack quantity"), message in text) == (INVALID_PACK, True, True)
    assert (rows[0].cost, rows[0].pack_quantity) == (Decimal("3.20"), 1)
    assert (rows[1].pack_quantity, rows[1].error) == (2, None)


def test_the_first_problem_of_a_row_is_its_error():
    row = only_row("upc,cost,pack\n123,abc,0\n")
    assert row.error is not None and row.error[0] == INVALID_IDENTIFIER
    assert (row.identifier, row.cost, row.pack_quantity) == ("123", None, 1)
    row = only_row("upc,cost,pack\n012345678905,abc,0\n")
    assert row.error is not None and row.error[0] == INVALID_COST


# -- codes -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "cell", "identifier"),
    [
        ("upc", "12345678905", "012345678905"),
        ("ean", "887276302195", "0887276302195"),
        ("ean", "4006381333931", "4006381333931"),
        ("ean", "96385074", "96385074"),
        ("gtin", "12345678905", "00012345678905"),
        ("gtin", "887276302195", "00887276302195"),
        ("isbn", "306406152", "0306406152"),
        ("asin", "306406152", "0306406152"),
        ("upc", "12345678905.0", "012345678905"),
        ("upc", '"=""012345678905"""', "012345678905"),
        ("upc", "0123-4567-8905", "012345678905"),
    ],
)
def test_leading_zeros_a_spreadsheet_dropped_are_put_back(column, cell, identifier):
    row = only_row(f"{column},cost\n{cell},3.20\n")
    assert (row.identifier, row.identifier_type, row.error) == (identifier, column.upper(), None)


@pytest.mark.parametrize(
    ("column", "cell"),
    [("upc", "12345678901"), ("ean", "887276302194"), ("isbn", "306406153"), ("asin", "306406153")],
)
def test_zeros_are_put_back_only_when_the_check_digit_then_holds(column, cell):
    row = only_row(f"{column},cost\n{cell},3.20\n")
    assert row.error is not None and row.error[0] == INVALID_IDENTIFIER
    assert "check digit" in row.error[1]
    assert (row.identifier, row.cost) == (cell, Decimal("3.20"))


def test_a_number_too_short_to_be_a_code_is_not_padded():
    # 000012345670 would be a valid UPC, but no UPC loses four zeros: 12345670 is an EAN-8.
    row = only_row("upc,cost\n12345670,3.20\n")
    assert row.error == (INVALID_IDENTIFIER, "UPC '12345670' has 8 digits; a UPC has 12 digits")


@pytest.mark.parametrize("cell", ["1.23457E+11", '"1,23457E+11"', "8.87276E+11"])
def test_a_code_in_scientific_notation_is_invalid_and_says_how_to_fix_the_file(cell):
    rows = rows_of(f"upc,cost\n{cell},3.20\n887276302195,4.00\n")
    code, message = rows[0].error or ("", "")
    assert code == INVALID_IDENTIFIER
    assert "scientific notation" in message and "Format the column as text" in message
    assert rows[0].identifier == cell.strip('"')
    assert rows[1].error is None


def test_an_empty_code_is_invalid():
    row = only_row("sku,ean,cost\nSKU-1,,3.20\n")
    assert (row.identifier, row.identifier_type, row.error) == ("", "EAN", (INVALID_IDENTIFIER, "No code: the EAN cell is empty"))


# -- XLSX ------------------------------------------------------------------------------------------


def test_an_xlsx_with_number_cells():
    stream = xlsx(
        [
            ["Acme price list"],
            ["UPC", "Product", "Cost", "Case Pack", None],
            [12345678905, "Echo", 3.2, 6],
            ["887276302195", "Kindle", "$4.50", None],
            [None, None, None, None],
            [12345678901, "Bad code", 1, 1],
            [96385074, "Negative", -2, 2.0],
        ]
    )
    supplier_list = read_supplier_xlsx(stream)
    assert supplier_list.columns == ["UPC", "Product", "Cost", "Case Pack"]
    assert (supplier_list.identifier_column, supplier_list.identifier_type, supplier_list.pack_column) == ("UPC", "UPC", "Case Pack")
    rows = list(supplier_list.rows)
    assert rows[0].fields == {"UPC": 12345678905, "Product": "Echo", "Cost": 3.2, "Case Pack": 6}
    assert [(row.position, row.identifier, row.cost, row.pack_quantity) for row in rows[:2]] == [
        (0, "012345678905", Decimal("3.2"), 6),
        (1, "887276302195", Decimal("4.50"), 1),
    ]
    assert [row.error and row.error[0] for row in rows] == [None, None, INVALID_IDENTIFIER, INVALID_IDENTIFIER]
    assert rows[2].identifier == "12345678901"
    assert not stream.closed


def test_an_xlsx_is_recognised_by_its_content():
    stream = xlsx([["asin", "wholesale"], ["B07N4M94X4", 9.99]])
    supplier_list = read_supplier_upload(stream)
    assert [(row.identifier, row.cost) for row in supplier_list.rows] == [("B07N4M94X4", Decimal("9.99"))]
    csv_list = read_supplier_upload(io.BytesIO(b"asin,wholesale\nB07N4M94X4,9.99\n"))
    assert [(row.identifier, row.cost) for row in csv_list.rows] == [("B07N4M94X4", Decimal("9.99"))]


def test_an_xlsx_without_a_cost_column_is_refused():
    with pytest.raises(SupplierListError, match=r"no cost column.*columns seen: 'ean', 'title'"):
        read_supplier_xlsx(xlsx([["ean", "title"], ["4006381333931", "Stifte"]]))


def test_a_file_that_is_not_a_workbook_is_refused():
    with pytest.raises(SupplierListError, match="not an .xlsx workbook"):
        read_supplier_xlsx(io.BytesIO(b"upc,cost\n012345678905,3.20\n"))


# -- JSON items ------------------------------------------------------------------------------------


def test_json_items_keep_their_other_fields():
    items = [
        {"upc": "012345678905", "cost": 3.20, "pack_quantity": 6, "title": "Echo", "supplier_sku": "A-1"},
        {"ean": 887276302195, "Unit Cost": "€4,10", "any other": ["kept"]},
        {"asin": "b07n4m94x4", "cost": 12},
    ]
    supplier_list = read_supplier_items(items)
    assert supplier_list.columns == ["upc", "cost", "pack_quantity", "title", "supplier_sku", "ean", "Unit Cost", "any other", "asin"]
    assert (supplier_list.identifier_column, supplier_list.identifier_type, supplier_list.cost_column) == ("upc", "UPC", "cost")
    rows = list(supplier_list.rows)
    assert [(row.identifier, row.identifier_type, row.cost, row.pack_quantity, row.error) for row in rows] == [
        ("012345678905", "UPC", Decimal("3.2"), 6, None),
        ("0887276302195", "EAN", Decimal("4.10"), 1, None),
        ("B07N4M94X4", "ASIN", Decimal("12"), 1, None),
    ]
    assert rows[0].fields == items[0]
    assert rows[1].fields == {"ean": 887276302195, "Unit Cost": "€4,10", "any other": ["kept"]}


def test_json_items_with_bad_values_fail_their_own_rows():
    items = [
        {"gtin": 12345678905.0, "cost": "3.20"},
        {"title": "no code at all", "cost": 1},
        {"gtin": "00012345678905"},
        {"gtin": "00012345678905", "cost": True},
        {"gtin": "00012345678905", "cost": 1, "pack": 0},
    ]
    rows = list(read_supplier_items(items).rows)
    assert (rows[0].identifier, rows[0].error) == ("00012345678905", None)
    assert [row.error and row.error[0] for row in rows[1:]] == [INVALID_IDENTIFIER, INVALID_COST, INVALID_COST, INVALID_PACK]
    assert rows[1].identifier_type == "GTIN"
    assert rows[2].error == (INVALID_COST, "The cost is missing or empty")


def test_json_items_without_an_identifier_or_a_cost_are_refused():
    with pytest.raises(SupplierListError, match=r"No item has an identifier.*keys seen: 'sku', 'cost'"):
        read_supplier_items([{"sku": "A-1", "cost": 1}])
    with pytest.raises(SupplierListError, match=r"No item has a cost.*keys seen: 'upc', 'price'"):
        read_supplier_items([{"upc": "012345678905", "price": 1}])
    with pytest.raises(SupplierListError, match="Item 1 is not an object"):
        read_supplier_items([{"upc": "012345678905", "cost": 1}, "012345678905"])


def test_json_items_cost_override():
    rows = list(
        read_supplier_items([{"upc": "012345678905", "cost": 9, "net": 7}, {"upc": "887276302195", "cost": 9}], cost_column="net").rows
    )
    assert [(row.cost, row.error and row.error[0]) for row in rows] == [(Decimal("7"), None), (None, INVALID_COST)]


# -- streams ---------------------------------------------------------------------------------------


def test_a_bad_line_further_down_fails_the_read_with_its_line_number():
    supplier_list = read(b"upc,cost\n" + b"012345678905,3.20\n" * 5000 + b"012345678905,3\xe9\n")
    seen = 0
    with pytest.raises(SupplierListError, match="Line 5002 is not UTF-8"):
        for _ in supplier_list.rows:
            seen += 1
    assert seen == 5000


@pytest.mark.parametrize(
    ("data", "message"), [(b"", "no rows"), (b"upc,cost\r\n", "header but no rows"), (b"PK\x03\x04\x14\x00\xb1", "Excel")]
)
def test_uploads_without_rows_or_not_csv_are_refused(data, message):
    with pytest.raises(SupplierListError, match=message):
        read(data)


def test_the_callers_stream_is_left_open():
    stream = io.BytesIO(b"upc,cost\n012345678905,3.20\n")
    assert len(list(read_supplier_csv(stream).rows)) == 1
    assert not stream.closed


class CountingStream(io.RawIOBase):
    """A file that remembers how far it has been read."""

    def __init__(self, path):
        self._file = open(path, "rb")
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = self._file.readinto(buffer)
        self.consumed += count
        return count

    def close(self) -> None:
        self._file.close()
        super().close()


def test_a_100000_row_list_is_read_lazily_with_bounded_memory(tmp_path):
    rows = 100_000
    path = tmp_path / "supplier.csv"
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write("Supplier SKU;EAN;Description;Unit Cost;Case Pack\r\n")
        for start in range(0, rows, 1000):
            out.write(
                "".join(
                    f"SKU-{i:07d};887276302195;Item number {i} of the list;{i % 100},{i % 97:02d};{i % 12 + 1}\r\n"
                    for i in range(start, start + 1000)
                )
            )
    size = path.stat().st_size

    stream = CountingStream(path)
    try:
        supplier_list = read_supplier_csv(stream)
        first = next(supplier_list.rows)
        consumed_at_first_row = stream.consumed
        # Memory is measured over the next 20,000 rows (tracemalloc slows reading down): rows kept would show.
        tracemalloc.start()
        try:
            for _ in islice(supplier_list.rows, 20_000):
                pass
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        count, costs_wrong = 20_001, 0
        for row in supplier_list.rows:
            costs_wrong += row.cost != Decimal(f"{row.position % 100}.{row.position % 97:02d}")
            count += 1
    finally:
        stream.close()
    assert (first.position, first.identifier, first.cost, first.pack_quantity) == (0, "0887276302195", Decimal("0.00"), 1)
    assert consumed_at_first_row < size / 20, f"{consumed_at_first_row} of {size} bytes read before the first row"
    assert (count, costs_wrong) == (rows, 0)
    assert peak < 1_000_000, f"peak {peak} bytes while reading 20,000 rows of a {size}-byte list"
