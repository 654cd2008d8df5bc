"""The datasets `include` asks for (pricing, offers, fees, restrictions, eligibility) of a list of ASINs, every operation side by side.

`DatasetFetcher.start` reads what the cache holds (unless `refresh`) and queues the rest on each
operation's Coalescer (services/coalesce.py): one queue per operation and marketplace, shared by
every request, job and scan of the process, so each call carries as many items as are waiting (up
to what the operation takes) and the operations run at once, each on its own bucket. Fees need a
price: one given by the request, else the Buy Box of `Pricing` (fetched for that, asked for or
not), else, when `offers` was asked for too, the Offers' Buy Box or lowest offer; with none, `Fees`
is a NO_PRICE error. The fees of a pricing call's Buy Boxes are queued as soon as it answers.
`PendingDatasets.result` waits for them all: every distinct ASIN gets every dataset asked for,
its facts or its own error. Successes are cached per dataset, each with its own TTL.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from services import errors
from services.cache import ResultCache
from services.coalesce import Coalescer
from services.datasets import ENTRY_KEYS, dataset_error
from services.eligibility import inbound_eligibility
from services.errors import ServiceError
from services.fees import MAX_BATCH as MAX_FEES_PER_CALL
from services.fees import FeeRequest, fees_estimates
from services.pricing import MAX_ASINS_PER_CALL, competitive_pricing, item_offers
from services.restrictions import listing_restrictions
from services.spapi import CallCount, SpApiClient
from utils.marketplaces import Marketplace

# Each dataset's lanes (services/coalesce.py): the most items one call of a lane takes; a lane after
# the first works only while those before it are busy.
LANES: dict[str, tuple[int, ...]] = {
    "pricing": (MAX_ASINS_PER_CALL,),  # getCompetitivePricing
    "fees": (MAX_FEES_PER_CALL,),  # getMyFeesEstimates (one request alone: getMyFeesEstimateForASIN)
    # getItemOffersBatch (one ASIN alone: getItemOffers), and getItemOffers on its own bucket beside it.
    "offers": (MAX_ASINS_PER_CALL, 1),
    # getListingsRestrictions' 5/s cannot be met one call at a time when SP-API takes 300 ms to answer.
    "restrictions": (1, 1, 1, 1),
    "eligibility": (1,),  # getItemEligibilityPreview, 1/s burst 1
}
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
    """Fetches datasets through SP-API and the cache, on one Coalescer per dataset and marketplace (started when first asked)."""

    def __init__(self, spapi: SpApiClient, cache: ResultCache, *, seller_id: str, ttls: Mapping[str, float]) -> None:
        self.spapi = spapi
        self.cache = cache
        self.seller_id = seller_id
        self.ttls = dict(ttls)
        self._lock = threading.Lock()
        self._queues: dict[tuple[str, str], Coalescer[Any, dict[str, Any]]] = {}

    def close(self) -> None:
        """Let the calls in flight finish, then stop every queue."""
        with self._lock:
            queues, self._queues = list(self._queues.values()), {}
        for queue in queues:
            queue.close()

    def start(self, marketplace: Marketplace, asins: Sequence[str], request: DatasetRequest) -> PendingDatasets:
        """Start fetching `request.include` for the distinct `asins`; the answer is PendingDatasets.result()."""
        return PendingDatasets(self, marketplace, list(dict.fromkeys(asins)), request)

    def fetch(self, marketplace: Marketplace, asins: Sequence[str], request: DatasetRequest) -> tuple[dict[str, Datasets], int]:
        """start(...).result(): each distinct ASIN's datasets by entry key, and the SP-API calls sent."""
        return self.start(marketplace, asins, request).result()

    def queue(self, name: str, marketplace: Marketplace) -> Coalescer[Any, dict[str, Any]]:
        """Dataset `name`'s queue in `marketplace`: its items are ASINs (fees: FeeRequests), its answers datasets."""
        with self._lock:
            queue = self._queues.get((name, marketplace.code))
            if queue is None:
                fetch = functools.partial(self._call, name, marketplace)
                queue = self._queues[(name, marketplace.code)] = Coalescer(f"{name}-{marketplace.code}", fetch, LANES[name])
            return queue

    def _call(self, name: str, marketplace: Marketplace, items: list[Any], count: CallCount) -> Mapping[Any, dict[str, Any]]:
        spapi = self.spapi
        if name == "pricing":
            return competitive_pricing(spapi, marketplace, items, count)
        if name == "fees":
            return fees_estimates(spapi, marketplace, items, count)
        if name == "offers":
            return item_offers(spapi, marketplace, items, count)
        if name == "restrictions":
            return {asin: listing_restrictions(spapi, marketplace, asin, self.seller_id, count) for asin in items}
        return {asin: inbound_eligibility(spapi, marketplace, asin, count) for asin in items}


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
        self._waits: list[Future[None]] = []
        # The ASINs that still need a price for their fees once every call is in (an offer may give one).
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
            given += [asin for asin in needs_buy_box if asin not in missing]
            self._ask("pricing", missing, functools.partial(self._priced, set(needs_buy_box)))
        if given:
            self._ask_fees(given)
        for name in ("offers", "restrictions", "eligibility"):
            if name in include:
                self._ask(name, self._from_cache(name, asins), functools.partial(self._keep, name))

    def result(self) -> tuple[dict[str, Datasets], int]:
        """Wait for every call: {asin: {entry key: dataset}} for the datasets asked for, and the SP-API calls sent."""
        self._wait()
        if self._unpriced:
            self._ask_fees(self._unpriced, allow_offers=True)
            self._wait()
        lost = ServiceError(errors.UPSTREAM_ERROR, "The dataset could not be fetched: the service failed inside; it has been logged")
        answer = {
            asin: {ENTRY_KEYS[name]: self._found[name].get(asin) or dataset_error(lost) for name in self._request.include}
            for asin in self._asins
        }
        return answer, sum(count.sent for count in self._counts)

    def _wait(self) -> None:
        """Wait for every queued call, those queued meanwhile (a pricing call's fees) included."""
        index = 0
        while True:
            with self._lock:
                if index >= len(self._waits):
                    return
                wait = self._waits[index]
            wait.result()
            index += 1

    # -- asking --------------------------------------------------------------------------------

    def _ask(self, name: str, items: Sequence[Any], deliver: Callable[[dict[Any, dict[str, Any]]], None]) -> None:
        """Queue `items` on dataset `name`'s queue; `deliver` takes each call's answers."""
        if not items:
            return
        count = CallCount()
        wait = self._fetcher.queue(name, self._marketplace).submit(items, deliver, count)
        with self._lock:
            self._counts.append(count)
            self._waits.append(wait)

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

    def _priced(self, needs_buy_box: set[str], datasets: dict[str, dict[str, Any]]) -> None:
        """A pricing call's answers: kept, and the fees of its Buy Boxes queued at once."""
        self._keep("pricing", datasets)
        priced = [asin for asin in datasets if asin in needs_buy_box]
        if priced:
            self._ask_fees(priced)

    def _ask_fees(self, asins: list[str], allow_offers: bool = False) -> None:
        """Queue the fees of `asins` at their price; those with no price yet wait for result() when offers may give one."""
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
        self._ask("fees", wanted, functools.partial(self._fees_answered, requests, keys))

    def _fees_answered(self, requests: dict[str, tuple[FeeRequest, str]], keys: dict[str, str], answered: dict[FeeRequest, Any]) -> None:
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
