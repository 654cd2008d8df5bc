"""Catalog data: which ASINs exist and what their items look like (Catalog Items 2022-04-01 `Item` shape).

* B07N4M94X4 in the US marketplace is the model's getCatalogItem 200 example, verbatim
  (vendored in fixtures/sandbox_item.json).
* Any other valid ASIN (10 letters/digits) not starting with the not-found prefix is a synthetic
  item. Its product identity (category, brand, title, UPC, images, dimensions, variation parent) is
  drawn from sha256 of the ASIN, so it is the same product in every marketplace; what varies by
  marketplace (sales ranks, price, units, language tag, link domain) is drawn from sha256 of the
  ASIN and the marketplace id. Every draw hashes its own label, so the data is stable across Python
  versions and across edits to unrelated fields.
* A bundle ASIN ("B01" + 6 characters + "V") is a multipack of the "B00" item with the same last 7
  characters: that item's product, twice the units, its own images and sales ranks, and it is also
  listed under that item's UPC (see emulator/identifiers.py for every identifier rule).

Everything here is pure: no I/O except reading the vendored fixture on first use.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from emulator.defaults import MARKETPLACES, NOT_FOUND_PREFIX
from emulator.examples import load_fixture
from emulator.identifiers import bundle_base, is_isbn10, isbn13_for_isbn10, jan_for_asin, upc_for_asin
from emulator.products import CATEGORIES, MARKETPLACE_INFO, Category, Node, Product

# The includedData enum of getCatalogItem / searchCatalogItems, in the model's order.
INCLUDED_DATA_VALUES: tuple[str, ...] = (
    "attributes",
    "classifications",
    "dimensions",
    "identifiers",
    "images",
    "productTypes",
    "relationships",
    "salesRanks",
    "summaries",
    "vendorDetails",
)
DEFAULT_INCLUDED_DATA: tuple[str, ...] = ("summaries",)  # the model's default for includedData

SANDBOX_ASIN = "B07N4M94X4"
SANDBOX_MARKETPLACE_ID = MARKETPLACES["US"]
MARKETPLACE_IDS = frozenset(MARKETPLACES.values())

_ASIN = re.compile(r"[A-Z0-9]{10}")
_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_IMAGE_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+-"
_T = TypeVar("_T")


# --------------------------------------------------------------------------- ASINs and existence


def normalize_asin(asin: str) -> str:
    """Trim and upper-case an ASIN (SP-API treats ASINs case-insensitively)."""
    return asin.strip().upper()


def is_valid_asin(asin: str) -> bool:
    """True when `asin` is 10 letters or digits (after normalisation)."""
    return bool(_ASIN.fullmatch(normalize_asin(asin)))


def item_exists(asin: str, marketplace_id: str, not_found_prefix: str = NOT_FOUND_PREFIX) -> bool:
    """True when the emulator has an item for `asin` in `marketplace_id`."""
    asin = normalize_asin(asin)
    if not _ASIN.fullmatch(asin) or marketplace_id not in MARKETPLACE_IDS:
        return False
    if not_found_prefix and asin.startswith(not_found_prefix.upper()):
        return False
    if asin == SANDBOX_ASIN:
        # The model's example is a US listing; other marketplaces do not carry it.
        return marketplace_id == SANDBOX_MARKETPLACE_ID
    return True


def build_item(
    asin: str,
    marketplace_id: str,
    included_data: Iterable[str] | None = None,
    not_found_prefix: str = NOT_FOUND_PREFIX,
) -> dict[str, Any] | None:
    """The Item for `asin` in one marketplace with only the requested datasets, or None if it does not exist."""
    datasets = _datasets(included_data)
    if not item_exists(asin, marketplace_id, not_found_prefix):
        return None
    asin = normalize_asin(asin)
    full = sandbox_item() if asin == SANDBOX_ASIN else _synthetic_item(asin, marketplace_id)
    item: dict[str, Any] = {"asin": asin}
    for name in INCLUDED_DATA_VALUES:
        if name in datasets:
            item[name] = full[name]
    return item


def merge_items(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One Item from single-marketplace Items of the same ASIN (each dataset lists every marketplace)."""
    merged: dict[str, Any] = {"asin": items[0]["asin"]}
    for item in items:
        for name, value in item.items():
            if name == "asin":
                continue
            if name == "attributes":
                target = merged.setdefault("attributes", {})
                for attribute, values in value.items():
                    target.setdefault(attribute, []).extend(values)
            else:
                merged.setdefault(name, []).extend(value)
    return merged


def _datasets(included_data: Iterable[str] | None) -> frozenset[str]:
    if included_data is None:
        return frozenset(DEFAULT_INCLUDED_DATA)
    wanted = frozenset(included_data)
    unknown = wanted - set(INCLUDED_DATA_VALUES)
    if unknown:
        raise ValueError(f"unknown includedData value(s): {', '.join(sorted(unknown))}")
    return wanted


def sandbox_item() -> dict[str, Any]:
    """A fresh copy of the model's getCatalogItem 200 example (B07N4M94X4, US, every dataset)."""
    return load_fixture("sandbox_item.json")


# --------------------------------------------------------------------------- identifiers


def item_identifiers(asin: str) -> list[dict[str, str]]:
    """The item's identifiers (EAN, GTIN, UPC; ISBN for books, JAN for Japanese imports), the same in every marketplace.

    Grouped by type in the model example's order (EAN, GTIN, ...), the item's own codes first
    (emulator.identifiers says which items carry which codes).
    """
    asin = normalize_asin(asin)
    if asin == SANDBOX_ASIN:
        return copy.deepcopy(sandbox_item()["identifiers"][0]["identifiers"])
    codes: list[tuple[str, str]] = []

    def upc_codes(upc: str) -> None:
        codes.extend([("EAN", "0" + upc), ("GTIN", "00" + upc), ("UPC", upc)])

    def ean_codes(ean: str) -> None:
        codes.extend([("EAN", ean), ("GTIN", "0" + ean)])

    upc_codes(upc_for_asin(asin))
    if is_isbn10(asin):
        ean_codes(isbn13_for_isbn10(asin))
        codes.append(("ISBN", asin))
    jan = jan_for_asin(asin)
    if jan is not None:
        ean_codes(jan)
        codes.append(("JAN", jan))
    base = bundle_base(asin)
    if base is not None:
        upc_codes(upc_for_asin(base))
    order = {kind: index for index, kind in enumerate(("EAN", "GTIN", "ISBN", "JAN", "UPC"))}
    return [{"identifier": code, "identifierType": kind} for kind, code in sorted(codes, key=lambda c: order[c[0]])]


# --------------------------------------------------------------------------- deterministic draws


class _Draws:
    """Independent pseudo-random draws keyed by a label, all derived from sha256 of the key parts."""

    def __init__(self, *parts: str) -> None:
        self._key = hashlib.sha256("|".join(parts).encode()).digest()

    def unit(self, label: str) -> float:
        digest = hashlib.sha256(self._key + label.encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    def below(self, label: str, n: int) -> int:
        return min(int(self.unit(label) * n), n - 1)

    def pick(self, label: str, options: Sequence[_T]) -> _T:
        return options[self.below(label, len(options))]

    def between(self, label: str, low: float, high: float) -> float:
        return low + (high - low) * self.unit(label)

    def integer(self, label: str, low: int, high: int) -> int:
        return low + self.below(label, high - low + 1)

    def chars(self, label: str, count: int, alphabet: str) -> str:
        digest = hashlib.sha256(self._key + b"chars" + label.encode()).digest()
        return "".join(alphabet[b % len(alphabet)] for b in digest[:count])


@dataclass(frozen=True)
class _Identity:
    """What makes a synthetic item the product it is, whatever the marketplace."""

    asin: str
    draws: _Draws
    category: Category
    product: Product
    brand: str
    manufacturer: str
    title: str
    color: str | None
    size: str | None
    model_number: str
    part_number: str
    package_quantity: int
    item_classification: str
    parent_asin: str | None
    price_usd: float
    item_dims: tuple[float, float, float, float] | None  # height, length, width (in), weight (lb)
    package_dims: tuple[float, float, float, float]


@functools.lru_cache(maxsize=16384)
def _identity(asin: str) -> _Identity:
    base = bundle_base(asin)
    if base is not None:
        return _bundle_identity(asin, _identity(base))
    d = _Draws(asin)
    category = d.pick("category", CATEGORIES)
    product = d.pick("product", category.products)
    brand, manufacturer = d.pick("brand", category.brands)
    qualifier = d.pick("qualifier", product.qualifiers)
    size = d.pick("size", product.sizes) if product.sizes else None
    color = d.pick("color", product.colors) if product.colors else None
    feature = d.pick("feature", product.features)
    quantity_roll = d.unit("package_quantity")
    package_quantity = 1 if quantity_roll < 0.88 else (2 if quantity_roll < 0.95 else 4)
    if size and any(word in size for word in ("Pack", "Set", "Pair", "Pads", "Piece")):
        package_quantity = 1  # the size already says how many come in the box

    title = f"{brand} {qualifier} {product.noun}"
    if size:
        title += f", {size}"
    title += f", {feature}"
    if color and color not in ("Multicolor", "Assorted") and d.unit("color_in_title") < 0.5:
        title += f", {color}"
    if package_quantity > 1:
        title += f", Pack of {package_quantity}"

    initials = "".join(ch for ch in brand.upper() if ch.isalpha())[:2]
    noun_code = "".join(word[0] for word in product.noun.upper().split())[:3]
    model_number = f"{initials}-{d.integer('model', 1000, 9999)}{noun_code}"
    part_number = model_number + (f"-{color[:3].upper()}" if color else "")

    height, length, width, weight = (
        d.between("height", *product.height),
        d.between("length", *product.length),
        d.between("width", *product.width),
        d.between("weight", *product.weight),
    )
    pad = d.between("package_pad", 0.3, 2.0)
    package_dims = (height + pad, length + pad, width + pad, weight * d.between("package_weight", 1.08, 1.3) + 0.05)
    # ~10% of listings carry package dimensions only.
    item_dims = None if d.unit("item_dimensions") < 0.10 else (height, length, width, weight)

    parent_asin = None
    if d.unit("variation") < 0.20:  # ~20% are children of a variation family
        parent_asin = "B0" + d.chars("parent", 8, _ALNUM)
    classification = "PRODUCT_BUNDLE" if d.unit("bundle") < 0.03 else "BASE_PRODUCT"

    return _Identity(
        asin=asin,
        draws=d,
        category=category,
        product=product,
        brand=brand,
        manufacturer=manufacturer,
        title=title,
        color=color,
        size=size,
        model_number=model_number,
        part_number=part_number,
        package_quantity=package_quantity,
        item_classification=classification,
        parent_asin=parent_asin,
        price_usd=d.between("price", *product.price) * (1 + 0.6 * (package_quantity - 1)),
        item_dims=item_dims,
        package_dims=package_dims,
    )


def _bundle_identity(asin: str, base: _Identity) -> _Identity:
    """A multipack bundle of `base` (listed under base's UPC too): the same product, twice the units."""
    d = _Draws(asin)
    quantity = 2 * base.package_quantity
    title = base.title.split(", Pack of ")[0] + f", Pack of {quantity}"
    height, length, width, weight = base.package_dims
    return replace(
        base,
        asin=asin,
        draws=d,
        title=title,
        package_quantity=quantity,
        item_classification="PRODUCT_BUNDLE",
        parent_asin=None,
        price_usd=base.price_usd * d.between("bundle_price", 1.7, 1.95),
        package_dims=(height, length, width * 2 + 0.5, weight * 2 + 0.1),
    )


# --------------------------------------------------------------------------- synthetic datasets


def _synthetic_item(asin: str, marketplace_id: str) -> dict[str, Any]:
    ident = _identity(asin)
    info = MARKETPLACE_INFO[marketplace_id]
    local = _Draws(asin, marketplace_id)
    return {
        "asin": asin,
        "attributes": _attributes(ident, marketplace_id),
        "classifications": [{"marketplaceId": marketplace_id, "classifications": [_classification_chain(ident)]}],
        "dimensions": [_dimensions(ident, marketplace_id, info.metric)],
        "identifiers": [{"marketplaceId": marketplace_id, "identifiers": item_identifiers(asin)}],
        "images": [{"marketplaceId": marketplace_id, "images": _images(ident)}],
        "productTypes": [{"marketplaceId": marketplace_id, "productType": ident.product.product_type}],
        "relationships": [{"marketplaceId": marketplace_id, "relationships": _relationships(ident)}],
        "salesRanks": [_sales_ranks(ident, local, marketplace_id, info.domain)],
        "summaries": [_summary(ident, marketplace_id)],
        "vendorDetails": [_vendor_details(ident, marketplace_id)],
    }


def _node(node: Node, parent: dict[str, Any] | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {"displayName": node.name, "classificationId": node.id}
    if parent is not None:
        result["parent"] = parent
    return result


def _classification_chain(ident: _Identity) -> dict[str, Any]:
    root = _node(ident.category.root)
    return _node(ident.product.leaf, _node(ident.product.parent, root))


def _price(ident: _Identity, marketplace_id: str) -> float:
    rate = MARKETPLACE_INFO[marketplace_id].usd_rate
    value = ident.price_usd * rate
    if rate >= 100:  # yen: whole tens, e.g. 2980
        return float(max(10, round(value / 10) * 10 - 20))
    if rate >= 10:  # e.g. 1999 rupees
        return float(max(9, round(value / 10) * 10 - 1))
    return round(max(1.0, float(int(value))) + 0.99, 2)


def _attributes(ident: _Identity, marketplace_id: str) -> dict[str, Any]:
    info = MARKETPLACE_INFO[marketplace_id]

    def text(value: str) -> list[dict[str, Any]]:
        return [{"language_tag": info.language_tag, "value": value, "marketplace_id": marketplace_id}]

    return {
        "brand": text(ident.brand),
        "item_name": text(ident.title),
        "list_price": [{"currency": info.currency, "value": _price(ident, marketplace_id), "marketplace_id": marketplace_id}],
        "manufacturer": text(ident.manufacturer),
        "model_number": [{"value": ident.model_number, "marketplace_id": marketplace_id}],
    }


def _measures(values: tuple[float, float, float, float], metric: bool) -> dict[str, Any]:
    height, length, width, weight = values
    if metric:
        length_unit, weight_unit, to_len, to_weight = "centimeters", "kilograms", 2.54, 0.45359237
    else:
        length_unit, weight_unit, to_len, to_weight = "inches", "pounds", 1.0, 1.0
    return {
        "height": {"unit": length_unit, "value": round(height * to_len, 2)},
        "length": {"unit": length_unit, "value": round(length * to_len, 2)},
        "weight": {"unit": weight_unit, "value": round(weight * to_weight, 2)},
        "width": {"unit": length_unit, "value": round(width * to_len, 2)},
    }


def _dimensions(ident: _Identity, marketplace_id: str, metric: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {"marketplaceId": marketplace_id}
    if ident.item_dims is not None:
        entry["item"] = _measures(ident.item_dims, metric)
    entry["package"] = _measures(ident.package_dims, metric)
    return entry


def _image_link(d: _Draws, label: str, large: bool) -> str:
    first = d.pick(label + "first", "6789" if large else "345")
    return f"https://m.media-amazon.com/images/I/{first}1{d.chars(label, 8, _IMAGE_CHARS)}L.jpg"


def _images(ident: _Identity) -> list[dict[str, Any]]:
    d = ident.draws
    if d.unit("images") < 0.05:  # ~5% of listings have no images
        return []
    images: list[dict[str, Any]] = []
    variants = ["MAIN"] + [f"PT{n:02d}" for n in range(1, d.integer("image_count", 2, 6) + 1)]
    for variant in variants:
        # Longest side and aspect ratio as Amazon listings commonly have them (square, 4:3, 3:2, portrait).
        longest = d.pick(variant + "width", (1000, 1500, 2000, 2560))
        ratio = d.pick(variant + "ratio", (1.0, 1.0, 0.75, 0.667, 1.333))
        width, height = (longest, round(longest * ratio)) if ratio <= 1 else (round(longest / ratio), longest)
        # MAIN always comes in two sizes; other variants sometimes only in the small one.
        if variant == "MAIN" or d.unit(variant + "large") < 0.7:
            images.append({"variant": variant, "link": _image_link(d, variant + "L", True), "height": height, "width": width})
        scale = 500 / max(width, height)
        images.append(
            {
                "variant": variant,
                "link": _image_link(d, variant + "S", False),
                "height": round(height * scale),
                "width": round(width * scale),
            }
        )
    return images


def _relationships(ident: _Identity) -> list[dict[str, Any]]:
    if ident.parent_asin is None:
        return []
    product = ident.product
    if product.sizes and product.colors:
        attributes, theme = ["color", "size"], "SIZE_NAME/COLOR_NAME"
    elif product.colors:
        attributes, theme = ["color"], "COLOR_NAME"
    else:
        attributes, theme = ["size"], "SIZE_NAME"
    return [
        {
            "type": "VARIATION",
            "parentAsins": [ident.parent_asin],
            "variationTheme": {"attributes": attributes, "theme": theme},
        }
    ]


def _sales_ranks(ident: _Identity, local: _Draws, marketplace_id: str, domain: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"marketplaceId": marketplace_id}
    roll = local.unit("ranks")
    if roll < 0.05:  # ~5%: not ranked at all
        return entry
    category, product = ident.category, ident.product
    # Log-uniform department rank between 1 and ~2 million.
    group_rank = int(10 ** local.between("group_rank", 0.0, 6.3))
    leaf_rank = max(1, int(group_rank / local.between("leaf_share", 8.0, 60.0)))
    base = f"http://www.{domain}/gp/bestsellers/{category.rank_slug}"
    ranks = [{"classificationId": product.leaf.id, "title": product.leaf.name, "link": f"{base}/{product.leaf.id}", "rank": leaf_rank}]
    if local.unit("second_rank") < 0.5:
        parent_rank = max(leaf_rank, int(leaf_rank * local.between("parent_share", 1.5, 6.0)))
        parent = product.parent
        ranks.append({"classificationId": parent.id, "title": parent.name, "link": f"{base}/{parent.id}", "rank": parent_rank})
    entry["classificationRanks"] = ranks
    if roll >= 0.15:  # ~10% (0.05..0.15) have classification ranks only
        entry["displayGroupRanks"] = [
            {"websiteDisplayGroup": category.display_group.id, "title": category.rank_title, "link": base, "rank": group_rank}
        ]
    return entry


def _summary(ident: _Identity, marketplace_id: str) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "marketplaceId": marketplace_id,
        "adultProduct": False,
        "autographed": False,
        "brand": ident.brand,
        "browseClassification": _node(ident.product.leaf),
    }
    if ident.color:
        summary["color"] = ident.color
    summary.update(
        {
            "itemClassification": ident.item_classification,
            "itemName": ident.title,
            "manufacturer": ident.manufacturer,
            "memorabilia": False,
            "modelNumber": ident.model_number,
            "packageQuantity": ident.package_quantity,
            "partNumber": ident.part_number,
        }
    )
    if ident.size:
        summary["size"] = ident.size
    summary.update(
        {
            "tradeInEligible": False,
            "websiteDisplayGroup": ident.category.display_group.id,
            "websiteDisplayGroupName": ident.category.display_group.name,
        }
    )
    return summary


_REPLENISHMENT = (
    (0.60, "BASIC_REPLENISHMENT"),
    (0.75, "PLANNED_REPLENISHMENT"),
    (0.85, "NEW_PRODUCT"),
    (0.90, "LIMITED_REPLENISHMENT"),
    (0.95, "NON_REPLENISHABLE"),
    (1.01, "OBSOLETE"),
)


def _vendor_details(ident: _Identity, marketplace_id: str) -> dict[str, Any]:
    d = ident.draws
    letters = "".join(ch for ch in ident.brand.upper() if ch.isalpha())
    code = (letters[:4] + "XXXX")[:4] + str(d.integer("vendor_code", 0, 9))
    roll = d.unit("replenishment")
    replenishment = next(name for limit, name in _REPLENISHMENT if roll < limit)
    category = ident.category.vendor_category
    return {
        "marketplaceId": marketplace_id,
        "brandCode": code,
        "manufacturerCode": code,
        "manufacturerCodeParent": code,
        "productCategory": {"displayName": category.name, "value": category.id},
        "productGroup": ident.category.vendor_group,
        "productSubcategory": {
            "displayName": ident.product.leaf.name,
            "value": category.id[:-2] + f"{ident.category.products.index(ident.product) + 1:02d}",
        },
        "replenishmentCategory": replenishment,
    }


# --------------------------------------------------------------------------- search support


@dataclass(frozen=True)
class Facets:
    """What searchCatalogItems needs to match, filter and refine an item without building it."""

    brand: str
    refinement: Node
    classification_ids: frozenset[str]
    category_key: str
    words: frozenset[str]  # lower-case words of the title, brand, product type and classifications


def _words(*texts: str) -> frozenset[str]:
    return frozenset(w for text in texts for w in re.split(r"[^a-z0-9]+", text.lower()) if w)


def facets(asin: str) -> Facets:
    """Search facets of an existing item (brand, refinement department, classification ids, words)."""
    asin = normalize_asin(asin)
    if asin == SANDBOX_ASIN:
        item = sandbox_item()
        summary = item["summaries"][0]
        ids: set[str] = set()
        node: dict[str, Any] | None = item["classifications"][0]["classifications"][0]
        names = []
        while node is not None:
            ids.add(node["classificationId"])
            names.append(node["displayName"])
            node = node.get("parent")
        refinement = Node("Electronics", "493964")  # as in the model's searchCatalogItems example
        return Facets(
            summary["brand"],
            refinement,
            frozenset(ids | {refinement.id}),
            "electronics",
            _words(summary["itemName"], summary["brand"], "tv television", *names),
        )
    ident = _identity(asin)
    category, product = ident.category, ident.product
    return Facets(
        ident.brand,
        category.refinement,
        frozenset({product.leaf.id, product.parent.id, category.root.id, category.refinement.id}),
        category.key,
        _words(ident.title, product.product_type.replace("_", " "), product.leaf.name, product.parent.name, category.root.name),
    )


def category_key(asin: str) -> str:
    """The department key ("kitchen", "electronics", ...) of a synthetic item."""
    return _identity(normalize_asin(asin)).category.key


# --------------------------------------------------------------------------- what other operations know of an item


@dataclass(frozen=True)
class Listing:
    """What the pricing, fees, restrictions and eligibility operations know of an item in one marketplace.

    Taken from the same data as its catalog item, so the four agree with the catalog: the list
    price and currency of `attributes.list_price`, the brand, product type, category and package
    of the item (package dimensions in inches and pounds, whatever the marketplace's units).
    """

    asin: str
    marketplace_id: str
    currency: str
    list_price: float
    brand: str
    product_type: str
    category: str
    package_quantity: int
    # height, length, width (inches) and weight (pounds) of the package
    package_dims: tuple[float, float, float, float]
    # Books (an ASIN that is an ISBN-10) are media: a closing fee applies.
    media: bool
    # Draws of its own per (ASIN, marketplace): `draws.unit("offers")` and so on, stable across runs.
    draws: _Draws


def listing(asin: str, marketplace_id: str, not_found_prefix: str = NOT_FOUND_PREFIX) -> Listing | None:
    """The item's listing facts in `marketplace_id`, or None where the catalog has no such item."""
    if not item_exists(asin, marketplace_id, not_found_prefix):
        return None
    asin = normalize_asin(asin)
    draws = _Draws(asin, marketplace_id, "listing")
    if asin == SANDBOX_ASIN:
        item = sandbox_item()
        price = item["attributes"]["list_price"][0]
        package = item["dimensions"][0]["package"]
        to_pounds = 2.20462262 if package["weight"]["unit"] == "kilograms" else 1.0
        dims = (package["height"]["value"], package["length"]["value"], package["width"]["value"], package["weight"]["value"] * to_pounds)
        return Listing(
            asin, marketplace_id, price["currency"], float(price["value"]), item["summaries"][0]["brand"],
            item["productTypes"][0]["productType"], "electronics", 1, dims, False, draws,
        )  # fmt: skip
    ident = _identity(asin)
    info = MARKETPLACE_INFO[marketplace_id]
    return Listing(
        asin=asin,
        marketplace_id=marketplace_id,
        currency=info.currency,
        list_price=_price(ident, marketplace_id),
        brand=ident.brand,
        product_type=ident.product.product_type,
        category=ident.category.key,
        package_quantity=ident.package_quantity,
        package_dims=ident.package_dims,
        media=is_isbn10(asin),
        draws=draws,
    )
