"""Test data: ASINs the emulator serves, the sandbox item's title, and entries as the service writes them."""

from __future__ import annotations

SANDBOX_TITLE = "Samsung QN82Q60RAFXZA Flat 82-Inch QLED 4K Q60 Series (2019) Ultra HD Smart TV with HDR and Alexa Compatibility"
US = "ATVPDKIKX0DER"


def synthetic_asins(n: int, start: int = 0) -> list[str]:
    """`n` ASINs the emulator answers with synthetic items (B0TEST0000, B0TEST0001, ...)."""
    return [f"B0TEST{i:04d}" for i in range(start, start + n)]


def entry(asin: str, *, success: bool = True, cached: bool = False, code: str | None = None) -> dict:
    """A minimal lookup entry for store tests: success, or an error with `code` (NOT_FOUND by default)."""
    answer = {"asin": asin, "success": success, "cached": cached}
    if not success:
        answer["error"] = {"code": code or "NOT_FOUND", "message": "no"}
    return answer
