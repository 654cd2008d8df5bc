"""The ASIN service: single lookups and batches, every requested item answered exactly once.

A lookup first asks the result cache; only the ASINs it does not hold go to SP-API, and an ASIN
that another request in this process is already fetching is not fetched twice: the second
request waits for the first one's answer.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from services import errors
from services.cache import ResultCache
from services.catalog_item import product_facts
from services.errors import LookupFailure
from services.spapi import SEARCH_MAX_IDENTIFIERS, CallCount, SpApiClient
from utils.asins import InvalidAsin, normalize_asin
from utils.marketplaces import Marketplace, UnknownCountry, resolve_country

log = logging.getLogger(__name__)

Entry = dict[str, Any]


def resolve_marketplace(country: object) -> Marketplace:
    """The marketplace for a country code, or LookupFailure(INVALID_COUNTRY)."""
    try:
        return resolve_country(country)
    except UnknownCountry as exc:
        raise LookupFailure(errors.INVALID_COUNTRY, str(exc)) from None


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _failed(asin: object, marketplace: Marketplace | None, failure: LookupFailure, *, fetched: bool = True) -> Entry:
    error: dict[str, Any] = failure.as_error()
    if failure.retry_after is not None:
        error["retry_after_seconds"] = round(failure.retry_after, 1)
    return {
        "asin": asin,
        "country": marketplace.code if marketplace else None,
        "marketplace_id": marketplace.marketplace_id if marketplace else None,
        "success": False,
        "error": error,
        "cached": False,
        "fetched_at": _now_iso() if fetched else None,
    }


def _found(asin: str, marketplace: Marketplace, item: dict[str, Any]) -> Entry:
    return {
        "asin": asin,
        "country": marketplace.code,
        "marketplace_id": marketplace.marketplace_id,
        "success": True,
        **product_facts(item, marketplace),
        "cached": False,
        "fetched_at": _now_iso(),
    }


class InFlight:
    """The SP-API lookups under way in this process, by (marketplace, ASIN)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._futures: dict[tuple[str, str], Future[Entry]] = {}

    def claim(self, marketplace_id: str, asins: Iterable[str]) -> tuple[list[str], dict[str, Future[Entry]]]:
        """Split `asins` into those the caller must fetch (and later `settle`) and those being fetched already."""
        mine: list[str] = []
        theirs: dict[str, Future[Entry]] = {}
        with self._lock:
            for asin in asins:
                future = self._futures.get((marketplace_id, asin))
                if future is None:
                    self._futures[(marketplace_id, asin)] = Future()
                    mine.append(asin)
                else:
                    theirs[asin] = future
        return mine, theirs

    def settle(self, marketplace_id: str, entries: dict[str, Entry]) -> None:
        """Hand the fetched entries to every waiter and forget them."""
        with self._lock:
            futures = [(self._futures.pop((marketplace_id, asin), None), entry) for asin, entry in entries.items()]
        for future, entry in futures:
            if future is not None:
                future.set_result(entry)


class AsinService:
    """Looks ASINs up through the cache and SP-API: getCatalogItem for one, searchCatalogItems (20 a call) for many."""

    def __init__(
        self, spapi: SpApiClient, cache: ResultCache, *, max_workers: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._spapi = spapi
        self.cache = cache
        self._clock = clock
        self._inflight = InFlight()
        # Shared by all batches, so concurrent batches queue for MAX_WORKERS threads in total.
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="batch")

    def close(self) -> None:
        """Stop the batch pool after the running chunks finish; close the cache."""
        self._pool.shutdown(wait=True)
        self.cache.close()

    def lookup(self, asin: object, country: object, *, refresh: bool = False) -> Entry:
        """One ASIN's entry (success, or failure with its error); LookupFailure for a bad ASIN or country."""
        marketplace = resolve_marketplace(country)
        try:
            normalized = normalize_asin(asin)
        except InvalidAsin as exc:
            raise LookupFailure(errors.INVALID_ASIN, str(exc)) from None
        entries, _ = self._resolve(marketplace, [normalized], refresh, self._fetch_single_now)
        return entries[normalized]

    def failure_entry(self, asin: object, country: object, failure: LookupFailure) -> Entry:
        """The JSON entry for a lookup of `asin` in `country` refused before any fetch."""
        try:
            marketplace: Marketplace | None = resolve_country(country)
        except UnknownCountry:
            marketplace = None
        return _failed(asin, marketplace, failure, fetched=False)

    def batch_lookup(self, asins: list[Any], country: object, *, refresh: bool = False) -> dict[str, Any]:
        """Entries for every position of `asins`, in order; duplicates and cached ASINs fetched once or not at all."""
        marketplace = resolve_marketplace(country)
        started = self._clock()
        results: list[Entry | None] = [None] * len(asins)
        positions: dict[str, list[int]] = {}
        for index, raw in enumerate(asins):
            try:
                positions.setdefault(normalize_asin(raw), []).append(index)
            except InvalidAsin as exc:
                results[index] = _failed(raw, marketplace, LookupFailure(errors.INVALID_ASIN, str(exc)), fetched=False)

        entries, counts = self._resolve(marketplace, list(positions), refresh, self._fetch_chunks_in_pool)
        for asin, indexes in positions.items():
            for index in indexes:
                results[index] = entries[asin]

        answered = [entry for entry in results if entry is not None]
        assert len(answered) == len(asins), "every requested position is answered"
        successful = sum(1 for entry in answered if entry["success"])
        cached = sum(1 for asin in positions if entries[asin]["cached"])
        duration = self._clock() - started
        api_calls = sum(count.sent for count in counts)
        log.info(
            "batch %s: %d ASINs (%d unique, %d cached), %d ok, %d failed, %d SP-API calls, %.2fs",
            marketplace.code,
            len(asins),
            len(positions),
            cached,
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
            "cached": cached,
            "duration_seconds": round(duration, 3),
            "api_calls": api_calls,
        }

    # -- cache, in-flight sharing, SP-API ---------------------------------------------------

    def _resolve(
        self,
        marketplace: Marketplace,
        asins: list[str],
        refresh: bool,
        fetch: Callable[[Marketplace, list[str]], list[tuple[Future[dict[str, Entry]], CallCount]]],
    ) -> tuple[dict[str, Entry], list[CallCount]]:
        """Entries for distinct normalized `asins`: from the cache unless `refresh`, else fetched once per process."""
        marketplace_id = marketplace.marketplace_id
        entries = {} if refresh else self.cache.get_many(marketplace_id, asins)
        mine, theirs = self._inflight.claim(marketplace_id, [a for a in asins if a not in entries])
        if mine and not refresh:
            # Another request may have stored some of these between our cache read and our claim.
            late = self.cache.get_many(marketplace_id, mine, count=False)
            if late:
                entries.update(late)
                self._inflight.settle(marketplace_id, late)
                mine = [asin for asin in mine if asin not in late]
        started = fetch(marketplace, mine) if mine else []
        for future, _ in started:
            entries.update(future.result())
        for asin, future in theirs.items():
            entries[asin] = future.result()
        return entries, [count for _, count in started]

    def _fetch_chunks_in_pool(self, marketplace: Marketplace, asins: list[str]) -> list[tuple[Future[dict[str, Entry]], CallCount]]:
        chunks = [asins[i : i + SEARCH_MAX_IDENTIFIERS] for i in range(0, len(asins), SEARCH_MAX_IDENTIFIERS)]
        started = []
        for chunk in chunks:
            count = CallCount()
            # The chunk's log lines carry the request's id: run it in a copy of the request's context.
            context = contextvars.copy_context()
            started.append((self._pool.submit(context.run, self._settled, marketplace, chunk, count, self._search_chunk), count))
        return started

    def _fetch_single_now(self, marketplace: Marketplace, asins: list[str]) -> list[tuple[Future[dict[str, Entry]], CallCount]]:
        # One ASIN, in the request's own thread: getCatalogItem.
        count = CallCount()
        future: Future[dict[str, Entry]] = Future()
        future.set_result(self._settled(marketplace, asins, count, self._get_item))
        return [(future, count)]

    def _settled(
        self,
        marketplace: Marketplace,
        asins: list[str],
        count: CallCount,
        fetch: Callable[[Marketplace, list[str], CallCount], dict[str, Entry]],
    ) -> dict[str, Entry]:
        """Fetch `asins`, store what is worth keeping, and answer every waiter, whatever happens."""
        entries: dict[str, Entry] = {}
        try:
            entries = fetch(marketplace, asins, count)
        except Exception:  # a bug, not an SP-API answer: still answer every ASIN and every waiter
            log.exception("lookup of %d ASINs in %s failed", len(asins), marketplace.code)
        failure = LookupFailure(errors.UPSTREAM_ERROR, "The lookup failed inside the service; it has been logged")
        for asin in asins:
            entries.setdefault(asin, _failed(asin, marketplace, failure))
        try:
            self.cache.put_many(marketplace.marketplace_id, entries)
        finally:
            self._inflight.settle(marketplace.marketplace_id, entries)
        return entries

    def _get_item(self, marketplace: Marketplace, asins: list[str], count: CallCount) -> dict[str, Entry]:
        (asin,) = asins
        try:
            return {asin: _found(asin, marketplace, self._spapi.get_catalog_item(marketplace, asin, count))}
        except LookupFailure as failure:
            return {asin: _failed(asin, marketplace, failure)}

    def _search_chunk(self, marketplace: Marketplace, chunk: list[str], count: CallCount) -> dict[str, Entry]:
        """One searchCatalogItems lookup (plus pages) for up to 20 ASINs; an entry for each."""
        try:
            items = self._spapi.search_catalog_items(marketplace, chunk, count)
        except LookupFailure as failure:
            return {asin: _failed(asin, marketplace, failure) for asin in chunk}
        by_asin = {item.get("asin"): item for item in items if isinstance(item, dict)}
        entries: dict[str, Entry] = {}
        for asin in chunk:
            item = by_asin.get(asin)
            if item is None:
                failure = LookupFailure(errors.NOT_FOUND, f"ASIN {asin} not found in marketplace {marketplace.marketplace_id}")
                entries[asin] = _failed(asin, marketplace, failure)
            else:
                entries[asin] = _found(asin, marketplace, item)
        return entries
