"""searchCatalogItems: resolving identifiers and keywords to ASINs, stateless page tokens, refinements."""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import re
import threading
from collections import Counter, OrderedDict
from typing import Any

from emulator.catalog import SANDBOX_ASIN, SANDBOX_MARKETPLACE_ID, build_item, facets, item_exists, item_identifiers
from emulator.identifiers import asin_for_upc, asins_for_code, isbn10_for_isbn13, upc_for_asin
from emulator.params import InvalidInput, SearchRequest
from emulator.products import CATEGORIES

_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_STOPWORDS = frozenset({"a", "an", "and", "for", "in", "of", "the", "to", "with"})
# Keyword searches look at most this many candidate ASINs, so a filter nothing matches stays cheap.
_MAX_CANDIDATES = 5000


class IdentifierCache:
    """Bounded LRU of identifiers of items the emulator served, for UPCs that cannot be decoded."""

    def __init__(self, max_items: int = 100_000) -> None:
        self._max_items = max_items
        self._lock = threading.Lock()
        self._asins: OrderedDict[tuple[str, str], str] = OrderedDict()

    def remember(self, asin: str) -> None:
        """Index the identifiers of `asin` unless its UPC already decodes to it."""
        if asin == SANDBOX_ASIN or asin_for_upc(upc_for_asin(asin)) == asin:
            return
        with self._lock:
            for entry in item_identifiers(asin):
                key = (entry["identifierType"], entry["identifier"])
                self._asins[key] = asin
                self._asins.move_to_end(key)
            while len(self._asins) > self._max_items:
                self._asins.popitem(last=False)

    def lookup(self, identifier_type: str, identifier: str) -> str | None:
        """The ASIN last served with this identifier, if any."""
        with self._lock:
            return self._asins.get((identifier_type, identifier))


# --------------------------------------------------------------------------- page tokens


def encode_page_token(fingerprint: str, offset: int) -> str:
    """An opaque, stateless page token: urlsafe base64 of the query fingerprint and the offset."""
    raw = json.dumps({"q": fingerprint, "o": offset}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(token: str, fingerprint: str) -> int:
    """The offset a page token points at; InvalidInput if it is malformed or from another query."""
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput("Invalid value for parameter 'pageToken': malformed token.") from exc
    if not isinstance(data, dict) or not isinstance(data.get("o"), int) or data["o"] < 0:
        raise InvalidInput("Invalid value for parameter 'pageToken': malformed token.")
    if data.get("q") != fingerprint:
        raise InvalidInput("Invalid value for parameter 'pageToken': the token belongs to a different query.")
    return int(data["o"])


# --------------------------------------------------------------------------- identifiers


def _hash_order(asins: list[str]) -> list[str]:
    """Deterministic order unrelated to the request order, so clients cannot rely on it."""
    return sorted(dict.fromkeys(asins), key=lambda a: hashlib.sha256(f"order|{a}".encode()).hexdigest())


def _resolve_code(identifier_type: str, value: str, marketplace_id: str, prefix: str, cache: IdentifierCache) -> list[str]:
    candidates = [SANDBOX_ASIN] if marketplace_id == SANDBOX_MARKETPLACE_ID else []
    candidates.extend(asins_for_code(identifier_type, value))
    cached = cache.lookup(identifier_type, value)
    if cached:
        candidates.append(cached)
    # An ISBN search takes the ISBN-10 or its 978 ISBN-13; items list the ISBN-10.
    wanted = {value}
    if identifier_type == "ISBN":
        upper = value.upper()
        wanted = {upper, isbn10_for_isbn13(upper) or upper}
    found = []
    for asin in dict.fromkeys(candidates):
        if not item_exists(asin, marketplace_id, prefix):
            continue
        if any(entry["identifierType"] == identifier_type and entry["identifier"] in wanted for entry in item_identifiers(asin)):
            found.append(asin)
    return found


def _by_identifiers(request: SearchRequest, prefix: str, cache: IdentifierCache) -> list[str]:
    assert request.identifiers is not None
    found: list[str] = []
    if request.identifiers_type == "ASIN":
        found = [a for a in request.identifiers if item_exists(a, request.marketplace_id, prefix)]
    elif request.identifiers_type in ("UPC", "EAN", "GTIN", "ISBN", "JAN"):
        for value in request.identifiers:
            found.extend(_resolve_code(request.identifiers_type, value, request.marketplace_id, prefix, cache))
    # MINSAN: no emulated item carries one. SKU: the emulator has no seller listings.
    return _hash_order(found)


# --------------------------------------------------------------------------- keywords


def _tokens(keywords: tuple[str, ...]) -> frozenset[str]:
    words = {w for k in keywords for w in re.split(r"[^a-z0-9]+", k.lower()) if w}
    return frozenset(words - _STOPWORDS) or frozenset(words)


@functools.lru_cache(maxsize=1)
def _category_words() -> dict[str, frozenset[str]]:
    vocabulary: dict[str, frozenset[str]] = {}
    for category in CATEGORIES:
        texts = [category.root.name] + [brand for brand, _ in category.brands]
        for product in category.products:
            texts += [product.noun, product.product_type.replace("_", " "), product.leaf.name, product.parent.name]
            texts += list(product.qualifiers)
        vocabulary[category.key] = frozenset(w for t in texts for w in re.split(r"[^a-z0-9]+", t.lower()) if w) - _STOPWORDS
    return vocabulary


def _candidate(seed: str, index: int) -> str:
    digest = hashlib.sha256(f"{seed}|{index}".encode()).digest()
    return "B0" + "".join(_ALNUM[b % 36] for b in digest[:8])


@functools.lru_cache(maxsize=256)
def _keyword_asins(
    marketplace_id: str,
    tokens: frozenset[str],
    brand_names: frozenset[str],
    classification_ids: frozenset[str],
    prefix: str,
) -> tuple[str, ...]:
    query = " ".join(sorted(tokens))
    seed = hashlib.sha256(f"keywords|{marketplace_id}|{query}|{sorted(brand_names)}|{sorted(classification_ids)}".encode()).hexdigest()

    def accepted(asin: str) -> bool:
        item = facets(asin)
        if brand_names and item.brand.lower() not in brand_names:
            return False
        return not classification_ids or bool(item.classification_ids & classification_ids)

    results: list[str] = []
    sandbox_words = facets(SANDBOX_ASIN).words
    sandbox_hit = marketplace_id == SANDBOX_MARKETPLACE_ID and bool(tokens & sandbox_words)
    if sandbox_hit and item_exists(SANDBOX_ASIN, marketplace_id, prefix) and accepted(SANDBOX_ASIN):
        results.append(SANDBOX_ASIN)
        if tokens <= sandbox_words:
            # Like the model's sandbox answer for keywords=samsung,tv: the one matching item.
            return tuple(results)

    vocabulary = _category_words()
    relevant = {key for key, words in vocabulary.items() if tokens & words}
    count_roll = int(seed[:8], 16) / 16**8
    wanted = 12 + int(count_roll * 49) if relevant else int(count_roll * 9)
    scored: list[tuple[int, int, str]] = []
    for index in range(_MAX_CANDIDATES):
        if len(scored) >= wanted:
            break
        asin = _candidate(seed, index)
        if not item_exists(asin, marketplace_id, prefix) or not accepted(asin):
            continue
        item = facets(asin)
        score = len(tokens & item.words)
        if relevant and score == 0:
            continue
        scored.append((-score, index, asin))
    # Most matching words first; the scan order breaks ties.
    results.extend(asin for _, _, asin in sorted(scored))
    return tuple(results)


def _by_keywords(request: SearchRequest, prefix: str) -> list[str]:
    assert request.keywords is not None
    return list(
        _keyword_asins(
            request.marketplace_id,
            _tokens(request.keywords),
            frozenset(b.lower() for b in request.brand_names),
            frozenset(request.classification_ids),
            prefix,
        )
    )


# --------------------------------------------------------------------------- the answer


def _refinements(asins: list[str]) -> dict[str, Any]:
    brands: Counter[str] = Counter()
    classifications: Counter[tuple[str, str]] = Counter()
    for asin in asins:
        item = facets(asin)
        brands[item.brand] += 1
        classifications[(item.refinement.name, item.refinement.id)] += 1
    return {
        "brands": [{"numberOfResults": n, "brandName": brand} for brand, n in sorted(brands.items(), key=lambda kv: (-kv[1], kv[0]))],
        "classifications": [
            {"numberOfResults": n, "displayName": name, "classificationId": cid}
            for (name, cid), n in sorted(classifications.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
    }


def search(request: SearchRequest, page_size_cap: int, not_found_prefix: str, cache: IdentifierCache) -> tuple[dict[str, Any], list[str]]:
    """The ItemSearchResults body for a validated request, and the ASINs on the page; raises InvalidInput."""
    if request.identifiers is not None:
        asins = _by_identifiers(request, not_found_prefix, cache)
    else:
        asins = _by_keywords(request, not_found_prefix)
    fingerprint = request.fingerprint()
    offset = decode_page_token(request.page_token, fingerprint) if request.page_token else 0
    if offset and offset >= len(asins):
        raise InvalidInput("Invalid value for parameter 'pageToken': the token points past the last result.")
    size = min(request.page_size, page_size_cap)
    page = asins[offset : offset + size]

    body: dict[str, Any] = {"numberOfResults": len(asins)}
    pagination: dict[str, str] = {}
    if offset + size < len(asins):
        pagination["nextToken"] = encode_page_token(fingerprint, offset + size)
    if offset > 0:
        pagination["previousToken"] = encode_page_token(fingerprint, max(0, offset - size))
    if pagination:
        body["pagination"] = pagination
    body["refinements"] = _refinements(asins)
    items = [build_item(asin, request.marketplace_id, request.included_data, not_found_prefix) for asin in page]
    body["items"] = [item for item in items if item is not None]
    return body, page
