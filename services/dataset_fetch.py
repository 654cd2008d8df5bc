"""The datasets `include` asks for (pricing, offers, fees, restrictions, eligibility) of a list of ASINs, every operation side by side.

`DatasetFetcher.start` reads what the cache holds (unless `refresh`) and starts one task per SP-API
operation in a shared pool: each operation walks its chunks one after another on its own bucket (so
none queues longer than its plan needs), while the operations run at once. Fees need a price: one
given by the request, else the Buy Box of `Pricing` (fetched for that, asked for or not), else, when
`offers` was asked for too, the Offers' Buy Box or lowest offer; with none, `Fees` is a NO_PRICE
error. Fees of a chunk of Buy Box prices are asked for as soon as that chunk's pricing is in.
`PendingDatasets.result` waits for them all: every distinct ASIN gets every dataset asked for,
its facts or its own error. Successes are cached per dataset, each with its own TTL.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from services import errors
from services.cache import ResultCache
from services.datasets import ENTRY_KEYS, dataset_error
from services.eligibility import inbound_eligibility
from services.errors import ServiceError
from services.fees import FeeRequest, fees_estimates
from services.pricing import MAX_ASINS_PER_CALL, competitive_pricing, item_offers
from services.restrictions import listing_restrictions
from services.spapi import CallCount, SpApiClient
from utils.marketplaces import Marketplace

log = logging.getLogger(__name__)

# Per-ASIN operations run this many calls at once at most (and never more than their burst):
# getListingsRestrictions' 5/s cannot be met one call at a time when SP-API takes 300 ms to answer.
PER_ASIN_LANES = {"getListingsRestrictions": 4, "getItemEligibilityPreview": 1}

# Dataset tasks a process runs at once: a batch's run side by side (pricing, fees, offers, four lanes of
# restrictions, eligibility), a few batches at a time; they mostly wait for their operation's quota.
POOL_SIZE = 16
# Where a fee estimate's price came from (Fees.price_source).
GIVEN, BUY_BOX, LOWEST_OFFER = "given", "buy_box", "lowest_offer"

Datasets = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class DatasetRequest:
    """What to add to the entries: the dataset names, prices to estimate fees at, FBA or FBM, and whether to skip the cache."""

    include: tuple[str, ...] = ()
    prices: Mapping[str, float] = field(default_factory=dict)
    fulfilled_by_amazon: bool = True
    refresh: bool = False


def cache_key(name: str, asin: str, *, seller_id: str = "", fee: FeeRequest | None = None) -> str:
    """A dataset's key in the result cache: never an ASIN's or a code's (they have no "/")."""
    if fee is not None:
        return f"fees/{fee.asin}/{fee.price!r}/{'FBA' if fee.fulfilled_by_amazon else 'FBM'}"
    if name == "restrictions":
        return f"restrictions/{seller_id}/{asin}"
    return f"{name}/{asin}"


class DatasetFetcher:
    """Fetches datasets through SP-API and the cache, in a pool of its own (its tasks never wait on one another)."""

    def __init__(
        self, spapi: SpApiClient, cache: ResultCache, *, seller_id: str, ttls: Mapping[str, float], max_workers: int = POOL_SIZE
    ) -> None:
        self.spapi = spapi
        self.cache = cache
        self.seller_id = seller_id
        self.ttls = dict(ttls)
        self.pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="datasets")

    def close(self) -> None:
        """Let the running tasks finish, then stop the pool."""
        self.pool.shutdown(wait=True)

    def start(self, marketplace: Marketplace, asins: Sequence[str], request: DatasetRequest) -> PendingDatasets:
        """Start fetching `request.include` for the distinct `asins`; the answer is PendingDatasets.result()."""
        return PendingDatasets(self, marketplace, list(dict.fromkeys(asins)), request)

    def fetch(self, marketplace: Marketplace, asins: Sequence[str], request: DatasetRequest) -> tuple[dict[str, Datasets], int]:
        """start(...).result(): each distinct ASIN's datasets by entry key, and the SP-API calls sent."""
        return self.start(marketplace, asins, request).result()


class PendingDatasets:
    """The datasets of one list of ASINs while they are being fetched."""

    def __init__(self, fetcher: DatasetFetcher, marketplace: Marketplace, asins: list[str], request: DatasetRequest) -> None:
        self._fetcher = fetcher
        self._marketplace = marketplace
        self._asins = asins
        self._request = request
        self._lock = threading.Lock()
        self._found: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in ENTRY_KEYS}
        self._counts: list[CallCount] = []
        self._tasks: list[Future[None]] = []
        # The ASINs that still need a price for their fees once every task is in (an offer may give one).
        self._unpriced: list[str] = []
        include = request.include
        if not asins or not include:
            return
        fees = "fees" in include
        given = [asin for asin in asins if asin in request.prices] if fees else []
        needs_buy_box = [asin for asin in asins if asin not in request.prices] if fees else []
        pricing = asins if "pricing" in include else needs_buy_box
        if pricing:
            missing = self._from_cache("pricing", pricing)
            priced = [asin for asin in needs_buy_box if asin not in missing]
            self._spawn(self._pricing_task, missing, set(needs_buy_box))
            given += priced
        if given:
            self._spawn(self._fees_task, given)
        for name, task in (
            ("offers", self._offers_task),
            ("restrictions", self._restrictions_task),
            ("eligibility", self._eligibility_task),
        ):
            if name in include:
                missing = self._from_cache(name, asins)
                if missing:
                    self._start_per_name(name, task, missing)

    def result(self) -> tuple[dict[str, Datasets], int]:
        """Wait for every task: {asin: {entry key: dataset}} for the datasets asked for, and the SP-API calls sent."""
        index = 0
        while True:
            with self._lock:
                if index >= len(self._tasks):
                    break
                task = self._tasks[index]
            task.result()
            index += 1
        if self._unpriced:
            self._fees_task(self._unpriced, allow_offers=True)
        lost = ServiceError(errors.UPSTREAM_ERROR, "The dataset could not be fetched: the service failed inside; it has been logged")
        answer = {
            asin: {ENTRY_KEYS[name]: self._found[name].get(asin) or dataset_error(lost) for name in self._request.include}
            for asin in self._asins
        }
        return answer, sum(count.sent for count in self._counts)

    # -- tasks ---------------------------------------------------------------------------------

    def _spawn(self, task: Callable[..., None], *args: Any) -> None:
        # The task's log lines carry the request's id: run it in a copy of the request's context.
        context = contextvars.copy_context()
        with self._lock:
            self._tasks.append(self._fetcher.pool.submit(context.run, self._guarded, task, *args))

    def _guarded(self, task: Callable[..., None], *args: Any) -> None:
        try:
            task(*args)
        except Exception:  # a bug, not an SP-API answer: every ASIN still gets its datasets (errors) in result()
            log.exception("a dataset task (%s, %s) failed", getattr(task, "__name__", task), self._marketplace.code)

    def _count(self) -> CallCount:
        count = CallCount()
        with self._lock:
            self._counts.append(count)
        return count

    def _from_cache(self, name: str, asins: list[str]) -> list[str]:
        """Take `name`'s cached datasets of `asins` (unless refresh); the ASINs still to fetch."""
        if self._request.refresh:
            return list(asins)
        keys = {cache_key(name, asin, seller_id=self._fetcher.seller_id): asin for asin in asins}
        cached = self._fetcher.cache.get_many(self._marketplace.marketplace_id, list(keys))
        with self._lock:
            for key, found in cached.items():
                self._found[name][keys[key]] = dict(found)
        return [asin for asin in asins if asin not in self._found[name]]

    def _keep(self, name: str, datasets: Mapping[str, dict[str, Any]], keys: Mapping[str, str] | None = None) -> None:
        """Record datasets by ASIN and cache them under their keys (fees: by request; others: by ASIN)."""
        stored = {
            (keys[asin] if keys else cache_key(name, asin, seller_id=self._fetcher.seller_id)): found for asin, found in datasets.items()
        }
        self._fetcher.cache.put_many(self._marketplace.marketplace_id, stored, ttl=self._fetcher.ttls[name])
        with self._lock:
            self._found[name].update(datasets)

    def _start_per_name(self, name: str, task: Callable[[list[str]], None], asins: list[str]) -> None:
        if name == "offers":
            self._spawn(task, asins)
            return
        operation = "getListingsRestrictions" if name == "restrictions" else "getItemEligibilityPreview"
        lanes = max(1, min(PER_ASIN_LANES[operation], len(asins)))
        for lane in range(lanes):
            self._spawn(task, asins[lane::lanes])

    def _pricing_task(self, asins: list[str], needs_buy_box: set[str]) -> None:
        spapi, marketplace = self._fetcher.spapi, self._marketplace
        for start in range(0, len(asins), MAX_ASINS_PER_CALL):
            chunk = asins[start : start + MAX_ASINS_PER_CALL]
            self._keep("pricing", competitive_pricing(spapi, marketplace, chunk, self._count()))
            priced = [asin for asin in chunk if asin in needs_buy_box]
            if priced:
                # This chunk's fees go now, beside the next chunk's pricing.
                self._spawn(self._fees_task, priced)

    def _offers_task(self, asins: list[str]) -> None:
        self._keep("offers", item_offers(self._fetcher.spapi, self._marketplace, asins, self._count()))

    def _restrictions_task(self, asins: list[str]) -> None:
        for asin in asins:
            found = listing_restrictions(self._fetcher.spapi, self._marketplace, asin, self._fetcher.seller_id, self._count())
            self._keep("restrictions", {asin: found})

    def _eligibility_task(self, asins: list[str]) -> None:
        for asin in asins:
            self._keep("eligibility", {asin: inbound_eligibility(self._fetcher.spapi, self._marketplace, asin, self._count())})

    def _fees_task(self, asins: list[str], allow_offers: bool = False) -> None:
        """The fees of `asins` at their price; those with no price yet wait for result() when offers may give one."""
        requests: dict[str, tuple[FeeRequest, str]] = {}
        for asin in asins:
            price = self._price(asin, allow_offers)
            if isinstance(price, ServiceError):
                with self._lock:
                    self._found["fees"][asin] = dataset_error(price, fetched=False)
            elif price is None:
                with self._lock:
                    self._unpriced.append(asin)
            else:
                amount, source = price
                requests[asin] = (FeeRequest(asin, amount, self._request.fulfilled_by_amazon), source)
        if not requests:
            return
        keys = {asin: cache_key("fees", asin, fee=fee) for asin, (fee, _) in requests.items()}
        cached: dict[str, Any] = {}
        if not self._request.refresh:
            stored = self._fetcher.cache.get_many(self._marketplace.marketplace_id, list(keys.values()))
            cached = {asin: dict(stored[key]) for asin, key in keys.items() if key in stored}
        with self._lock:
            self._found["fees"].update(cached)
        wanted = [fee for asin, (fee, _) in requests.items() if asin not in cached]
        if not wanted:
            return
        answered = fees_estimates(self._fetcher.spapi, self._marketplace, wanted, self._count())
        datasets: dict[str, dict[str, Any]] = {}
        for asin, (fee, source) in requests.items():
            if fee in answered:
                found = answered[fee]
                # price_source right after the price it names.
                datasets[asin] = found if "error" in found else {"price": found["price"], "price_source": source, **found}
        self._keep("fees", datasets, keys)

    def _price(self, asin: str, allow_offers: bool) -> tuple[float, str] | ServiceError | None:
        """The price to estimate `asin`'s fees at and its source; a ServiceError when there is none; None: ask again after offers."""
        if asin in self._request.prices:
            return float(self._request.prices[asin]), GIVEN
        with self._lock:
            pricing = self._found["pricing"].get(asin) or {}
            offers = self._found["offers"].get(asin) or {}
        if pricing.get("buy_box_price") is not None:
            return float(pricing["buy_box_price"]), BUY_BOX
        if "offers" in self._request.include:
            if not allow_offers:
                return None
            if offers.get("buy_box_price") is not None:
                return float(offers["buy_box_price"]), BUY_BOX
            lowest = [offers.get(key) for key in ("lowest_fba_price", "lowest_fbm_price") if offers.get(key) is not None]
            if lowest:
                return float(min(lowest)), LOWEST_OFFER
        failed = pricing.get("error") or (offers.get("error") if "offers" in self._request.include else None)
        if failed:
            return ServiceError(failed["code"], f"Fees need a price, and it could not be fetched: {failed.get('message')}")
        if not pricing:
            return ServiceError(errors.UPSTREAM_ERROR, f"Fees need a price, and SP-API answered no pricing for {asin}")
        if "offers" in self._request.include:
            return ServiceError(
                errors.NO_PRICE, f"No price for {asin}: none was given, and it has no Buy Box and no offer to estimate its fees at"
            )
        return ServiceError(
            errors.NO_PRICE, f"No price for {asin}: none was given and it has no Buy Box; include offers to estimate at its lowest offer"
        )
