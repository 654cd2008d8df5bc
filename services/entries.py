"""A lookup entry: what `GET /asin/<asin>`, `/asin/batch`, a job's results and `flask asin` answer for one item.

`LookupEntry` is the one type of it, and the constructors below build it (the cache only marks a
copy `cached`): the order they write the keys in is the order of the JSON answer. routes/openapi.yaml documents
it as `SuccessEntry` and `FailureEntry` (a job's entry, `JobEntry`, adds `input`), and
tests/services/test_entries.py holds the two to each other.
"""

# No `from __future__ import annotations` here: Python 3.11's TypedDict sees `Required[...]` only in
# evaluated annotations, and would make every key of LookupEntry optional.
from typing import Any, Required, TypedDict, cast

from services.catalog_item import product_facts
from services.errors import ServiceError
from utils.marketplaces import Marketplace
from utils.timestamps import now_iso


class IdentifierMatch(TypedDict):
    """One ASIN a UPC/EAN/GTIN/ISBN/JAN code maps to, and whether it is the one whose facts the entry carries."""

    asin: str
    rank: int | None
    best: bool


class LookupEntry(TypedDict, total=False):
    """One item's answer: a product's facts (`success` true) or its `error`; the keys of a batch of codes or a job only there."""

    # Every entry. `asin` is the ASIN as sent (any JSON value) when it is not one, None in a batch of codes.
    asin: Required[Any]
    country: Required[str | None]
    marketplace_id: Required[str | None]
    success: Required[bool]
    # A found product: services/catalog_item.py's facts, null where SP-API gave nothing.
    Title: str | None
    SalesRank: int | None
    SalesRankCategory: str | None
    SalesRanks: list[dict[str, Any]]
    Brand: str | None
    Manufacturer: str | None
    ModelNumber: str | None
    PartNumber: str | None
    Color: str | None
    Size: str | None
    ItemClassification: str | None
    PackageQuantity: int | None
    ProductType: str | None
    ImageUrl: str | None
    Identifiers: dict[str, list[str]]
    ItemDimensions: dict[str, Any] | None
    PackageDimensions: dict[str, Any] | None
    ParentAsin: str | None
    # The datasets `include` asked for (services/datasets.py): each one's facts, or its own `error`.
    Pricing: dict[str, Any]
    Offers: dict[str, Any]
    Fees: dict[str, Any]
    Restrictions: dict[str, Any]
    Eligibility: dict[str, Any]
    # A failure: ServiceError.as_error(), its code one of services.errors.ENTRY_CODES.
    error: dict[str, Any]
    cached: Required[bool]
    # When SP-API answered; None for an entry refused before any lookup.
    fetched_at: Required[str | None]
    # A batch of codes: the code (normalized, or as sent when it is not one), its type, and every ASIN it maps to.
    identifier: Any
    identifier_type: str
    matches: list[IdentifierMatch]
    # A job's result: the item as listed.
    input: str


def found_entry(asin: str, marketplace: Marketplace, item: dict[str, Any]) -> LookupEntry:
    """The entry of an ASIN SP-API answered with `item` (a Catalog Items 2022-04-01 Item)."""
    # product_facts answers a plain dict; tests/services/test_entries.py holds its keys to LookupEntry's.
    entry = {
        "asin": asin,
        "country": marketplace.code,
        "marketplace_id": marketplace.marketplace_id,
        "success": True,
        **product_facts(item, marketplace),
        "cached": False,
        "fetched_at": now_iso(),
    }
    return cast(LookupEntry, entry)


def failed_entry(asin: object, marketplace: Marketplace | None, failure: ServiceError, *, fetched: bool = True) -> LookupEntry:
    """The entry of a lookup that failed with `failure`; `fetched=False` when it was refused before any lookup."""
    return {
        "asin": asin,
        "country": marketplace.code if marketplace else None,
        "marketplace_id": marketplace.marketplace_id if marketplace else None,
        "success": False,
        "error": failure.as_error(),
        "cached": False,
        "fetched_at": now_iso() if fetched else None,
    }


def identifier_failed_entry(
    identifier: object, identifier_type: str, marketplace: Marketplace, failure: ServiceError, *, fetched: bool = True
) -> LookupEntry:
    """The entry of a code that is not valid or matches no item (or whose lookup failed): no ASIN, no matches."""
    return {
        "identifier": identifier,
        "identifier_type": identifier_type,
        **failed_entry(None, marketplace, failure, fetched=fetched),
        "matches": [],
    }


def _ranked(entries: list[LookupEntry]) -> list[LookupEntry]:
    """Product entries best first: the lowest sales rank, unranked last, ties in SP-API's order."""
    order = sorted(range(len(entries)), key=lambda i: (entries[i]["SalesRank"] is None, entries[i]["SalesRank"] or 0, i))
    return [entries[i] for i in order]


def identifier_matched_entry(identifier: str, identifier_type: str, products: list[LookupEntry]) -> LookupEntry:
    """The entry of a code that maps to `products` (found entries): the best-ranked product's facts and every match."""
    ranked = _ranked(products)
    matches: list[IdentifierMatch] = [
        {"asin": entry["asin"], "rank": entry["SalesRank"], "best": index == 0} for index, entry in enumerate(ranked)
    ]
    return {"identifier": identifier, "identifier_type": identifier_type, **ranked[0], "matches": matches}


def job_entry(input_value: str, entry: LookupEntry) -> LookupEntry:
    """A job's result for one listed item: its entry with `input`, the item as listed, first."""
    return {"input": input_value, **entry}
