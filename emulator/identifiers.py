"""UPC/EAN/GTIN codes of synthetic items, derived from the ASIN so that most can be decoded back."""

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
