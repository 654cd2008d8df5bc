"""UPC/EAN/GTIN/ISBN/JAN normalisation: lengths, check digits, separators and types."""

from __future__ import annotations

import pytest

from utils.identifiers import IDENTIFIER_TYPES, InvalidIdentifier, gtin14, normalize_identifier, normalize_identifier_type


@pytest.mark.parametrize(
    ("raw", "kind", "expected"),
    [
        ("887276302195", "UPC", "887276302195"),  # the sandbox item's UPC
        (" 8-87276-30219-5 ", "UPC", "887276302195"),
        ("036000291452", "UPC", "036000291452"),
        (887276302195, "UPC", "887276302195"),  # a spreadsheet's number
        ("4006381333931", "EAN", "4006381333931"),
        ("0887276302195", "EAN", "0887276302195"),
        ("9638 5074", "EAN", "96385074"),  # EAN-8
        ("00887276302195", "GTIN", "00887276302195"),
        ("887276302195", "GTIN", "00887276302195"),  # GTIN-12, answered as 14 digits
        ("4006381333931", "GTIN", "04006381333931"),
        ("96385074", "GTIN", "00000096385074"),
        ("0-306-40615-2", "ISBN", "0306406152"),
        ("080442957x", "ISBN", "080442957X"),  # check digit 10 is X, either case
        ("978-0-306-40615-7", "ISBN", "9780306406157"),
        ("979-10-90636-07-1", "ISBN", "9791090636071"),
        ("4901234567894", "JAN", "4901234567894"),
        ("4512345678906", "JAN", "4512345678906"),
        ("887276302195", "upc", "887276302195"),  # the type is case-insensitive
    ],
)
def test_valid_codes_normalise(raw, kind, expected):
    assert normalize_identifier(raw, kind) == expected


@pytest.mark.parametrize(
    ("raw", "kind", "message"),
    [
        ("887276302194", "UPC", "UPC 887276302194 has check digit 4; expected 5"),
        ("036000291453", "UPC", "UPC 036000291453 has check digit 3; expected 2"),
        ("4006381333932", "EAN", "EAN 4006381333932 has check digit 2; expected 1"),
        ("96385075", "EAN", "EAN 96385075 has check digit 5; expected 4"),
        ("00887276302194", "GTIN", "GTIN 00887276302194 has check digit 4; expected 5"),
        ("0306406153", "ISBN", "ISBN 0306406153 has check digit 3; expected 2"),
        ("0804429570", "ISBN", "ISBN 0804429570 has check digit 0; expected X"),
        ("9780306406158", "ISBN", "ISBN 9780306406158 has check digit 8; expected 7"),
        ("4901234567895", "JAN", "JAN 4901234567895 has check digit 5; expected 4"),
    ],
)
def test_a_wrong_check_digit_names_the_value_and_the_expected_digit(raw, kind, message):
    with pytest.raises(InvalidIdentifier) as caught:
        normalize_identifier(raw, kind)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("raw", "kind", "fragment"),
    [
        ("88727630219", "UPC", "has 11 digits; a UPC has 12"),
        ("0887276302195", "UPC", "has 13 digits; a UPC has 12"),  # an EAN is not a UPC
        ("887276302195", "EAN", "has 12 digits; an EAN has 13"),
        ("123456789", "GTIN", "has 9 digits"),
        ("030640615", "ISBN", "has 9 digits"),
        ("4901234567", "JAN", "has 10 digits; a JAN has 13"),
        ("", "UPC", "empty"),
        (" - ", "EAN", "empty"),
        ("88727630219X", "UPC", "digits only"),
        ("ABCDEFGHIJKL", "UPC", "digits only"),
        ("８８７２７６３０２１９５", "UPC", "digits only"),  # full-width digits are not ASCII digits
        ("03064X6152", "ISBN", "9 digits and a digit or X"),
        ("9770306406157", "ISBN", "does not start with 978 or 979"),
        ("4006381333931", "JAN", "does not start with 45 or 49"),
        (None, "UPC", "must be a string"),
        (8.87276302195e11, "UPC", "must be a string"),
        (True, "UPC", "must be a string"),
        (["887276302195"], "UPC", "must be a string"),
    ],
)
def test_malformed_codes_say_what_is_wrong(raw, kind, fragment):
    with pytest.raises(InvalidIdentifier) as caught:
        normalize_identifier(raw, kind)
    assert fragment in str(caught.value)


def test_identifier_types_are_case_insensitive_and_bad_ones_list_the_accepted():
    assert [normalize_identifier_type(kind.lower()) for kind in IDENTIFIER_TYPES] == list(IDENTIFIER_TYPES)
    assert normalize_identifier_type(" jan ") == "JAN"
    for bad in ("ASIN", "SKU", "", "U P C", None, 12):
        with pytest.raises(InvalidIdentifier) as caught:
            normalize_identifier_type(bad)
        assert "UPC, EAN, GTIN, ISBN, JAN" in str(caught.value)
    with pytest.raises(InvalidIdentifier):
        normalize_identifier("887276302195", "ASIN")


def test_a_very_long_value_is_shown_shortened():
    with pytest.raises(InvalidIdentifier) as caught:
        normalize_identifier("9" * 5000, "UPC")
    assert len(str(caught.value)) < 120


def test_gtin14_names_one_product_across_types():
    assert gtin14("887276302195", "UPC") == gtin14("0887276302195", "EAN") == gtin14("00887276302195", "GTIN") == "00887276302195"
    assert gtin14("0306406152", "ISBN") == gtin14("9780306406157", "EAN") == "09780306406157"
    assert gtin14("080442957X", "ISBN") == "09780804429573"
    assert gtin14("B07N4M94X4", "ASIN") is None
