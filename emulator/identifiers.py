"""UPC/EAN/GTIN/ISBN/JAN codes of synthetic items, derived from the ASIN so that most can be decoded back.

Which items carry which codes (catalog.item_identifiers lists them; search resolves them):

* Every synthetic item has a UPC (`upc_for_asin`), EAN = "0" + UPC and GTIN = "00" + UPC.
* Books: an ASIN that is a valid ISBN-10 (9 digits and a digit or X, mod-11 check) is a book, as on
  Amazon, where a book's ASIN is its ISBN-10. It also carries ISBN = the ASIN, and its ISBN-13
  (978 + 9 digits + check digit) as an EAN, with GTIN = "0" + that EAN.
* Japanese imports: a "B00" item whose UPC begins with "00" (about 1 in 78 of them) also carries a
  JAN, 490 + the UPC's 3rd to 11th digits + check digit (`jan_for_asin`), listed as JAN and as EAN
  (a JAN is an EAN-13 with a Japanese prefix), with GTIN = "0" + the JAN.
* Bundles, one code for two ASINs: a "B00" ASIN ending in "V" shares its UPC (and that UPC's EAN and
  GTIN) with a multipack bundle of it, ASIN "B01" + the same 7 characters (`bundle_asin`,
  `bundle_base`). The bundle lists its own codes and the shared ones; both items are found by the
  shared codes, with sales ranks of their own.

For tests: `two_asin_upc(n)` gives a UPC that resolves to two ASINs, `jan_example(n)` a JAN and its
ASIN, and `unmatched_code(type, n)` a code with a valid check digit that no item carries.
"""

from __future__ import annotations

import hashlib
import re

_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

# A UPC-A holds 11 payload digits plus a check digit: 10**11 codes. Two ASIN families fit and are
# encoded invertibly (an affine permutation so neighbouring ASINs get unrelated-looking codes):
#   "B00" + 7 letters/digits -> payload [0, 36**7);    all-digit ASINs -> [36**7, 36**7 + 10**10).
# Any other ASIN gets a hashed payload above those ranges, resolvable only through a cache of
# items the emulator has served (see search.IdentifierCache).
_B00_SPACE = 36**7
_B00_MUL = 25214903917  # coprime with 36**7
_B00_ADD = 11
_DIGIT_SPACE = 10**10
_DIGIT_MUL = 3141592653  # coprime with 10**10
_DIGIT_ADD = 2718281828
_HASHED_BASE = _B00_SPACE + _DIGIT_SPACE
_HASHED_SPACE = 10**11 - _HASHED_BASE
_B00_INV = pow(_B00_MUL, -1, _B00_SPACE)
_DIGIT_INV = pow(_DIGIT_MUL, -1, _DIGIT_SPACE)


def _to_base36(text: str) -> int:
    value = 0
    for char in text:
        value = value * 36 + _ALNUM.index(char)
    return value


def _from_base36(value: int, width: int) -> str:
    chars = []
    for _ in range(width):
        value, digit = divmod(value, 36)
        chars.append(_ALNUM[digit])
    return "".join(reversed(chars))


def upc_check_digit(payload: str) -> str:
    """The GS1 check digit of a UPC/EAN/GTIN payload (all digits but the last)."""
    total = 0
    for position, digit in enumerate(reversed(payload)):
        total += int(digit) * (3 if position % 2 == 0 else 1)
    return str((10 - total % 10) % 10)


def upc_for_asin(asin: str) -> str:
    """The 12-digit UPC of a synthetic item (check digit valid)."""
    asin = asin.strip().upper()
    if not re.fullmatch(r"[A-Z0-9]{10}", asin):
        raise ValueError(f"not an ASIN: {asin!r}")
    if asin.startswith("B00"):
        payload = (_to_base36(asin[3:]) * _B00_MUL + _B00_ADD) % _B00_SPACE
    elif asin.isdigit():
        payload = _B00_SPACE + (int(asin) * _DIGIT_MUL + _DIGIT_ADD) % _DIGIT_SPACE
    else:
        digest = hashlib.sha256(f"upc|{asin}".encode()).digest()
        payload = _HASHED_BASE + int.from_bytes(digest[:8], "big") % _HASHED_SPACE
    text = f"{payload:011d}"
    return text + upc_check_digit(text)


def asin_for_upc(upc: str) -> str | None:
    """The synthetic ASIN a UPC decodes to, for the invertible ASIN families; None otherwise."""
    if len(upc) != 12 or not upc.isdigit() or upc_check_digit(upc[:11]) != upc[11]:
        return None
    payload = int(upc[:11])
    if payload < _B00_SPACE:
        return "B00" + _from_base36(((payload - _B00_ADD) * _B00_INV) % _B00_SPACE, 7)
    if payload < _HASHED_BASE:
        return f"{((payload - _B00_SPACE - _DIGIT_ADD) * _DIGIT_INV) % _DIGIT_SPACE:010d}"
    return None


# --------------------------------------------------------------------------- ISBN, JAN, bundles


def isbn10_check_digit(payload: str) -> str:
    """The ISBN-10 check digit of 9 digits ("X" stands for 10)."""
    total = sum(int(digit) * weight for digit, weight in zip(payload, range(10, 1, -1), strict=True))
    check = (11 - total % 11) % 11
    return "X" if check == 10 else str(check)


def is_isbn10(value: str) -> bool:
    """True when `value` is a valid ISBN-10: then it is also the ASIN of a book."""
    return bool(re.fullmatch(r"[0-9]{9}[0-9X]", value)) and isbn10_check_digit(value[:9]) == value[9]


def isbn13_for_isbn10(isbn10: str) -> str:
    """The 978-prefixed ISBN-13 (an EAN) of an ISBN-10."""
    payload = "978" + isbn10[:9]
    return payload + upc_check_digit(payload)


def isbn10_for_isbn13(isbn13: str) -> str | None:
    """The ISBN-10 of a valid 978-prefixed ISBN-13; None otherwise (979 ISBNs have no ISBN-10)."""
    if len(isbn13) != 13 or not isbn13.isdigit() or not isbn13.startswith("978") or upc_check_digit(isbn13[:12]) != isbn13[12]:
        return None
    return isbn13[3:12] + isbn10_check_digit(isbn13[3:12])


def jan_for_asin(asin: str) -> str | None:
    """The JAN of a synthetic "B00" item whose UPC begins with 00; None for any other item."""
    asin = asin.strip().upper()
    if not re.fullmatch(r"B00[A-Z0-9]{7}", asin):
        return None
    upc = upc_for_asin(asin)
    if not upc.startswith("00"):
        return None
    payload = "490" + upc[2:11]
    return payload + upc_check_digit(payload)


def asin_for_jan(jan: str) -> str | None:
    """The synthetic ASIN whose JAN this is, or None."""
    if len(jan) != 13 or not jan.isdigit() or not jan.startswith("490") or upc_check_digit(jan[:12]) != jan[12]:
        return None
    payload = "00" + jan[3:12]
    asin = asin_for_upc(payload + upc_check_digit(payload))
    return asin if asin is not None and jan_for_asin(asin) == jan else None


def bundle_asin(asin: str) -> str | None:
    """The bundle that shares this item's UPC ("B01" + the same 7 characters) for a "B00" ASIN ending in V; else None."""
    asin = asin.strip().upper()
    return "B01" + asin[3:] if re.fullmatch(r"B00[A-Z0-9]{6}V", asin) else None


def bundle_base(asin: str) -> str | None:
    """The "B00" item a bundle ASIN ("B01" + 6 characters + "V") is a multipack of; None for any other ASIN."""
    asin = asin.strip().upper()
    return "B00" + asin[3:] if re.fullmatch(r"B01[A-Z0-9]{6}V", asin) else None


def ean13_form(identifier_type: str, value: str) -> str | None:
    """The EAN-13 a UPC, EAN-13, GTIN-14 ("0" + EAN) or JAN names; None for other shapes."""
    if not value.isdigit():
        return None
    if identifier_type == "UPC" and len(value) == 12:
        return "0" + value
    if identifier_type in ("EAN", "JAN") and len(value) == 13:
        return value
    if identifier_type == "GTIN" and len(value) == 14 and value.startswith("0"):
        return value[1:]
    return None


def asins_for_code(identifier_type: str, value: str) -> list[str]:
    """Synthetic ASINs whose items may carry this code, by the rules above (the caller checks their identifiers)."""
    value = value.strip().upper()
    if identifier_type == "ISBN":
        isbn10 = value if len(value) == 10 else isbn10_for_isbn13(value)
        return [isbn10] if isbn10 is not None and is_isbn10(isbn10) else []
    ean = ean13_form(identifier_type, value)
    if ean is None:
        return []
    if ean.startswith("0"):
        decoded = asin_for_upc(ean[1:])
        if decoded is None:
            return []
        bundle = bundle_asin(decoded)
        return [decoded, bundle] if bundle else [decoded]
    if ean.startswith("978"):
        isbn10 = isbn10_for_isbn13(ean)
        return [isbn10] if isbn10 else []
    jan_asin = asin_for_jan(ean)
    return [jan_asin] if jan_asin else []


# --------------------------------------------------------------------------- examples for tests


def _b00(n: int, last: str = "") -> str:
    body = _from_base36(n, 7 - len(last)) + last
    return "B00" + body


def two_asin_upc(n: int = 0) -> tuple[str, tuple[str, str]]:
    """The n-th UPC that resolves to two items, and their ASINs (the base item, its bundle)."""
    base = _b00(n, "V")
    bundle = bundle_asin(base)
    assert bundle is not None
    return upc_for_asin(base), (base, bundle)


def jan_example(n: int = 0) -> tuple[str, str]:
    """The n-th JAN that an item carries, and that item's ASIN."""
    # Spread over the "00" UPCs so examples do not look like runs of zeros.
    payload = f"{(n * 387_420_489 + 123_456_789) % 10**9:011d}"
    asin = asin_for_upc(payload + upc_check_digit(payload))
    assert asin is not None
    jan = jan_for_asin(asin)
    assert jan is not None
    return jan, asin


def unmatched_code(identifier_type: str = "UPC", n: int = 0) -> str:
    """A code of this type (UPC, EAN, GTIN, ISBN, JAN) with a valid check digit that no emulated item carries.

    UPC/EAN/GTIN: a hashed-range UPC (no item decodes to it, and none is served with it in practice);
    ISBN: a 979 ISBN-13 (no ISBN-10, so no book ASIN); JAN: a 45-prefixed JAN (the emulator's are 490).
    """
    payload = f"{_HASHED_BASE + _HASHED_SPACE // 2 + n:011d}"
    upc = payload + upc_check_digit(payload)
    if identifier_type == "UPC":
        return upc
    if identifier_type == "EAN":
        return "0" + upc
    if identifier_type == "GTIN":
        return "00" + upc
    prefix = {"ISBN": "979", "JAN": "45"}.get(identifier_type)
    if prefix is None:
        raise ValueError(f"no unmatched-code rule for identifier type {identifier_type!r}")
    body = prefix + f"{n:0{12 - len(prefix)}d}"
    return body + upc_check_digit(body)
