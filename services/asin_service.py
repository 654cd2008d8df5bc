"""The ASIN service: single lookups and batches, every requested item answered exactly once.

A lookup first asks the result cache; only the ASINs it does not hold go to SP-API, and an ASIN
that another request in this process is already fetching is not fetched twice: the second
request waits for the first one's answer. Batches of UPC/EAN/GTIN/ISBN/JAN codes go the same way,
keyed "UPC:887276302195" and so on, each answered by the best-ranked of the ASINs it maps to.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, cast

from services import errors
from services.cache import ResultCache
from services.dataset_fetch import DatasetFetcher, DatasetRequest, PendingDatasets
from services.entries import LookupEntry, failed_entry, found_entry, identifier_failed_entry, identifier_matched_entry
from services.errors import ServiceError
from services.spapi import SEARCH_MAX_IDENTIFIERS, CallCount, SpApiClient
from utils.asins import InvalidAsin, normalize_asin
from utils.identifiers import InvalidIdentifier, gtin14, normalize_identifier, normalize_identifier_type
from utils.marketplaces import Marketplace, UnknownCountry, resolve_country

log = logging.getLogger(__name__)

# Fetches the keys it is given in chunks; one (future of {key: entry}, calls sent) per chunk started.
Fetch = Callable[[Marketplace, list[str]], list[tuple[Future[dict[str, LookupEntry]], CallCount]]]
# Looks one chunk up: {key: entry} for the keys it can answer.
ChunkFetch = Callable[[Marketplace, list[str], CallCount], dict[str, LookupEntry]]
# The entry for a key whose lookup failed.
FailedEntry = Callable[[str, Marketplace, ServiceError], LookupEntry]


def resolve_marketplace(country: object) -> Marketplace:
    """The marketplace for a country code, or ServiceError(INVALID_COUNTRY)."""
    try:
        return resolve_country(country)
    except UnknownCountry as exc:
        raise ServiceError(errors.INVALID_COUNTRY, str(exc)) from None


def identifier_key(identifier_type: str, identifier: str) -> str:
    """The cache and in-flight key of a normalized identifier, e.g. "UPC:887276302195" (never an ASIN: those have no colon)."""
    return f"{identifier_type}:{identifier}"


def _split_key(key: str) -> tuple[str, str]:
    identifier_type, _, identifier = key.partition(":")
    return identifier_type, identifier


def _identifier_key_failed(key: str, marketplace: Marketplace, failure: ServiceError) -> LookupEntry:
    identifier_type, identifier = _split_key(key)
    return identifier_failed_entry(identifier, identifier_type, marketplace, failure)


class InFlight:
    """The SP-API lookups under way in this process, by (marketplace, ASIN)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._futures: dict[tuple[str, str], Future[LookupEntry]] = {}

    def claim(self, marketplace_id: str, asins: Iterable[str]) -> tuple[list[str], dict[str, Future[LookupEntry]]]:
        """Split `asins` into those the caller must fetch (and later `settle`) and those being fetched already."""
        mine: list[str] = []
        theirs: dict[str, Future[LookupEntry]] = {}
        with self._lock:
            for asin in asins:
                future = self._futures.get((marketplace_id, asin))
                if future is None:
                    self._futures[(marketplace_id, asin)] = Future()
                    mine.append(asin)
                else:
                    theirs[asin] = future
        return mine, theirs

    def settle(self, marketplace_id: str, entries: dict[str, LookupEntry]) -> None:
        """Hand the fetched entries to every waiter and forget them."""
        with self._lock:
            futures = [(self._futures.pop((marketplace_id, asin), None), entry) for asin, entry in entries.items()]
        for future, entry in futures:
            if future is not None:
                future.set_result(entry)


class AsinService:
    """Looks ASINs up through the cache and SP-API: getCatalogItem for one, searchCatalogItems (20 a call) for many."""

    def __init__(
        self,
        spapi: SpApiClient,
        cache: ResultCache,
        *,
        max_workers: int,
        datasets: DatasetFetcher | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._spapi = spapi
        self.cache = cache
        self._datasets = datasets
        self._clock = clock
        self._inflight = InFlight()
        # Shared by all batches, so concurrent batches queue for MAX_WORKERS threads in total.
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="batch")

    def close(self) -> None:
        """Stop the batch pool after the running chunks finish; close the cache."""
        self._pool.shutdown(wait=True)
        if self._datasets is not None:
            self._datasets.close()
        self.cache.close()

    def lookup(self, asin: object, country: object, *, refresh: bool = False, datasets: DatasetRequest | None = None) -> LookupEntry:
        """One ASIN's entry (success, or failure with its error), with the `datasets` asked for; ServiceError for a bad ASIN or country."""
        marketplace = resolve_marketplace(country)
        try:
            normalized = normalize_asin(asin)
        except InvalidAsin as exc:
            raise ServiceError(errors.INVALID_ASIN, str(exc)) from None
        pending = self._start_datasets(marketplace, [normalized], datasets)
        entries, _ = self._resolve(marketplace, [normalized], refresh, self._fetch_single_now)
        self._add_datasets(entries, pending)
        return entries[normalized]

    def failure_entry(self, asin: object, country: object, failure: ServiceError) -> LookupEntry:
        """The JSON entry for a lookup of `asin` in `country` refused before any fetch."""
        try:
            marketplace: Marketplace | None = resolve_country(country)
        except UnknownCountry:
            marketplace = None
        return failed_entry(asin, marketplace, failure, fetched=False)

    def batch_lookup(
        self, asins: list[Any], country: object, *, refresh: bool = False, datasets: DatasetRequest | None = None
    ) -> dict[str, Any]:
        """Entries for every position of `asins`, in order; duplicates and cached ASINs fetched once or not at all.

        The `datasets` asked for are fetched beside the catalog lookup, for every valid ASIN; an ASIN
        the catalog does not find carries none.
        """
        marketplace = resolve_marketplace(country)
        started = self._clock()
        results: list[LookupEntry | None] = [None] * len(asins)
        positions: dict[str, list[int]] = {}
        for index, raw in enumerate(asins):
            try:
                positions.setdefault(normalize_asin(raw), []).append(index)
            except InvalidAsin as exc:
                results[index] = failed_entry(raw, marketplace, ServiceError(errors.INVALID_ASIN, str(exc)), fetched=False)

        pending = self._start_datasets(marketplace, list(positions), datasets)
        entries, counts = self._resolve(marketplace, list(positions), refresh, self._fetch_chunks_in_pool)
        counts.append(self._add_datasets(entries, pending))
        for asin, indexes in positions.items():
            for index in indexes:
                results[index] = entries[asin]
        return self._batch_answer("batch", "ASINs", marketplace, asins, results, positions, entries, counts, started)

    def lookup_list(
        self, values: list[Any], identifier_type: str, country: object, *, refresh: bool = False, datasets: DatasetRequest | None = None
    ) -> list[LookupEntry]:
        """Entries for `values` in order: ASINs (`identifier_type` "ASIN") or codes of a type batch_lookup_identifiers takes."""
        if identifier_type == "ASIN":
            return self.batch_lookup(values, country, refresh=refresh, datasets=datasets)["results"]
        return self.batch_lookup_identifiers(values, identifier_type, country, refresh=refresh, datasets=datasets)["results"]

    def batch_lookup_identifiers(
        self,
        identifiers: list[Any],
        identifier_type: object,
        country: object,
        *,
        refresh: bool = False,
        datasets: DatasetRequest | None = None,
    ) -> dict[str, Any]:
        """batch_lookup for UPC/EAN/GTIN/ISBN/JAN codes: each position answered by its best-ranked ASIN, with every match.

        The `datasets` asked for are those of each code's best-ranked ASIN, fetched once the codes are resolved.

        A code that is not valid (length, check digit) is an INVALID_IDENTIFIER entry and costs no
        SP-API call; a bad `identifier_type` or country refuses the whole batch (ServiceError).
        """
        marketplace = resolve_marketplace(country)
        try:
            kind = normalize_identifier_type(identifier_type)
        except InvalidIdentifier as exc:
            raise ServiceError(errors.INVALID_IDENTIFIER, str(exc)) from None
        started = self._clock()
        results: list[LookupEntry | None] = [None] * len(identifiers)
        positions: dict[str, list[int]] = {}
        for index, raw in enumerate(identifiers):
            try:
                positions.setdefault(identifier_key(kind, normalize_identifier(raw, kind)), []).append(index)
            except InvalidIdentifier as exc:
                failure = ServiceError(errors.INVALID_IDENTIFIER, str(exc))
                results[index] = identifier_failed_entry(raw, kind, marketplace, failure, fetched=False)

        fetch = self._in_pool(functools.partial(self._search_identifier_chunk, kind), _identifier_key_failed)
        entries, counts = self._resolve(marketplace, list(positions), refresh, fetch)
        matched = [entry["asin"] for entry in entries.values() if entry["success"]]
        counts.append(self._add_datasets(entries, self._start_datasets(marketplace, matched, datasets)))
        for key, indexes in positions.items():
            for index in indexes:
                results[index] = entries[key]
        return self._batch_answer(
            "identifier batch", f"{kind} codes", marketplace, identifiers, results, positions, entries, counts, started
        )

    def _batch_answer(
        self,
        label: str,
        kind: str,
        marketplace: Marketplace,
        requested: list[Any],
        results: list[LookupEntry | None],
        positions: dict[str, list[int]],
        entries: dict[str, LookupEntry],
        counts: list[CallCount],
        started: float,
    ) -> dict[str, Any]:
        """The batch answer (and its log line) once every position has its entry."""
        answered = [entry for entry in results if entry is not None]
        assert len(answered) == len(requested), "every requested position is answered"
        successful = sum(1 for entry in answered if entry["success"])
        cached = sum(1 for key in positions if entries[key]["cached"])
        duration = self._clock() - started
        api_calls = sum(count.sent for count in counts)
        log.info(
            "%s %s: %d %s (%d unique, %d cached), %d ok, %d failed, %d SP-API calls, %.2fs",
            label,
            marketplace.code,
            len(requested),
            kind,
            len(positions),
            cached,
            successful,
            len(requested) - successful,
            api_calls,
            duration,
        )
        return {
            "country": marketplace.code,
            "marketplace_id": marketplace.marketplace_id,
            "results": answered,
            "total_requested": len(requested),
            "successful": successful,
            "failed": len(requested) - successful,
            "success_rate": f"{100 * successful / len(requested):.1f}%" if requested else "0.0%",
            "cached": cached,
            "duration_seconds": round(duration, 3),
            "api_calls": api_calls,
        }

    # -- datasets, cache, in-flight sharing, SP-API -------------------------------------------

    def _start_datasets(self, marketplace: Marketplace, asins: list[str], wanted: DatasetRequest | None) -> PendingDatasets | None:
        if wanted is None or not wanted.include or not asins:
            return None
        if self._datasets is None:
            raise ServiceError(errors.INVALID_REQUEST, "This service fetches no datasets")
        return self._datasets.start(marketplace, asins, wanted)

    @staticmethod
    def _add_datasets(entries: dict[str, LookupEntry], pending: PendingDatasets | None) -> CallCount:
        """Replace each found entry of `entries` by a copy carrying its ASIN's datasets; the SP-API calls they took."""
        if pending is None:
            return CallCount()
        found, calls = pending.result()
        for key, entry in entries.items():
            if entry["success"] and entry["asin"] in found:
                # A copy: the entry itself may be the cache's or another request's.
                entries[key] = cast(LookupEntry, {**entry, **found[entry["asin"]]})
        return CallCount(sent=calls)

    def _resolve(
        self, marketplace: Marketplace, keys: list[str], refresh: bool, fetch: Fetch
    ) -> tuple[dict[str, LookupEntry], list[CallCount]]:
        """Entries for distinct `keys` (ASINs or identifier keys): from the cache unless `refresh`, else fetched once per process."""
        marketplace_id = marketplace.marketplace_id
        entries = {} if refresh else self.cache.get_many(marketplace_id, keys)
        mine, theirs = self._inflight.claim(marketplace_id, [k for k in keys if k not in entries])
        if mine and not refresh:
            # Another request may have stored some of these between our cache read and our claim.
            late = self.cache.get_many(marketplace_id, mine, count=False)
            if late:
                entries.update(late)
                self._inflight.settle(marketplace_id, late)
                mine = [key for key in mine if key not in late]
        started = fetch(marketplace, mine) if mine else []
        for future, _ in started:
            entries.update(future.result())
        for key, future in theirs.items():
            entries[key] = future.result()
        return entries, [count for _, count in started]

    def _fetch_chunks_in_pool(self, marketplace: Marketplace, asins: list[str]) -> list[tuple[Future[dict[str, LookupEntry]], CallCount]]:
        return self._in_pool(self._search_chunk, failed_entry)(marketplace, asins)

    def _in_pool(self, search: ChunkFetch, failed: FailedEntry) -> Fetch:
        """A fetch that looks keys up 20 a call (SP-API searchCatalogItems' limit) in the batch pool."""

        def fetch(marketplace: Marketplace, keys: list[str]) -> list[tuple[Future[dict[str, LookupEntry]], CallCount]]:
            started = []
            for i in range(0, len(keys), SEARCH_MAX_IDENTIFIERS):
                chunk = keys[i : i + SEARCH_MAX_IDENTIFIERS]
                count = CallCount()
                # The chunk's log lines carry the request's id: run it in a copy of the request's context.
                context = contextvars.copy_context()
                started.append((self._pool.submit(context.run, self._settled, marketplace, chunk, count, search, failed), count))
            return started

        return fetch

    def _fetch_single_now(self, marketplace: Marketplace, asins: list[str]) -> list[tuple[Future[dict[str, LookupEntry]], CallCount]]:
        # One ASIN, in the request's own thread: getCatalogItem.
        count = CallCount()
        future: Future[dict[str, LookupEntry]] = Future()
        future.set_result(self._settled(marketplace, asins, count, self._get_item))
        return [(future, count)]

    def _settled(
        self,
        marketplace: Marketplace,
        keys: list[str],
        count: CallCount,
        fetch: ChunkFetch,
        failed: FailedEntry = failed_entry,
    ) -> dict[str, LookupEntry]:
        """Fetch `keys`, store what is worth keeping, and answer every waiter, whatever happens."""
        entries: dict[str, LookupEntry] = {}
        try:
            entries = fetch(marketplace, keys, count)
        except Exception:  # a bug, not an SP-API answer: still answer every key and every waiter
            log.exception("lookup of %d keys in %s failed", len(keys), marketplace.code)
        failure = ServiceError(errors.UPSTREAM_ERROR, "The lookup failed inside the service; it has been logged")
        for key in keys:
            entries.setdefault(key, failed(key, marketplace, failure))
        try:
            self.cache.put_many(marketplace.marketplace_id, entries)
        except Exception:  # a bug in the cache (it logs and survives its backend's failures): the answers stand
            log.exception("storing %d entries of %s in the result cache failed", len(entries), marketplace.code)
        finally:
            self._inflight.settle(marketplace.marketplace_id, entries)
        return entries

    def _get_item(self, marketplace: Marketplace, asins: list[str], count: CallCount) -> dict[str, LookupEntry]:
        (asin,) = asins
        try:
            return {asin: found_entry(asin, marketplace, self._spapi.get_catalog_item(marketplace, asin, count))}
        except ServiceError as failure:
            return {asin: failed_entry(asin, marketplace, failure)}

    def _search_chunk(self, marketplace: Marketplace, chunk: list[str], count: CallCount) -> dict[str, LookupEntry]:
        """One searchCatalogItems lookup (plus pages) for up to 20 ASINs; an entry for each."""
        try:
            items = self._spapi.search_catalog_items(marketplace, chunk, count)
        except ServiceError as failure:
            return {asin: failed_entry(asin, marketplace, failure) for asin in chunk}
        by_asin = {item.get("asin"): item for item in items if isinstance(item, dict)}
        entries: dict[str, LookupEntry] = {}
        for asin in chunk:
            item = by_asin.get(asin)
            if item is None:
                failure = ServiceError(errors.NOT_FOUND, f"ASIN {asin} not found in marketplace {marketplace.marketplace_id}")
                entries[asin] = failed_entry(asin, marketplace, failure)
            else:
                entries[asin] = found_entry(asin, marketplace, item)
        return entries

    def _search_identifier_chunk(
        self, identifier_type: str, marketplace: Marketplace, keys: list[str], count: CallCount
    ) -> dict[str, LookupEntry]:
        """One searchCatalogItems lookup (plus pages) for up to 20 identifiers of one type; an entry for each key."""
        identifiers = [_split_key(key)[1] for key in keys]
        try:
            items = self._spapi.search_catalog_items_by_identifiers(marketplace, identifiers, identifier_type, count)
        except ServiceError as failure:
            return {key: _identifier_key_failed(key, marketplace, failure) for key in keys}
        products: dict[str, LookupEntry] = {}
        for item in items:
            if isinstance(item, dict) and isinstance(item.get("asin"), str) and item["asin"] not in products:
                products[item["asin"]] = found_entry(item["asin"], marketplace, item)
        # Which requested code each item answers: compare GTIN-14s, so an ISBN-10 finds the item listing its ISBN-13 too.
        wanted: dict[str | None, list[str]] = {}
        for key, identifier in zip(keys, identifiers, strict=True):
            wanted.setdefault(gtin14(identifier, identifier_type), []).append(key)
        found: dict[str, list[LookupEntry]] = {key: [] for key in keys}
        unattributed = 0
        for entry in products.values():
            codes = {gtin14(code, kind) for kind, values in entry["Identifiers"].items() for code in values}
            hits = [key for code, same in wanted.items() if code is not None and code in codes for key in same]
            if not hits and len(keys) == 1:
                hits = keys  # one code asked: whatever SP-API answered is its match
            unattributed += not hits
            for key in hits:
                found[key].append(entry)
        if unattributed:
            log.warning(
                "searchCatalogItems (%s, %s) answered %d items listing none of the %d requested codes; they are left out",
                marketplace.code,
                identifier_type,
                unattributed,
                len(keys),
            )
        # The matched items are ASIN lookups answered too.
        self.cache.put_many(marketplace.marketplace_id, products)
        entries: dict[str, LookupEntry] = {}
        for key, identifier in zip(keys, identifiers, strict=True):
            if found[key]:
                entries[key] = identifier_matched_entry(identifier, identifier_type, found[key])
            else:
                message = f"{identifier_type} {identifier} matches no item in marketplace {marketplace.marketplace_id}"
                entries[key] = _identifier_key_failed(key, marketplace, ServiceError(errors.NOT_FOUND, message))
        return entries
