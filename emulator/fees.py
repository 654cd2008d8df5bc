"""Product Fees v0: getMyFeesEstimateForASIN and getMyFeesEstimates, priced by one documented rate card.

The fees of an item follow from its catalog listing (`catalog.listing`): the referral fee from its
category or product type, the FBA fulfilment fee from its package (size tier and shipping weight),
the closing fee from whether it is media (a book). The rate card below is the only place these
figures live; emulator/README.md shows it as a table. Card figures are in US dollars and are
converted with the marketplace's rate (products.MARKETPLACE_INFO), as the catalog's prices are.

Requests follow the model (shared/reference/productFeesV0.json) as python-amazon-sp-api sends them:
null optional fields count as absent, and the top-level `marketplaceIds`/`MarketplaceIds` the
library adds to getMyFeesEstimateForASIN's body are ignored. A malformed request is a 400
InvalidInput; an item the emulator cannot price (unknown ASIN, a currency that is not the
marketplace's, a SellerSKU) is a `ClientError` result inside the 200, as SP-API answers.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from typing import Any, NamedTuple

from flask import Flask, Response, request

from emulator import catalog
from emulator.calls import Call, answer_call
from emulator.catalog import MARKETPLACE_IDS, Listing
from emulator.defaults import SELLER_ID
from emulator.examples import load_fixture
from emulator.options import EmulatorOptions
from emulator.params import InvalidInput, asin_param
from emulator.plans import GET_MY_FEES_ESTIMATE_FOR_ASIN, GET_MY_FEES_ESTIMATES
from emulator.products import MARKETPLACE_INFO
from emulator.state import EmulatorState

# =========================================================================== the rate card (USD)
# Modelled on Amazon's 2024 US fee schedule for professional sellers, simplified (see emulator/README.md).

# Referral fee: a share of the total price (listing price + shipping), with a minimum per item.
REFERRAL_RATE = Decimal("0.15")  # most categories
REFERRAL_RATE_BY_CATEGORY: dict[str, Decimal] = {"electronics": Decimal("0.08")}
# Product types whose rate differs from their category's.
REFERRAL_RATE_BY_PRODUCT_TYPE: dict[str, Decimal] = {
    "CHARGING_ADAPTER": Decimal("0.15"),  # electronics accessories
    "ELECTRONIC_CABLE": Decimal("0.15"),  # electronics accessories
    "DRILL": Decimal("0.12"),  # base equipment power tools
}
REFERRAL_RATE_MEDIA = Decimal("0.15")  # books, whatever else the item is
REFERRAL_MINIMUM = Decimal("0.30")
# Variable closing fee, per media item (books), fulfilled by Amazon or not.
CLOSING_FEE_MEDIA = Decimal("1.80")
# Per-item fee: none on the Professional selling plan (the emulator's seller has it).
PER_ITEM_FEE = Decimal("0.00")

# FBA fulfilment fee, only when IsAmazonFulfilled is true: by size tier and shipping weight.
DIMENSIONAL_WEIGHT_DIVISOR = Decimal("139")  # cubic inches per pound


class SizeTier(NamedTuple):
    """A size tier: the largest package it takes (inches, pounds) and how its fee grows with shipping weight."""

    name: str
    longest: Decimal | None  # None: no limit (extra-large)
    median: Decimal | None
    shortest: Decimal | None
    weight: Decimal | None  # package (unit) weight, pounds
    length_and_girth: Decimal | None  # longest + 2 x (median + shortest), inches
    dimensional: bool  # shipping weight = max(package weight, dimensional weight); else package weight
    steps: tuple[tuple[Decimal, Decimal], ...]  # (shipping weight up to, pounds; fee)
    # Beyond the last step: (from pounds, fee at that weight, per `unit` pounds or part of it, fee per unit).
    bands: tuple[tuple[Decimal, Decimal, Decimal, Decimal], ...]


def _d(*values: str) -> tuple[Decimal, ...]:
    return tuple(Decimal(v) for v in values)


_OZ4, _OZ8, _OZ12, _LB1 = _d("0.25", "0.5", "0.75", "1")
SIZE_TIERS: tuple[SizeTier, ...] = (
    SizeTier(
        "Small standard", *_d("15", "12", "0.75", "1"), None, False,
        ((_OZ4, Decimal("3.22")), (_OZ8, Decimal("3.40")), (_OZ12, Decimal("3.58")), (_LB1, Decimal("3.77"))),
        (),
    ),
    SizeTier(
        "Large standard", *_d("18", "14", "8", "20"), None, True,
        (
            (_OZ4, Decimal("3.86")), (_OZ8, Decimal("4.08")), (_OZ12, Decimal("4.24")), (_LB1, Decimal("4.75")),
            (Decimal("1.5"), Decimal("5.40")), (Decimal("2"), Decimal("5.69")), (Decimal("2.5"), Decimal("6.10")),
            (Decimal("3"), Decimal("6.39")),
        ),
        (_d("3", "6.39", "0.5", "0.16"),),
    ),
    SizeTier(
        "Large bulky", *_d("59", "33", "33", "50", "130"), True,
        ((_LB1, Decimal("9.61")),),
        (_d("1", "9.61", "1", "0.38"),),
    ),
    SizeTier(
        "Extra-large", None, None, None, None, None, True,
        ((_LB1, Decimal("26.33")),),
        (_d("1", "26.33", "1", "0.38"), _d("50", "44.95", "1", "0.75")),
    ),
)  # fmt: skip

# ISO 4217 minor units of the marketplaces' currencies: every one has cents but the yen.
_MINOR_UNIT = {"JPY": Decimal("1")}
_CENT = Decimal("0.01")


def size_tier(package_dims: tuple[float, float, float, float]) -> SizeTier:
    """The size tier of a package (height, length, width in inches; weight in pounds): the first whose limits it fits."""
    *sides, weight = (_decimal(v) for v in package_dims)
    longest, median, shortest = sorted(sides, reverse=True)
    for tier in SIZE_TIERS:
        limits = ((longest, tier.longest), (median, tier.median), (shortest, tier.shortest), (weight, tier.weight))
        if any(limit is not None and value > limit for value, limit in limits):
            continue
        if tier.length_and_girth is not None and longest + 2 * (median + shortest) > tier.length_and_girth:
            continue
        return tier
    return SIZE_TIERS[-1]


def shipping_weight(tier: SizeTier, package_dims: tuple[float, float, float, float]) -> Decimal:
    """Pounds the fee is charged on: the package weight, or the dimensional weight where larger and the tier uses it."""
    height, length, width, weight = (_decimal(v) for v in package_dims)
    if not tier.dimensional:
        return weight
    return max(weight, height * length * width / DIMENSIONAL_WEIGHT_DIVISOR)


def fulfilment_fee(tier: SizeTier, weight: Decimal) -> Decimal:
    """The FBA fulfilment fee (USD) of a shipping weight in a tier: its step, or its band's fee per unit (or part) above."""
    for up_to, fee in tier.steps:
        if weight <= up_to:
            return fee
    start, base, unit, per_unit = next(band for band in reversed(tier.bands) if weight > band[0])
    units = ((weight - start) / unit).to_integral_value(rounding=ROUND_CEILING)
    return base + units * per_unit


def referral_rate(listing: Listing) -> Decimal:
    """The referral fee's share of the total price for this item."""
    if listing.media:
        return REFERRAL_RATE_MEDIA
    if listing.product_type in REFERRAL_RATE_BY_PRODUCT_TYPE:
        return REFERRAL_RATE_BY_PRODUCT_TYPE[listing.product_type]
    return REFERRAL_RATE_BY_CATEGORY.get(listing.category, REFERRAL_RATE)


@dataclass(frozen=True)
class FeeBreakdown:
    """The fees of one item at one price, in the marketplace's currency (fulfilment None: not fulfilled by Amazon)."""

    currency: str
    referral: Decimal
    closing: Decimal
    per_item: Decimal
    fulfilment: Decimal | None
    size_tier: str | None

    @property
    def total(self) -> Decimal:
        """The sum of every fee."""
        return self.referral + self.closing + self.per_item + (self.fulfilment or Decimal(0))


def estimate_fees(listing: Listing, price: Decimal, shipping: Decimal, amazon_fulfilled: bool) -> FeeBreakdown:
    """The rate card applied to an item at a listing price and shipping (in the marketplace's currency)."""
    info = MARKETPLACE_INFO[listing.marketplace_id]

    def local(usd: Decimal) -> Decimal:
        return _round(usd * _decimal(info.usd_rate), info.currency)

    referral = max(_round(referral_rate(listing) * (price + shipping), info.currency), local(REFERRAL_MINIMUM))
    closing = local(CLOSING_FEE_MEDIA) if listing.media else local(Decimal(0))
    fulfilment, tier_name = None, None
    if amazon_fulfilled:
        tier = size_tier(listing.package_dims)
        fulfilment, tier_name = local(fulfilment_fee(tier, shipping_weight(tier, listing.package_dims))), tier.name
    return FeeBreakdown(info.currency, referral, closing, local(PER_ITEM_FEE), fulfilment, tier_name)


def _decimal(value: float) -> Decimal:
    # Six decimals are more than any dimension, weight or rate needs, and keep float noise out.
    return Decimal(repr(round(value, 6)))


def _round(amount: Decimal, currency: str) -> Decimal:
    return amount.quantize(_MINOR_UNIT.get(currency, _CENT), rounding=ROUND_HALF_UP)


# =========================================================================== requests

ID_TYPES = ("ASIN", "SellerSKU")
OPTIONAL_FULFILLMENT_PROGRAMS = ("FBA_CORE", "FBA_SNL", "FBA_EFN")
MAX_BATCH = 20  # the model's GetMyFeesEstimatesRequest: up to 20 FeesEstimateByIdRequest
INCORRECT_MARKETPLACE = "Incorrect Marketplace identifier."  # the model's sandbox 400 message
# FeesEstimateResult.Status values, as the model lists them.
SUCCESS, CLIENT_ERROR, SERVICE_ERROR = "Success", "ClientError", "ServiceError"


class Money(NamedTuple):
    """A MoneyType as sent."""

    currency: str
    amount: Decimal


@dataclass(frozen=True)
class EstimateRequest:
    """A validated FeesEstimateRequest (and, in a batch, its IdType and IdValue)."""

    marketplace_id: str
    identifier: str
    amazon_fulfilled: bool
    listing_price: Money
    shipping: Money | None
    points_value: Money | None
    price_to_estimate_fees: dict[str, Any]  # as sent, null fields left out (echoed in the identifier)
    program: str | None
    id_type: str = "ASIN"
    id_value: str = ""


def without_nulls(value: Any) -> Any:
    """`value` with every null-valued object member left out, at any depth (the library sends absent fields as null)."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def _required(container: Mapping[str, Any], name: str, where: str) -> Any:
    value = container.get(name)
    if value is None:
        raise InvalidInput(f"Missing required parameter '{where}.{name}'.")
    return value


def _object(value: Any, where: str, schema: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInput(f"Invalid value for parameter '{where}': expected a {schema} object.")
    return value


# The emulator's bound on an amount (the model states none): the rate card's decimal arithmetic, to the
# cent, stays exact below it, and no Amazon listing is priced anywhere near it.
MAX_AMOUNT = 1e12


def _money(value: Any, where: str) -> Money:
    money = _object(value, where, "MoneyType")
    currency = _required(money, "CurrencyCode", where)
    if not isinstance(currency, str) or not currency.strip():
        raise InvalidInput(f"Invalid value for parameter '{where}.CurrencyCode': expected an ISO 4217 currency code.")
    amount = _required(money, "Amount", where)
    if isinstance(amount, bool) or not isinstance(amount, int | float) or not math.isfinite(amount) or not 0 <= amount < MAX_AMOUNT:
        raise InvalidInput(f"Invalid value '{amount}' for parameter '{where}.Amount': expected a number >= 0 and below {MAX_AMOUNT:.0f}.")
    return Money(currency.strip(), _decimal(float(amount)))


def parse_estimate_request(value: Any, where: str) -> EstimateRequest:
    """Validate a FeesEstimateRequest found at `where` (e.g. "body[2].FeesEstimateRequest"); raises InvalidInput."""
    if value is None:
        raise InvalidInput(f"Missing required parameter '{where}'.")
    body = _object(without_nulls(value), where, "FeesEstimateRequest")
    marketplace_id = _required(body, "MarketplaceId", where)
    if not isinstance(marketplace_id, str) or marketplace_id not in MARKETPLACE_IDS:
        raise InvalidInput(INCORRECT_MARKETPLACE)
    identifier = _required(body, "Identifier", where)
    if not isinstance(identifier, str) or not identifier:
        raise InvalidInput(f"Invalid value for parameter '{where}.Identifier': expected a non-empty string.")
    fulfilled = body.get("IsAmazonFulfilled", False)
    if not isinstance(fulfilled, bool):
        raise InvalidInput(f"Invalid value '{fulfilled}' for parameter '{where}.IsAmazonFulfilled': expected true or false.")
    price_where = f"{where}.PriceToEstimateFees"
    price = _object(_required(body, "PriceToEstimateFees", where), price_where, "PriceToEstimateFees")
    listing_price = _money(_required(price, "ListingPrice", price_where), f"{price_where}.ListingPrice")
    shipping = _money(price["Shipping"], f"{price_where}.Shipping") if "Shipping" in price else None
    points_value = None
    if "Points" in price:
        points = _object(price["Points"], f"{price_where}.Points", "Points")
        number = points.get("PointsNumber", 0)
        if isinstance(number, bool) or not isinstance(number, int) or number < 0:
            raise InvalidInput(f"Invalid value '{number}' for parameter '{price_where}.Points.PointsNumber': expected an integer >= 0.")
        if "PointsMonetaryValue" in points:
            points_value = _money(points["PointsMonetaryValue"], f"{price_where}.Points.PointsMonetaryValue")
    program = body.get("OptionalFulfillmentProgram")
    if program is not None and program not in OPTIONAL_FULFILLMENT_PROGRAMS:
        raise InvalidInput(
            f"Invalid value '{program}' for parameter '{where}.OptionalFulfillmentProgram'; "
            f"allowed values: {', '.join(OPTIONAL_FULFILLMENT_PROGRAMS)}."
        )
    return EstimateRequest(marketplace_id, identifier, fulfilled, listing_price, shipping, points_value, price, program)


def parse_batch_item(value: Any, where: str) -> EstimateRequest:
    """Validate one FeesEstimateByIdRequest of a getMyFeesEstimates body; raises InvalidInput."""
    item = _object(value, where, "FeesEstimateByIdRequest")
    estimate = parse_estimate_request(item.get("FeesEstimateRequest"), f"{where}.FeesEstimateRequest")
    id_type = _required(item, "IdType", where)
    if id_type not in ID_TYPES:
        raise InvalidInput(f"Invalid value '{id_type}' for parameter '{where}.IdType'; allowed values: {', '.join(ID_TYPES)}.")
    id_value = _required(item, "IdValue", where)
    if not isinstance(id_value, str) or not id_value.strip():
        raise InvalidInput(f"Invalid value for parameter '{where}.IdValue': expected a non-empty string.")
    if id_type == "ASIN":
        id_value = asin_param(id_value, f"{where}.IdValue")
    return replace(estimate, id_type=id_type, id_value=id_value)


# =========================================================================== answers


def _money_json(amount: Decimal, currency: str) -> dict[str, Any]:
    return {"CurrencyCode": currency, "Amount": float(amount)}


def _fee_detail(fee_type: str, amount: Decimal, currency: str) -> dict[str, Any]:
    zero = _round(Decimal(0), currency)
    return {
        "FeeType": fee_type,
        "FeeAmount": _money_json(amount, currency),
        "FeePromotion": _money_json(zero, currency),
        "FinalFee": _money_json(amount, currency),
    }


def fee_detail_list(fees: FeeBreakdown) -> list[dict[str, Any]]:
    """The FeeDetailList of a breakdown: referral, closing and per-item fees, and the FBA fees when fulfilled by Amazon."""
    details = [
        _fee_detail("ReferralFee", fees.referral, fees.currency),
        _fee_detail("VariableClosingFee", fees.closing, fees.currency),
        _fee_detail("PerItemFee", fees.per_item, fees.currency),
    ]
    if fees.fulfilment is not None:
        fba = _fee_detail("FBAFees", fees.fulfilment, fees.currency)
        fba["IncludedFeeDetailList"] = [_fee_detail("FBAPerUnitFulfillmentFee", fees.fulfilment, fees.currency)]
        details.append(fba)
    return details


def _identifier(req: EstimateRequest) -> dict[str, Any]:
    identifier: dict[str, Any] = {
        "MarketplaceId": req.marketplace_id,
        "IdType": req.id_type,
        "SellerId": SELLER_ID,
        "SellerInputIdentifier": req.identifier,
        "IsAmazonFulfilled": req.amazon_fulfilled,
        "IdValue": req.id_value,
        "PriceToEstimateFees": copy.deepcopy(req.price_to_estimate_fees),
    }
    if req.program is not None:
        identifier["OptionalFulfillmentProgram"] = req.program
    return identifier


def _error_result(req: EstimateRequest, status: str, error_type: str, code: str, message: str) -> dict[str, Any]:
    return {
        "Status": status,
        "FeesEstimateIdentifier": _identifier(req),
        "Error": {"Type": error_type, "Code": code, "Message": message, "Detail": []},
    }


def _client_error(req: EstimateRequest, message: str) -> dict[str, Any]:
    return _error_result(req, CLIENT_ERROR, "Sender", "InvalidParameterValue", message)


def service_error_result(req: EstimateRequest) -> dict[str, Any]:
    """A per-item server-side failure inside a batch's 200 (option item_fault_rate)."""
    return _error_result(req, SERVICE_ERROR, "Receiver", "InternalFailure", "We encountered an internal error. Please try again.")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def estimate_result(options: EmulatorOptions, req: EstimateRequest) -> dict[str, Any]:
    """The FeesEstimateResult for one request: Success with the rate card's fees, or ClientError."""
    marketplace_id = req.marketplace_id
    if req.id_type == "SellerSKU":
        # The emulator's seller has no listings, so no SKU of theirs can be priced.
        return _client_error(req, f"SellerSKU {req.id_value} is not a listing of seller {SELLER_ID} in marketplace {marketplace_id}.")
    listing = catalog.listing(req.id_value, marketplace_id, options.not_found_prefix)
    if listing is None:
        return _client_error(req, f"ASIN {req.id_value} is not valid for marketplace {marketplace_id}.")
    monies = (("ListingPrice", req.listing_price), ("Shipping", req.shipping), ("Points.PointsMonetaryValue", req.points_value))
    for name, money in monies:
        if money is not None and money.currency != listing.currency:
            wrong = f"{name}.CurrencyCode {money.currency} is not valid for marketplace {marketplace_id}"
            return _client_error(req, f"{wrong}: its currency is {listing.currency}.")
    shipping = req.shipping.amount if req.shipping is not None else Decimal(0)
    fees = estimate_fees(listing, req.listing_price.amount, shipping, req.amazon_fulfilled)
    return {
        "Status": SUCCESS,
        "FeesEstimateIdentifier": _identifier(req),
        "FeesEstimate": {
            "TimeOfFeesEstimation": _now(),
            "TotalFeesEstimate": _money_json(fees.total, fees.currency),
            "FeeDetailList": fee_detail_list(fees),
        },
    }


def sandbox_examples() -> dict[str, Any]:
    """The models' static sandbox examples for both operations: {operation: {"request", "response"(, "asin")}}."""
    return load_fixture("sandbox_fees.json")


class _Body(NamedTuple):
    """The request body: its JSON value, or why there is none."""

    value: Any
    problem: str | None


def _read_body() -> _Body:
    raw = request.get_data(cache=True)
    if not raw.strip():
        return _Body(None, "Missing required parameter 'body'.")
    try:
        return _Body(json.loads(raw), None)
    except (ValueError, UnicodeDecodeError):
        return _Body(None, "Invalid value for parameter 'body': not a JSON document.")


def _answer_for_asin(options: EmulatorOptions, raw_asin: str, body: _Body) -> tuple[int, dict[str, Any]]:
    asin = asin_param(raw_asin, "Asin")
    if body.problem is not None:
        raise InvalidInput(body.problem)
    request_body = _object(body.value, "body", "GetMyFeesEstimateRequest")
    sandbox = sandbox_examples()[GET_MY_FEES_ESTIMATE_FOR_ASIN]
    if asin == sandbox["asin"] and without_nulls(request_body.get("FeesEstimateRequest")) == sandbox["request"]["FeesEstimateRequest"]:
        return 200, sandbox["response"]
    req = parse_estimate_request(request_body.get("FeesEstimateRequest"), "FeesEstimateRequest")
    return 200, {"payload": {"FeesEstimateResult": estimate_result(options, replace(req, id_value=asin))}}


def _answer_batch(state: EmulatorState, body: _Body) -> tuple[int, list[Any]]:
    if body.problem is not None:
        raise InvalidInput(body.problem)
    if not isinstance(body.value, list):
        raise InvalidInput("Invalid value for parameter 'body': expected a JSON array of FeesEstimateByIdRequest objects.")
    sandbox = sandbox_examples()[GET_MY_FEES_ESTIMATES]
    if without_nulls(body.value) == sandbox["request"]:
        return 200, sandbox["response"]
    if not 1 <= len(body.value) <= MAX_BATCH:
        raise InvalidInput(f"Parameter 'body' takes 1 to {MAX_BATCH} FeesEstimateByIdRequest objects; {len(body.value)} were given.")
    requests = [parse_batch_item(item, f"body[{index}]") for index, item in enumerate(body.value)]
    options = state.options
    results = []
    for req in requests:
        # Drawn only when the knob is on, so the other faults' seeded sequence does not shift.
        faulted = options.item_fault_rate > 0 and state.draw_item_fault()
        results.append(service_error_result(req) if faulted else estimate_result(options, req))
    # SP-API does not promise the request order: results come in a fixed order of their own, to be
    # matched by SellerInputIdentifier (as searchCatalogItems' items are matched by ASIN).
    order = sorted(range(len(requests)), key=lambda i: (_order_key(requests[i]), i))
    return 200, [results[i] for i in order]


def _order_key(req: EstimateRequest) -> str:
    return hashlib.sha256(f"{req.marketplace_id}|{req.id_value}|{req.identifier}".encode()).hexdigest()


def _logged_marketplace(estimate: Any) -> str | None:
    value = estimate.get("MarketplaceId") if isinstance(estimate, dict) else None
    return value if isinstance(value, str) and value else None


def _batch_call(body: _Body) -> Call:
    """The call log's view of a batch: the ASINs of its ASIN requests, its marketplaces (comma-joined)."""
    items = [item for item in body.value if isinstance(item, dict)] if isinstance(body.value, list) else []
    asins = [item["IdValue"] for item in items if item.get("IdType") == "ASIN" and isinstance(item.get("IdValue"), str)]
    marketplaces = [_logged_marketplace(item.get("FeesEstimateRequest")) for item in items]
    joined = ",".join(dict.fromkeys(m for m in marketplaces if m is not None)) or None
    return Call(GET_MY_FEES_ESTIMATES, asins, joined)


def register(app: Flask, state: EmulatorState) -> None:
    """Add Product Fees v0's getMyFeesEstimateForASIN and getMyFeesEstimates to the emulator's app."""

    @app.post("/products/fees/v0/items/<asin>/feesEstimate")
    def get_my_fees_estimate_for_asin(asin: str) -> Response:
        """getMyFeesEstimateForASIN: the fees of one ASIN at one price."""
        body = _read_body()
        estimate = body.value.get("FeesEstimateRequest") if isinstance(body.value, dict) else None
        call = Call(GET_MY_FEES_ESTIMATE_FOR_ASIN, [asin], _logged_marketplace(estimate))
        return answer_call(state, call, lambda: _answer_for_asin(state.options, asin, body))

    @app.post("/products/fees/v0/feesEstimate")
    def get_my_fees_estimates() -> Response:
        """getMyFeesEstimates: the fees of up to 20 items, each at its own price."""
        body = _read_body()
        return answer_call(state, _batch_call(body), lambda: _answer_batch(state, body))
