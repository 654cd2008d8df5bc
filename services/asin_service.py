"""The ASIN service: single lookups and batches, every requested item answered exactly once."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from services import errors
from services.catalog_item import product_facts
from services.errors import LookupFailure
from services.spapi import SEARCH_MAX_IDENTIFIERS, CallCount, SpApiClient
from utils.asins import InvalidAsin, normalize_asin
from utils.marketplaces import Marketplace, UnknownCountry, resolve_country

log = logging.getLogger(__name__)


def resolve_marketplace(country: object) -> Marketplace:
    """The marketplace for a country code, or LookupFailure(INVALID_COUNTRY)."""
    try:
        return resolve_country(country)
    except UnknownCountry as exc:
        raise LookupFailure(errors.INVALID_COUNTRY, str(exc)) from None


def _failed(asin: object, marketplace: Marketplace | None, failure: LookupFailure) -> dict[str, Any]:
    return {
        "asin": asin,
        "country": marketplace.code if marketplace else None,
        "marketplace_id": marketplace.marketplace_id if marketplace else None,
        "success": False,
        "error": failure.as_error(),
    }


def _found(asin: str, marketplace: Marketplace, item: dict[str, Any]) -> dict[str, Any]:
    return {
        "asin": asin,
        "country": marketplace.code,
        "marketplace_id": marketplace.marketplace_id,
        "success": True,
        **product_facts(item, marketplace),
    }


class AsinService:
    """Looks ASINs up through SP-API: getCatalogItem for one, searchCatalogItems (20 a call) for many."""

    def __init__(self, spapi: SpApiClient, *, max_workers: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._spapi = spapi
        self._clock = clock
        # Shared by all batches, so concurrent batches queue for MAX_WORKERS threads in total.
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="batch")

    def close(self) -> None:
        """Stop the batch pool after the running chunks finish."""
        self._pool.shutdown(wait=True)

    def lookup(self, asin: object, country: object) -> dict[str, Any]:
        """One ASIN's facts; raises LookupFailure (carrying its code and HTTP status)."""
        marketplace = resolve_marketplace(country)
        try:
            normalized = normalize_asin(asin)
        except InvalidAsin as exc:
            raise LookupFailure(errors.INVALID_ASIN, str(exc)) from None
        item = self._spapi.get_catalog_item(marketplace, normalized)
        return _found(normalized, marketplace, item)

    def failure_entry(self, asin: object, country: object, failure: LookupFailure) -> dict[str, Any]:
        """The JSON entry for a failed lookup of `asin` in `country`."""
        try:
            marketplace: Marketplace | None = resolve_country(country)
        except UnknownCountry:
            marketplace = None
        return _failed(asin, marketplace, failure)

    def batch_lookup(self, asins: list[Any], country: object) -> dict[str, Any]:
        """Facts for every position of `asins`, in order; duplicates fetched once, 20 ASINs a call."""
        marketplace = resolve_marketplace(country)
        started = self._clock()
        results: list[dict[str, Any] | None] = [None] * len(asins)
        positions: dict[str, list[int]] = {}
        for index, raw in enumerate(asins):
            try:
                positions.setdefault(normalize_asin(raw), []).append(index)
            except InvalidAsin as exc:
                results[index] = _failed(raw, marketplace, LookupFailure(errors.INVALID_ASIN, str(exc)))

        unique = list(positions)
        chunks = [unique[i : i + SEARCH_MAX_IDENTIFIERS] for i in range(0, len(unique), SEARCH_MAX_IDENTIFIERS)]
        counts = [CallCount() for _ in chunks]
        futures = [self._pool.submit(self._fetch_chunk, marketplace, chunk, count) for chunk, count in zip(chunks, counts, strict=True)]
        for future in futures:
            for asin, entry in future.result().items():
                for index in positions[asin]:
                    results[index] = entry

        answered = [entry for entry in results if entry is not None]
        assert len(answered) == len(asins), "every requested position is answered"
        successful = sum(1 for entry in answered if entry["success"])
        duration = self._clock() - started
        api_calls = sum(count.sent for count in counts)
        log.info(
            "batch %s: %d ASINs (%d unique) in %d chunks, %d ok, %d failed, %d SP-API calls, %.2fs",
            marketplace.code,
            len(asins),
            len(unique),
            len(chunks),
            successful,
            len(asins) - successful,
            api_calls,
            duration,
        )
        return {
            "country": marketplace.code,
            "marketplace_id": marketplace.marketplace_id,
            "results": answered,
            "total_requested": len(asins),
            "successful": successful,
            "failed": len(asins) - successful,
            "success_rate": f"{100 * successful / len(asins):.1f}%" if asins else "0.0%",
            "duration_seconds": round(duration, 3),
            "api_calls": api_calls,
        }

    def _fetch_chunk(self, marketplace: Marketplace, chunk: list[str], count: CallCount) -> dict[str, dict[str, Any]]:
        """One searchCatalogItems lookup (plus pages) for up to 20 ASINs; an entry for each."""
        try:
            items = self._spapi.search_catalog_items(marketplace, chunk, count)
        except LookupFailure as failure:
            return {asin: _failed(asin, marketplace, failure) for asin in chunk}
        by_asin = {item.get("asin"): item for item in items if isinstance(item, dict)}
        entries: dict[str, dict[str, Any]] = {}
        for asin in chunk:
            item = by_asin.get(asin)
            if item is None:
                failure = LookupFailure(errors.NOT_FOUND, f"ASIN {asin} not found in marketplace {marketplace.marketplace_id}")
                entries[asin] = _failed(asin, marketplace, failure)
            else:
                entries[asin] = _found(asin, marketplace, item)
        return entries
