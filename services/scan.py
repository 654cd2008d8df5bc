"""Scan a supplier's list: for every row, the product it names, what it would earn, and BUY, REVIEW or SKIP.

The quota plan, cheapest first, each stage only for the rows still worth it:
1. **Resolve** the codes to ASINs (searchCatalogItems, 20 a call, through the cache): ranks, package
   quantity and dimensions. The rank gate needs nothing more, so it is judged here.
2. **Screen** the rows left: `Pricing` (getCompetitivePricing, 20 a call) and `Fees` at the sale price
   (getMyFeesEstimates, 20 a call, each chunk's as soon as its prices are in), then profit and ROI. A
   row without a Buy Box is priced from `Offers` (its lowest FBA offer, else its lowest offer). A row
   that fails the money gates stops here (`stage: screened`).
3. **Deep checks** for the survivors, most selective first, each only for the rows no earlier check
   skipped: `Offers` (Amazon on the listing), `Restrictions` (gating), `Eligibility` (hazmat and
   other inbound blocks; FBA only). Rows that get this far are `stage: full`.

Chunks of CHUNK rows go through the stages side by side (CHUNKS_AT_ONCE at a time), and each stage's
requests join its operation's queue, shared by every chunk (services/coalesce.py): the offers of a
few survivors per chunk go out together, 20 to a getItemOffersBatch call, while the next chunks are
resolved and screened, so every operation's bucket is busy while there is work for it.

Every dataset goes through the DatasetFetcher, so the cache (per dataset, its own TTL) answers what it
holds: a re-scan at other costs fetches nothing it already has, and only rows that newly pass the
screen get the deep checks they lack.
"""

from __future__ import annotations

import contextvars
import itertools
import json
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from services import errors
from services.asin_service import AsinService, resolve_marketplace
from services.dataset_fetch import DatasetFetcher, DatasetRequest
from services.eligibility_item import is_hazmat
from services.entries import LookupEntry, identifier_failed_entry
from services.errors import ServiceError
from services.scan_profile import Profile
from utils.marketplaces import Marketplace
from utils.supplier_list import SupplierRow

# Rows a chunk takes through the stages (searchCatalogItems' and the screen's 20 a call), and how many chunks
# run at once: enough that every operation's queue holds work while the slowest (getItemOffersBatch, one
# call per 10 s) catches up; the chunks mostly wait on those queues (services/coalesce.py).
CHUNK = 20
CHUNKS_AT_ONCE = 25
SCANS_AT_ONCE = 4

BUY, REVIEW, SKIP = "BUY", "REVIEW", "SKIP"
SCREENED, FULL = "screened", "full"

# Reasons (the codes behind a verdict): those that make a row SKIP, the others make it REVIEW.
NOT_FOUND = "NOT_FOUND"
INVALID_IDENTIFIER = "INVALID_IDENTIFIER"
INVALID_COST = errors.INVALID_COST
INVALID_PACK = errors.INVALID_PACK
NO_PRICE = "NO_PRICE"
ROI_BELOW_MIN = "ROI_BELOW_MIN"
PROFIT_BELOW_MIN = "PROFIT_BELOW_MIN"
RANK_ABOVE_MAX = "RANK_ABOVE_MAX"
AMAZON_ON_LISTING = "AMAZON_ON_LISTING"
APPROVAL_REQUIRED = "APPROVAL_REQUIRED"
NOT_ELIGIBLE = "NOT_ELIGIBLE"
HAZMAT = "HAZMAT"
MULTIPLE_MATCHES = "MULTIPLE_MATCHES"
DATA_UNAVAILABLE = "DATA_UNAVAILABLE"
REASONS = (
    NOT_FOUND,
    INVALID_IDENTIFIER,
    INVALID_COST,
    INVALID_PACK,
    NO_PRICE,
    ROI_BELOW_MIN,
    PROFIT_BELOW_MIN,
    RANK_ABOVE_MAX,
    AMAZON_ON_LISTING,
    APPROVAL_REQUIRED,
    NOT_ELIGIBLE,
    HAZMAT,
    MULTIPLE_MATCHES,
    DATA_UNAVAILABLE,
)

_TO_POUNDS = {"pounds": Decimal(1), "kilograms": Decimal("2.20462262"), "grams": Decimal("0.00220462262"), "ounces": Decimal("0.0625")}


@dataclass
class _Row:
    """One row as the scan works it through: its product, datasets, figures and reasons so far."""

    row: SupplierRow
    entry: LookupEntry
    datasets: dict[str, dict[str, Any]] = field(default_factory=dict)
    reasons: list[tuple[str, str, bool]] = field(default_factory=list)  # (code, message, skips)
    stage: str = SCREENED
    sale_price: Decimal | None = None
    price_source: str | None = None
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def asin(self) -> str | None:
        return self.entry.get("asin") if self.entry.get("success") else None

    @property
    def skipped(self) -> bool:
        return any(skips for _, _, skips in self.reasons)

    def skip(self, code: str, message: str) -> None:
        self.reasons.append((code, message, True))

    def review(self, code: str, message: str) -> None:
        self.reasons.append((code, message, False))


def row_json(row: SupplierRow) -> str:
    """A row as a job stores it (its item's input): everything the scan needs, and the row's own fields."""
    return json.dumps(
        {
            "position": row.position,
            "fields": row.fields,
            "identifier": row.identifier,
            "identifier_type": row.identifier_type,
            "cost": str(row.cost) if row.cost is not None else None,
            "pack_quantity": row.pack_quantity,
            "error": list(row.error) if row.error else None,
        },
        separators=(",", ":"),
        default=str,
    )


def row_from_json(text: str) -> SupplierRow:
    """The row `row_json` stored."""
    data = json.loads(text)
    return SupplierRow(
        position=data["position"],
        fields=data["fields"],
        identifier=data["identifier"],
        identifier_type=data["identifier_type"],
        cost=Decimal(data["cost"]) if data["cost"] is not None else None,
        pack_quantity=data["pack_quantity"],
        error=tuple(data["error"]) if data["error"] else None,  # type: ignore[arg-type]
    )


class Scanner:
    """Scans rows through the ASIN service (the catalog and its cache) and the dataset fetcher."""

    def __init__(self, service: AsinService, datasets: DatasetFetcher, defaults: Profile) -> None:
        self._service = service
        self._datasets = datasets
        self.defaults = defaults
        # Chunks of one scan run side by side, each through its stages: while one waits for its deep
        # checks, the next is screened, so that no operation's bucket idles while there is work for it.
        # Room for SCANS_AT_ONCE scans in full stride (a job's and a POST /scan's); more share it.
        self._pool = ThreadPoolExecutor(max_workers=CHUNKS_AT_ONCE * SCANS_AT_ONCE, thread_name_prefix="scan")

    def close(self) -> None:
        """Stop the pool after the running chunks finish."""
        self._pool.shutdown(wait=True)

    def scan(self, rows: Sequence[SupplierRow], country: object, profile: Profile, *, refresh: bool = False) -> list[dict[str, Any]]:
        """Every row's scan entry, in the rows' order (see `scan_chunks`)."""
        return [entry for entries in self.scan_chunks(rows, country, profile, refresh=refresh) for entry in entries]

    def scan_chunks(
        self, rows: Sequence[SupplierRow], country: object, profile: Profile, *, refresh: bool = False
    ) -> Generator[list[dict[str, Any]], None, None]:
        """The rows' scan entries a chunk of CHUNK at a time, in order, each as soon as it and those before it are done.

        CHUNKS_AT_ONCE chunks run at a time (in copies of the caller's context), the first of them
        started now; each chunk handed out starts the next. Closing the generator early (a job's
        runner stopping) cancels the chunks not yet running, and those running stop at their next
        stage (the datasets they fetched are cached).
        """
        marketplace = resolve_marketplace(country)
        context = contextvars.copy_context()
        given_up = threading.Event()

        def start(begin: int) -> Future[list[dict[str, Any]]]:
            chunk = rows[begin : begin + CHUNK]
            return self._pool.submit(context.copy().run, self._scan_chunk, chunk, marketplace, profile, refresh, given_up)

        begins = iter(range(0, len(rows), CHUNK))
        running = deque(start(begin) for begin in itertools.islice(begins, CHUNKS_AT_ONCE))
        return _in_order(running, begins, start, given_up)

    def _scan_chunk(
        self, rows: Sequence[SupplierRow], marketplace: Marketplace, profile: Profile, refresh: bool, given_up: threading.Event
    ) -> list[dict[str, Any]]:
        work = self._resolve(rows, marketplace, refresh)
        alive = [w for w in work if not w.skipped and w.asin is not None]
        self._rank_gate(alive, profile)
        alive = [w for w in alive if not w.skipped]
        if given_up.is_set():
            return []
        self._screen(alive, marketplace, profile, refresh)
        survivors = [w for w in alive if not w.skipped]
        if given_up.is_set():
            return []
        self._deep_checks(survivors, marketplace, profile, refresh)
        return [_scan_entry(w, profile) for w in work]

    # -- 1. resolve ----------------------------------------------------------------------------

    def _resolve(self, rows: Sequence[SupplierRow], marketplace: Marketplace, refresh: bool) -> list[_Row]:
        work: list[_Row | None] = [None] * len(rows)
        by_type: dict[str, list[int]] = {}
        for index, row in enumerate(rows):
            if row.error is not None:
                code, message = row.error
                failure = ServiceError(code, message)
                entry = identifier_failed_entry(row.identifier, row.identifier_type, marketplace, failure, fetched=False)
                work[index] = _Row(row, entry)
                work[index].skip(code, message)  # type: ignore[union-attr]
            else:
                by_type.setdefault(row.identifier_type, []).append(index)
        for kind, indexes in by_type.items():
            entries = self._service.lookup_list([rows[i].identifier for i in indexes], kind, marketplace.code, refresh=refresh)
            for index, entry in zip(indexes, entries, strict=True):
                found = _Row(rows[index], entry)
                error = entry.get("error") or {}
                if entry.get("success"):
                    matches = entry.get("matches") or []
                    if len(matches) > 1:
                        others = ", ".join(m["asin"] for m in matches if not m["best"])
                        message = f"The code matches {len(matches)} ASINs; the best-ranked is used, the others: {others}"
                        found.review(MULTIPLE_MATCHES, message)
                elif error.get("code") in (errors.NOT_FOUND, errors.INVALID_ASIN, errors.INVALID_IDENTIFIER):
                    code = NOT_FOUND if error["code"] == errors.NOT_FOUND else INVALID_IDENTIFIER
                    found.skip(code, error.get("message") or code)
                else:
                    found.review(DATA_UNAVAILABLE, f"The product could not be looked up: {error.get('message')}")
                work[index] = found
        return [w for w in work if w is not None]

    @staticmethod
    def _rank_gate(rows: list[_Row], profile: Profile) -> None:
        if profile.max_sales_rank is None:
            return
        for w in rows:
            rank = w.entry.get("SalesRank")
            if rank is None or rank > profile.max_sales_rank:
                w.skip(RANK_ABOVE_MAX, f"Sales rank {rank if rank is not None else 'none'} is above the maximum {profile.max_sales_rank}")

    # -- 2. screen -----------------------------------------------------------------------------

    def _fetch(self, marketplace: Marketplace, rows: Iterable[_Row], request: DatasetRequest) -> dict[str, dict[str, Any]]:
        asins = list(dict.fromkeys(w.asin for w in rows if w.asin is not None))
        if not asins:
            return {}
        found, _calls = self._datasets.fetch(marketplace, asins, request)
        return found

    def _screen(self, rows: list[_Row], marketplace: Marketplace, profile: Profile, refresh: bool) -> None:
        fba = profile.fulfillment == "FBA"
        if profile.price_source == "buy_box":
            # Pricing, and fees at each Buy Box as its chunk comes in.
            found = self._fetch(marketplace, rows, DatasetRequest(include=("pricing", "fees"), fulfilled_by_amazon=fba, refresh=refresh))
            for w in rows:
                w.datasets.update(found.get(w.asin, {}))
                price = w.datasets.get("Pricing", {}).get("buy_box_price")
                if price is not None:
                    w.sale_price, w.price_source = Decimal(str(price)), "buy_box"
        unpriced = [w for w in rows if w.sale_price is None and "error" not in w.datasets.get("Pricing", {})]
        if unpriced:
            offers = self._fetch(marketplace, unpriced, DatasetRequest(include=("offers",), refresh=refresh))
            for w in unpriced:
                w.datasets.update(offers.get(w.asin, {}))
                w.sale_price, w.price_source = _offer_price(w.datasets.get("Offers", {}), profile.price_source)
            prices = {w.asin: float(w.sale_price) for w in unpriced if w.sale_price is not None and w.asin}
            if prices:
                request = DatasetRequest(include=("fees",), prices=prices, fulfilled_by_amazon=fba, refresh=refresh)
                fees = self._fetch(marketplace, [w for w in unpriced if w.asin in prices], request)
                for w in unpriced:
                    if w.asin in prices:
                        w.datasets["Fees"] = fees.get(w.asin, {}).get("Fees", {})
        for w in rows:
            self._judge_money(w, profile)

    @staticmethod
    def _judge_money(w: _Row, profile: Profile) -> None:
        pricing_error = w.datasets.get("Pricing", {}).get("error") or w.datasets.get("Offers", {}).get("error")
        if w.sale_price is None:
            if pricing_error and errors.is_transient(pricing_error.get("code") or ""):
                w.review(DATA_UNAVAILABLE, f"The price could not be fetched: {pricing_error.get('message')}")
            else:
                w.skip(NO_PRICE, "No Buy Box and no offer to price the item at")
            return
        fees = w.datasets.get("Fees", {})
        if fees.get("total_fees") is None:
            error = fees.get("error") or {}
            w.review(DATA_UNAVAILABLE, f"The fees could not be estimated: {error.get('message') or 'no estimate'}")
            return
        w.figures = _figures(w, Decimal(str(fees["total_fees"])), profile)
        roi, profit = w.figures["roi_percent"], w.figures["profit"]
        if profit < profile.min_profit:
            w.skip(PROFIT_BELOW_MIN, f"Profit {profit:.2f} is below the minimum {profile.min_profit:.2f}")
        # A row that costs nothing (a free sample) has no ROI to hold to the minimum: its profit decides.
        if roi is not None and roi < profile.min_roi_percent:
            w.skip(ROI_BELOW_MIN, f"ROI {roi:.1f}% is below the minimum {profile.min_roi_percent}%")

    # -- 3. deep checks ------------------------------------------------------------------------

    def _deep_checks(self, rows: list[_Row], marketplace: Marketplace, profile: Profile, refresh: bool) -> None:
        for w in rows:
            w.stage = FULL
        need_offers = [w for w in rows if "Offers" not in w.datasets]
        if need_offers:
            found = self._fetch(marketplace, need_offers, DatasetRequest(include=("offers",), refresh=refresh))
            for w in need_offers:
                w.datasets.update(found.get(w.asin, {}))
        for w in rows:
            offers = w.datasets.get("Offers", {})
            if "error" in offers:
                w.review(DATA_UNAVAILABLE, f"The offers could not be fetched: {offers['error'].get('message')}")
            elif offers.get("amazon_on_listing"):
                message = "Amazon sells this item itself" + (" and holds the Buy Box" if offers.get("buy_box_seller") == "AMAZON" else "")
                (w.skip if profile.skip_amazon_on_listing else w.review)(AMAZON_ON_LISTING, message)
        left = [w for w in rows if not w.skipped]
        if left:
            found = self._fetch(marketplace, left, DatasetRequest(include=("restrictions",), refresh=refresh))
            for w in left:
                w.datasets.update(found.get(w.asin, {}))
                _judge_restrictions(w, profile)
        left = [w for w in left if not w.skipped]
        if left and profile.fulfillment == "FBA":
            found = self._fetch(marketplace, left, DatasetRequest(include=("eligibility",), refresh=refresh))
            for w in left:
                w.datasets.update(found.get(w.asin, {}))
                _judge_eligibility(w, profile)


def _in_order(
    running: deque[Future[list[dict[str, Any]]]],
    begins: Iterator[int],
    start: Callable[[int], Future[list[dict[str, Any]]]],
    given_up: threading.Event,
) -> Generator[list[dict[str, Any]], None, None]:
    try:
        while running:
            entries = running.popleft().result()
            begin = next(begins, None)
            if begin is not None:
                running.append(start(begin))
            yield entries
    finally:
        given_up.set()
        for future in running:
            future.cancel()


def _offer_price(offers: dict[str, Any], source: str) -> tuple[Decimal | None, str | None]:
    """The sale price an Offers dataset gives under `source`: buy_box and lowest_fba fall back to the lowest FBA, then any offer."""
    if source == "buy_box" and offers.get("buy_box_price") is not None:
        return Decimal(str(offers["buy_box_price"])), "buy_box"
    if source in ("buy_box", "lowest_fba") and offers.get("lowest_fba_price") is not None:
        return Decimal(str(offers["lowest_fba_price"])), "lowest_fba"
    lowest = [offers[key] for key in ("lowest_fba_price", "lowest_fbm_price") if offers.get(key) is not None]
    if lowest:
        return Decimal(str(min(lowest))), "lowest_offer"
    return None, None


def _judge_restrictions(w: _Row, profile: Profile) -> None:
    restrictions = w.datasets.get("Restrictions", {})
    if "error" in restrictions:
        w.review(DATA_UNAVAILABLE, f"The listing restrictions could not be fetched: {restrictions['error'].get('message')}")
        return
    status = restrictions.get("status")
    if status in ("APPROVAL_REQUIRED", "NOT_ELIGIBLE", "ASIN_NOT_FOUND"):
        code = APPROVAL_REQUIRED if status == "APPROVAL_REQUIRED" else NOT_ELIGIBLE
        messages = "; ".join(r.get("message") or r.get("code") or "" for r in restrictions.get("reasons") or []) or status
        (w.skip if profile.skip_restricted else w.review)(code, messages)


def _judge_eligibility(w: _Row, profile: Profile) -> None:
    eligibility = w.datasets.get("Eligibility", {})
    if "error" in eligibility:
        w.review(DATA_UNAVAILABLE, f"FBA inbound eligibility could not be fetched: {eligibility['error'].get('message')}")
        return
    if eligibility.get("eligible") is not False:
        return
    reasons = eligibility.get("reasons") or []
    hazmat = [r for r in reasons if is_hazmat(r.get("code"))]
    if hazmat:
        (w.skip if profile.skip_hazmat else w.review)(HAZMAT, "; ".join(f"{r['code']}: {r['message']}" for r in hazmat))
    others = [r for r in reasons if not is_hazmat(r.get("code"))]
    if others or not reasons:
        w.skip(NOT_ELIGIBLE, "; ".join(f"{r['code']}: {r['message']}" for r in others) or "FBA does not take this item in")


# -- figures and the entry ---------------------------------------------------------------------


def _shipping_pounds(entry: LookupEntry) -> Decimal | None:
    weight = ((entry.get("PackageDimensions") or {}).get("weight")) or {}
    value, unit = weight.get("value"), weight.get("unit")
    if not isinstance(value, int | float) or unit not in _TO_POUNDS:
        return None
    return Decimal(str(value)) * _TO_POUNDS[unit]


def _amazon_pack(entry: LookupEntry) -> int:
    """How many items one Amazon listing sells (the catalog's packageQuantity; 1 when it gives none)."""
    return int(entry.get("PackageQuantity") or 1)


def _figures(w: _Row, total_fees: Decimal, profile: Profile) -> dict[str, Any]:
    """The row's money, per unit Amazon sells (one listing of `amazon_pack_quantity` items)."""
    assert w.sale_price is not None and w.row.cost is not None
    amazon_pack = _amazon_pack(w.entry)
    unit_cost = w.row.cost / w.row.pack_quantity * amazon_pack
    pounds = _shipping_pounds(w.entry)
    inbound = profile.inbound_per_pound * pounds if pounds is not None else Decimal(0)
    before_cost = w.sale_price - total_fees - profile.prep_cost - inbound
    profit = before_cost - unit_cost
    # The highest unit cost that still meets both gates: profit >= min_profit and profit / cost >= min ROI.
    ceilings = [before_cost - profile.min_profit]
    if profile.min_roi_percent > -100:
        ceilings.append(before_cost / (1 + profile.min_roi_percent / 100))
    return {
        "amazon_pack_quantity": amazon_pack,
        "unit_cost": unit_cost,
        "total_fees": total_fees,
        "prep_cost": profile.prep_cost,
        "inbound_shipping": inbound,
        "profit": profit,
        "roi_percent": profit / unit_cost * 100 if unit_cost > 0 else None,
        "margin_percent": profit / w.sale_price * 100 if w.sale_price > 0 else None,
        "max_cost": max(Decimal(0), min(ceilings)),
    }


def _number(value: Any) -> Any:
    # Through float first: rounding a Decimal of more than 28 digits raises.
    return round(float(value), 6) if isinstance(value, Decimal) else value


_MONEY_FIGURES = ("unit_cost", "total_fees", "prep_cost", "inbound_shipping", "profit", "roi_percent", "margin_percent", "max_cost")


def _scan_entry(w: _Row, profile: Profile) -> dict[str, Any]:
    """The row's answer: its input as given, the product's entry, the datasets fetched, and `Scan`."""
    skips = [(code, message) for code, message, skips in w.reasons if skips]
    reviews = [(code, message) for code, message, skips in w.reasons if not skips]
    verdict = SKIP if skips else REVIEW if reviews else BUY
    figures = w.figures
    scan = {
        "verdict": verdict,
        "reasons": [{"code": code, "message": message} for code, message in skips + reviews],
        "stage": w.stage,
        "sale_price": _number(w.sale_price),
        "price_source": w.price_source,
        "supplier_cost": _number(w.row.cost),
        "supplier_pack_quantity": w.row.pack_quantity,
        "amazon_pack_quantity": _amazon_pack(w.entry),
        **{key: _number(figures.get(key)) for key in _MONEY_FIGURES},
        "fulfillment": profile.fulfillment,
    }
    return {"input": w.row.fields, **{k: v for k, v in w.entry.items() if k != "input"}, **w.datasets, "Scan": scan}
