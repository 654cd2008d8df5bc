"""Turn a Catalog Items 2022-04-01 `Item` into the flat product facts the API answers with."""

from __future__ import annotations

from typing import Any

from utils.marketplaces import Marketplace


def _for_marketplace(item: dict[str, Any], dataset: str, marketplace_id: str) -> dict[str, Any] | None:
    """The dataset's entry for our marketplace (each dataset is a list, one entry per marketplace)."""
    entries = item.get(dataset) or []
    if not isinstance(entries, list):
        return None
    for entry in entries:
        if isinstance(entry, dict) and entry.get("marketplaceId") == marketplace_id:
            return entry
    return next((e for e in entries if isinstance(e, dict)), None)


def _sales_ranks(entry: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not entry:
        return []
    ranks = [
        {"kind": "displayGroup", "title": r.get("title"), "rank": r.get("rank"), "id": r.get("websiteDisplayGroup"), "link": r.get("link")}
        for r in entry.get("displayGroupRanks") or []
    ]
    ranks += [
        {"kind": "classification", "title": r.get("title"), "rank": r.get("rank"), "id": r.get("classificationId"), "link": r.get("link")}
        for r in entry.get("classificationRanks") or []
    ]
    return [r for r in ranks if isinstance(r["rank"], int)]


def _headline_rank(ranks: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The top-level category rank (first displayGroup rank), else the best classification rank."""
    display = [r for r in ranks if r["kind"] == "displayGroup"]
    if display:
        return display[0]
    return min(ranks, key=lambda r: r["rank"], default=None)


def _dimensions(block: Any) -> dict[str, Any] | None:
    if not isinstance(block, dict):
        return None
    dims = {
        name: {"value": block[name].get("value"), "unit": block[name].get("unit")}
        for name in ("height", "length", "width", "weight")
        if isinstance(block.get(name), dict)
    }
    return dims or None


def _largest_main_image(entry: dict[str, Any] | None) -> str | None:
    images = [i for i in (entry or {}).get("images") or [] if isinstance(i, dict) and i.get("variant") == "MAIN"]
    best = max(images, key=lambda i: (i.get("height") or 0) * (i.get("width") or 0), default=None)
    return best.get("link") if best else None


def _identifiers(entry: dict[str, Any] | None) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for ident in (entry or {}).get("identifiers") or []:
        if isinstance(ident, dict) and ident.get("identifierType") and ident.get("identifier"):
            found.setdefault(ident["identifierType"], []).append(ident["identifier"])
    return found


def _parent_asin(entry: dict[str, Any] | None) -> str | None:
    for relationship in (entry or {}).get("relationships") or []:
        parents = relationship.get("parentAsins") if isinstance(relationship, dict) else None
        if parents:
            return parents[0]
    return None


def product_facts(item: dict[str, Any], marketplace: Marketplace) -> dict[str, Any]:
    """The flat facts for one item: null where SP-API gave nothing."""
    mp = marketplace.marketplace_id
    summary = _for_marketplace(item, "summaries", mp) or {}
    ranks = _sales_ranks(_for_marketplace(item, "salesRanks", mp))
    headline = _headline_rank(ranks)
    dimensions = _for_marketplace(item, "dimensions", mp) or {}
    product_type = _for_marketplace(item, "productTypes", mp) or {}
    return {
        "Title": summary.get("itemName"),
        "SalesRank": headline["rank"] if headline else None,
        "SalesRankCategory": headline["title"] if headline else None,
        "SalesRanks": ranks,
        "Brand": summary.get("brand"),
        "Manufacturer": summary.get("manufacturer"),
        "ModelNumber": summary.get("modelNumber"),
        "PartNumber": summary.get("partNumber"),
        "Color": summary.get("color"),
        "Size": summary.get("size"),
        "ItemClassification": summary.get("itemClassification"),
        "PackageQuantity": summary.get("packageQuantity") if isinstance(summary.get("packageQuantity"), int) else None,
        "ProductType": product_type.get("productType"),
        "ImageUrl": _largest_main_image(_for_marketplace(item, "images", mp)),
        "Identifiers": _identifiers(_for_marketplace(item, "identifiers", mp)),
        "ItemDimensions": _dimensions(dimensions.get("item")),
        "PackageDimensions": _dimensions(dimensions.get("package")),
        "ParentAsin": _parent_asin(_for_marketplace(item, "relationships", mp)),
    }
