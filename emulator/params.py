"""Parameter validation (InvalidInput): the catalog operations' query parameters (2022-04-01 model), and shared helpers."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Protocol

from emulator.catalog import DEFAULT_INCLUDED_DATA, INCLUDED_DATA_VALUES, MARKETPLACE_IDS, is_valid_asin, normalize_asin

# searchCatalogItems limits from the model: identifiers maxItems 20, keywords maxItems 20,
# marketplaceIds maxItems 1, pageSize maximum 20 (default 10).
MAX_IDENTIFIERS = 20
MAX_KEYWORDS = 20
MAX_SEARCH_MARKETPLACES = 1
MAX_PAGE_SIZE = 20
DEFAULT_PAGE_SIZE = 10
IDENTIFIER_TYPES = ("ASIN", "EAN", "GTIN", "ISBN", "JAN", "MINSAN", "SKU", "UPC")
# The model: brandNames, classificationIds and keywordsLocale "cannot be used with identifiers".
_KEYWORD_ONLY = ("brandNames", "classificationIds", "keywordsLocale")


class InvalidInput(Exception):
    """A parameter is missing or invalid: the call answers 400 InvalidInput with this message."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class QueryArgs(Protocol):
    """The part of werkzeug's MultiDict the parsers use."""

    def getlist(self, key: str) -> list[str]: ...

    def get(self, key: str, default: str | None = None) -> str | None: ...


def csv_param(args: QueryArgs, name: str) -> list[str] | None:
    """A comma-delimited array parameter (repeated parameters are accepted too); None when absent."""
    raw = args.getlist(name)
    if not raw:
        return None
    values = [part.strip() for value in raw for part in value.split(",")]
    return [value for value in values if value]


def _marketplaces(args: QueryArgs, max_items: int | None) -> tuple[str, ...]:
    values = csv_param(args, "marketplaceIds")
    if not values:
        raise InvalidInput("Missing required parameter 'marketplaceIds'.")
    unique = tuple(dict.fromkeys(values))
    if max_items is not None and len(unique) > max_items:
        raise InvalidInput(f"Parameter 'marketplaceIds' accepts at most {max_items} value(s); {len(unique)} were given.")
    for marketplace_id in unique:
        if marketplace_id not in MARKETPLACE_IDS:
            raise InvalidInput(f"Invalid value '{marketplace_id}' for parameter 'marketplaceIds': not a marketplace identifier.")
    return unique


def _included_data(args: QueryArgs) -> tuple[str, ...]:
    values = csv_param(args, "includedData")
    if not values:
        return DEFAULT_INCLUDED_DATA
    for value in values:
        if value not in INCLUDED_DATA_VALUES:
            raise InvalidInput(f"Invalid value '{value}' for parameter 'includedData'; allowed values: {', '.join(INCLUDED_DATA_VALUES)}.")
    return tuple(dict.fromkeys(values))


@dataclass(frozen=True)
class ItemRequest:
    """A validated getCatalogItem call."""

    asin: str
    marketplace_ids: tuple[str, ...]
    included_data: tuple[str, ...]
    locale: str | None


def parse_item_request(asin: str, args: QueryArgs) -> ItemRequest:
    """Validate getCatalogItem's path and query parameters; raises InvalidInput."""
    if not is_valid_asin(asin):
        raise InvalidInput(f"Invalid value '{asin}' for parameter 'asin': an ASIN is 10 letters or digits.")
    return ItemRequest(
        asin=normalize_asin(asin),
        marketplace_ids=_marketplaces(args, None),
        included_data=_included_data(args),
        locale=args.get("locale") or None,
    )


@dataclass(frozen=True)
class SearchRequest:
    """A validated searchCatalogItems call."""

    marketplace_id: str
    identifiers: tuple[str, ...] | None
    identifiers_type: str | None
    keywords: tuple[str, ...] | None
    brand_names: tuple[str, ...]
    classification_ids: tuple[str, ...]
    included_data: tuple[str, ...]
    page_size: int
    page_token: str | None
    seller_id: str | None

    def fingerprint(self) -> str:
        """Identifies the query (not the page, page size or datasets) so page tokens can be checked."""
        query = {
            "m": self.marketplace_id,
            "i": sorted(set(self.identifiers)) if self.identifiers is not None else None,
            "t": self.identifiers_type,
            "k": sorted({w for k in self.keywords for w in re.split(r"[^a-z0-9]+", k.lower()) if w}) if self.keywords is not None else None,
            "b": sorted({b.lower() for b in self.brand_names}),
            "c": sorted(set(self.classification_ids)),
            "s": self.seller_id,
        }
        return hashlib.sha256(json.dumps(query, sort_keys=True).encode()).hexdigest()[:16]


def _page_size(args: QueryArgs) -> int:
    raw = args.get("pageSize")
    if raw is None or raw.strip() == "":
        return DEFAULT_PAGE_SIZE
    try:
        value = int(raw.strip())
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_PAGE_SIZE:
        raise InvalidInput(f"Invalid value '{raw}' for parameter 'pageSize': must be an integer from 1 to {MAX_PAGE_SIZE}.")
    return value


def parse_search_request(args: QueryArgs) -> SearchRequest:
    """Validate searchCatalogItems' query parameters; raises InvalidInput."""
    marketplace_id = _marketplaces(args, MAX_SEARCH_MARKETPLACES)[0]
    included_data = _included_data(args)
    identifiers = csv_param(args, "identifiers") or None
    keywords = csv_param(args, "keywords") or None
    if identifiers and keywords:
        raise InvalidInput("Parameters 'identifiers' and 'keywords' cannot be used in the same request.")
    if not identifiers and not keywords:
        raise InvalidInput("Either parameter 'identifiers' or parameter 'keywords' is required.")

    identifiers_type = (args.get("identifiersType") or "").strip() or None
    seller_id = (args.get("sellerId") or "").strip() or None
    if identifiers:
        if len(identifiers) > MAX_IDENTIFIERS:
            raise InvalidInput(f"Parameter 'identifiers' accepts at most {MAX_IDENTIFIERS} values; {len(identifiers)} were given.")
        if identifiers_type is None:
            raise InvalidInput("Parameter 'identifiersType' is required when 'identifiers' is given.")
        if identifiers_type not in IDENTIFIER_TYPES:
            raise InvalidInput(
                f"Invalid value '{identifiers_type}' for parameter 'identifiersType'; allowed values: {', '.join(IDENTIFIER_TYPES)}."
            )
        if identifiers_type == "SKU" and seller_id is None:
            raise InvalidInput("Parameter 'sellerId' is required when 'identifiersType' is SKU.")
        for name in _KEYWORD_ONLY:
            if csv_param(args, name):
                raise InvalidInput(f"Parameter '{name}' cannot be used with 'identifiers'.")
        if identifiers_type == "ASIN":
            identifiers = [normalize_asin(value) for value in identifiers]
    else:
        assert keywords is not None
        if len(keywords) > MAX_KEYWORDS:
            raise InvalidInput(f"Parameter 'keywords' accepts at most {MAX_KEYWORDS} values; {len(keywords)} were given.")

    return SearchRequest(
        marketplace_id=marketplace_id,
        identifiers=tuple(identifiers) if identifiers else None,
        identifiers_type=identifiers_type if identifiers else None,
        keywords=tuple(keywords) if keywords else None,
        brand_names=tuple(csv_param(args, "brandNames") or ()),
        classification_ids=tuple(csv_param(args, "classificationIds") or ()),
        included_data=included_data,
        page_size=_page_size(args),
        page_token=(args.get("pageToken") or "").strip() or None,
        seller_id=seller_id,
    )


# --------------------------------------------------------------------------- helpers for the other operations


def marketplace_ids_param(args: QueryArgs, max_items: int | None = None) -> tuple[str, ...]:
    """The required `marketplaceIds` query parameter: known marketplaces, each once, at most `max_items`; raises InvalidInput."""
    return _marketplaces(args, max_items)


def asin_param(value: str | None, name: str) -> str:
    """A required ASIN parameter `name`, normalised (trimmed, upper-case); raises InvalidInput naming `name`."""
    if value is None or not value.strip():
        raise InvalidInput(f"Missing required parameter '{name}'.")
    if not is_valid_asin(value):
        raise InvalidInput(f"Invalid value '{value}' for parameter '{name}': an ASIN is 10 letters or digits.")
    return normalize_asin(value)


def enum_param(value: str | None, name: str, allowed: tuple[str, ...]) -> str | None:
    """An optional parameter `name` that must be one of `allowed` (exactly, case-sensitive); None when absent."""
    if value is None or value == "":
        return None
    if value not in allowed:
        raise InvalidInput(f"Invalid value '{value}' for parameter '{name}'; allowed values: {', '.join(allowed)}.")
    return value
