"""Product codes that resolve to ASINs (UPC, EAN, GTIN, ISBN, JAN): normalisation and check digits.

GS1 codes (UPC-A, EAN-13/EAN-8, GTIN-8/12/13/14, JAN) end in a mod-10 check digit over the other
digits weighted 3 and 1 from the right; ISBN-10 ends in a mod-11 check digit (10 is written X),
and ISBN-13 is an EAN-13 with the 978 or 979 prefix.
"""

from __future__ import annotations

import re

IDENTIFIER_TYPES = ("UPC", "EAN", "GTIN", "ISBN", "JAN")
# Digits a code of each type may have (after removing spaces and hyphens).
_LENGTHS = {
    "UPC": (12,),
    "EAN": (8, 13),
    "GTIN": (8, 12, 13, 14),
    "ISBN": (10, 13),
    "JAN": (13,),
}
_DESCRIPTIONS = {
    "UPC": "a UPC has 12 digits",
    "EAN": "an EAN has 13 digits (or 8 for EAN-8)",
    "GTIN": "a GTIN has 8, 12, 13 or 14 digits",
    "ISBN": "an ISBN has 10 characters (the last may be X) or 13 digits",
    "JAN": "a JAN has 13 digits",
}
_SEPARATORS = re.compile(r"[\s\-]+")
_DIGITS = re.compile(r"[0-9]+")
_ISBN10 = re.compile(r"[0-9]{9}[0-9X]")
_SHOWN_MAX = 40


class InvalidIdentifier(ValueError):
    """The value is not a valid code of its type (or the type is not one we resolve)."""


def _shown(value: object) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= _SHOWN_MAX else text[:_SHOWN_MAX] + "..."


def gs1_check_digit(payload: str) -> str:
    """The GS1 mod-10 check digit of `payload` (every digit of the code but the last)."""
    total = sum(int(digit) * (3 if position % 2 == 0 else 1) for position, digit in enumerate(reversed(payload)))
    return str((10 - total % 10) % 10)


def isbn10_check_digit(payload: str) -> str:
    """The ISBN-10 mod-11 check digit of its first 9 digits ("X" for 10)."""
    total = sum(int(digit) * weight for digit, weight in zip(payload, range(10, 1, -1), strict=True))
    check = (11 - total % 11) % 11
    return "X" if check == 10 else str(check)


def normalize_identifier_type(value: object) -> str:
    """The identifier type in upper case; InvalidIdentifier unless it is one of IDENTIFIER_TYPES."""
    accepted = ", ".join(IDENTIFIER_TYPES)
    if not isinstance(value, str):
        raise InvalidIdentifier(f"identifier_type must be a string, one of {accepted}; got {type(value).__name__}")
    kind = value.strip().upper()
    if kind not in IDENTIFIER_TYPES:
        raise InvalidIdentifier(f"Unknown identifier_type {_shown(value)!r}: use one of {accepted}")
    return kind


def normalize_identifier(value: object, identifier_type: str) -> str:
    """The code without spaces or hyphens (a GTIN padded to 14 digits); InvalidIdentifier if it is not a valid code."""
    kind = normalize_identifier_type(identifier_type)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        value = str(value)  # a spreadsheet's number; leading zeros are lost, the length check says so
    if not isinstance(value, str):
        raise InvalidIdentifier(f"{kind} must be a string of digits, got {type(value).__name__}")
    code = _SEPARATORS.sub("", value).upper()
    if not code:
        raise InvalidIdentifier(f"{kind} is empty")
    if kind == "ISBN" and len(code) == 10:
        return _checked_isbn10(code, value)
    if not code.isascii() or not _DIGITS.fullmatch(code):
        raise InvalidIdentifier(f"{kind} {_shown(value)!r} must be digits only (spaces and hyphens are ignored)")
    if len(code) not in _LENGTHS[kind]:
        raise InvalidIdentifier(f"{kind} {_shown(value)!r} has {len(code)} digits; {_DESCRIPTIONS[kind]}")
    if kind == "ISBN" and not code.startswith(("978", "979")):
        raise InvalidIdentifier(f"ISBN {code} has 13 digits but does not start with 978 or 979")
    if kind == "JAN" and not code.startswith(("45", "49")):
        raise InvalidIdentifier(f"JAN {code} does not start with 45 or 49 (the GS1 prefixes of Japan)")
    expected = gs1_check_digit(code[:-1])
    if code[-1] != expected:
        raise InvalidIdentifier(f"{kind} {code} has check digit {code[-1]}; expected {expected}")
    # GS1 writes every GTIN as 14 digits; SP-API lists GTINs that way.
    return code.zfill(14) if kind == "GTIN" else code


def _checked_isbn10(code: str, raw: str) -> str:
    if not code.isascii() or not _ISBN10.fullmatch(code):
        raise InvalidIdentifier(f"ISBN {_shown(raw)!r} must be 9 digits and a digit or X (spaces and hyphens are ignored)")
    expected = isbn10_check_digit(code[:9])
    if code[9] != expected:
        raise InvalidIdentifier(f"ISBN {code} has check digit {code[9]}; expected {expected}")
    return code


def gtin14(code: str, identifier_type: str) -> str | None:
    """The 14-digit GTIN of a normalized code (an ISBN-10 through its ISBN-13), or None if it has none.

    Two codes of different types name the same product when their GTIN-14s are equal: UPC
    887276302195, EAN 0887276302195 and GTIN 00887276302195 are one code.
    """
    code = code.strip().upper()
    if identifier_type.upper() == "ISBN" and len(code) == 10 and _ISBN10.fullmatch(code):
        code = "978" + code[:9] + gs1_check_digit("978" + code[:9])
    if not code.isascii() or not _DIGITS.fullmatch(code) or len(code) > 14:
        return None
    return code.zfill(14)
