"""ASIN normalisation and validation."""

from __future__ import annotations

import re

_ASIN = re.compile(r"[A-Z0-9]{10}")


class InvalidAsin(ValueError):
    """The value is not an ASIN: 10 letters or digits after trimming."""


def normalize_asin(raw: object) -> str:
    """Strip and upper-case an ASIN; raise InvalidAsin unless it is 10 letters/digits."""
    if not isinstance(raw, str):
        raise InvalidAsin(f"ASIN must be a string of 10 letters or digits, got {type(raw).__name__}")
    stripped = raw.strip()
    # Upper-case only ASCII: "ß".upper() is "SS", which would turn 5 characters into a valid-looking 10.
    asin = stripped.upper() if stripped.isascii() else stripped
    if not _ASIN.fullmatch(asin):
        shown = raw if len(raw) <= 40 else raw[:40] + "..."
        raise InvalidAsin(f"Invalid ASIN {shown!r}: an ASIN is 10 letters or digits")
    return asin
