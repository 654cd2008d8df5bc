"""Product Pricing v0: getCompetitivePricing, getItemOffers and getItemOffersBatch (shared/reference/productPricingV0.json).

Routes, parameter validation and the model's sandbox examples; the offers themselves come from
emulator/offers.py, derived from the catalog's listing of each item. Every call goes through
`answer_call`, so the token check, the usage plan (emulator/plans.py), the faults and the call
log work as for the catalog.

* Unknown items (the catalog has no such ASIN in the marketplace) answer as SP-API does: a
  `ClientError` entry in getCompetitivePricing's payload, and "<ASIN> is an invalid ASIN for
  marketplace <id>" (400 InvalidInput) from getItemOffers and inside a batch's 200.
* The model's `x-amzn-api-sandbox` examples (vendored in fixtures/pricing_sandbox.json) are
  answered verbatim, in the US marketplace, for the items they name: B00V5DG6IQ and B00551Q3CS in
  getCompetitivePricing (and the example SKUs), B00V5DG6IQ and the ten ASINs of the batch
  example in getItemOffers and getItemOffersBatch (ItemCondition New).
"""

from __future__ import annotations

import copy
import email.utils
import functools
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, request

from emulator.calls import FAULTS, Call, answer_call, error_list
from emulator.catalog import MARKETPLACE_IDS, is_valid_asin, normalize_asin
from emulator.defaults import MARKETPLACES
from emulator.examples import load_fixture
from emulator.offers import CONDITIONS, CUSTOMER_TYPES, competitive_price, offer_book, offers_result
from emulator.options import EmulatorOptions
from emulator.params import InvalidInput, QueryArgs, csv_param
from emulator.plans import GET_COMPETITIVE_PRICING, GET_ITEM_OFFERS, GET_ITEM_OFFERS_BATCH
from emulator.state import EmulatorState

# The model: Asins and Skus maxItems 20; ItemOffersRequestList minItems 1, maxItems 20.
MAX_ITEMS = 20
MAX_BATCH_REQUESTS = 20
ITEM_TYPES = ("Asin", "Sku")
SANDBOX_MARKETPLACE_ID = MARKETPLACES["US"]
# SP-API's answer to a batch naming one item twice (it has no entry in the model).
DUPLICATE_REQUESTS = "Duplicate requests submitted.  Cannot run batch request."
OFFERS_URI = re.compile(r"/products/pricing/v0/items/([^/?#]*)/offers")

_REASONS = {200: "OK", 400: "Bad Request", 500: "Internal Server Error"}


def register(app: Flask, state: EmulatorState) -> None:
    """Add the Product Pricing v0 operations to the emulator app."""

    @app.get("/products/pricing/v0/competitivePrice")
    def get_competitive_pricing() -> Response:
        """getCompetitivePricing: the Buy Boxes and offer counts of up to 20 ASINs (or SKUs)."""
        args = request.args
        sku = args.get("ItemType") == "Sku"
        asked = csv_param(args, "Skus" if sku else "Asins") or []
        call = Call(GET_COMPETITIVE_PRICING, asked, args.get("MarketplaceId") or None, "Sku" if sku else None)
        return answer_call(state, call, lambda: _competitive_pricing(state.options, args))

    @app.get("/products/pricing/v0/items/<path:asin>/offers")
    def get_item_offers(asin: str) -> Response:
        """getItemOffers: the lowest-priced offers on one ASIN for one condition."""
        args = request.args
        call = Call(GET_ITEM_OFFERS, [asin], args.get("MarketplaceId") or None)
        return answer_call(state, call, lambda: _item_offers(state.options, asin, args))

    @app.post("/batches/products/pricing/v0/itemOffers")
    def get_item_offers_batch() -> Response:
        """getItemOffersBatch: up to 20 getItemOffers requests, answered in one 200 in request order."""
        body = request.get_json(force=True, silent=True)
        asins, marketplace_id = _batch_log_fields(body)
        call = Call(GET_ITEM_OFFERS_BATCH, asins, marketplace_id)
        return answer_call(state, call, lambda: _item_offers_batch(state, body))


# --------------------------------------------------------------------------- validation


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _marketplace(value: Any, name: str) -> str:
    if value is None or value == "":
        raise InvalidInput(f"Missing required parameter '{name}'.")
    if not isinstance(value, str) or value not in MARKETPLACE_IDS:
        raise InvalidInput(f"Invalid value '{_text(value)}' for parameter '{name}': not a marketplace identifier.")
    return value


def _choice(value: Any, name: str, allowed: tuple[str, ...], default: str | None = None) -> str:
    if value is None or value == "":
        if default is None:
            raise InvalidInput(f"Missing required parameter '{name}'.")
        return default
    if value not in allowed:
        raise InvalidInput(f"Invalid value '{_text(value)}' for parameter '{name}'; allowed values: {', '.join(allowed)}.")
    return value


def _asin(value: str, name: str) -> str:
    if not is_valid_asin(value):
        raise InvalidInput(f"Invalid value '{value}' for parameter '{name}': an ASIN is 10 letters or digits.")
    return normalize_asin(value)


def _invalid_asin(asin: str, marketplace_id: str) -> dict[str, Any]:
    # SP-API's wording for an ASIN the marketplace does not have.
    return error_list("InvalidInput", f"{asin} is an invalid ASIN for marketplace {marketplace_id}")


# --------------------------------------------------------------------------- sandbox examples


@functools.lru_cache(maxsize=1)
def _sandbox() -> dict[str, list[dict[str, Any]]]:
    return load_fixture("pricing_sandbox.json")


@functools.lru_cache(maxsize=1)
def _sandbox_prices() -> dict[tuple[str, str, str], dict[str, Any]]:
    """(ItemType, ASIN or SKU, CustomerType or "*") -> the getCompetitivePricing examples' payload entry."""
    table: dict[tuple[str, str, str], dict[str, Any]] = {}
    for example in _sandbox()[GET_COMPETITIVE_PRICING]:
        parameters = example["request"]["parameters"]
        item_type = parameters["ItemType"]["value"]
        # An example without CustomerType answers any (the Business one, where there is one, wins).
        customer = parameters.get("CustomerType", {}).get("value", "*")
        for entry in example["response"]["payload"]:
            identifier = entry["ASIN"] if item_type == "Asin" else entry["SellerSKU"]
            table[(item_type, identifier, customer)] = entry
    return table


def _sandbox_price(item_type: str, identifier: str, marketplace_id: str, customer_type: str) -> dict[str, Any] | None:
    if marketplace_id != SANDBOX_MARKETPLACE_ID:
        return None
    table = _sandbox_prices()
    entry = table.get((item_type, identifier, customer_type)) or table.get((item_type, identifier, "*"))
    return copy.deepcopy(entry) if entry is not None else None


@functools.lru_cache(maxsize=1)
def _sandbox_offers() -> dict[tuple[str, str], dict[str, Any]]:
    """(ASIN, CustomerType) -> the batch entry the examples give for ItemCondition New in the US."""
    table: dict[tuple[str, str], dict[str, Any]] = {}
    for example in _sandbox()[GET_ITEM_OFFERS]:
        parameters = example["request"]["parameters"]
        asin = parameters["Asin"]["value"]
        customer = parameters.get("CustomerType", {}).get("value", "Consumer")
        table[(asin, customer)] = {"status": {"statusCode": 200, "reasonPhrase": "OK"}, "body": example["response"]}
    for example in _sandbox()[GET_ITEM_OFFERS_BATCH]:
        for entry in example["response"]["responses"]:
            sent = entry["request"]
            table[(sent["Asin"], sent.get("CustomerType", "Consumer"))] = entry
    return table


def _sandbox_offers_entry(asin: str, marketplace_id: str, condition: str, customer_type: str) -> dict[str, Any] | None:
    if marketplace_id != SANDBOX_MARKETPLACE_ID or condition != "New":
        return None
    entry = _sandbox_offers().get((asin, customer_type))
    return copy.deepcopy(entry) if entry is not None else None


# --------------------------------------------------------------------------- getCompetitivePricing


def _competitive_pricing(options: EmulatorOptions, args: QueryArgs) -> tuple[int, dict[str, Any]]:
    marketplace_id = _marketplace(args.get("MarketplaceId"), "MarketplaceId")
    item_type = _choice(args.get("ItemType"), "ItemType", ITEM_TYPES)
    customer_type = _choice(args.get("CustomerType"), "CustomerType", CUSTOMER_TYPES, "Consumer")
    name = f"{item_type}s"
    values = csv_param(args, name)
    if not values:
        raise InvalidInput(f"Parameter '{name}' is required when 'ItemType' is {item_type}.")
    if len(values) > MAX_ITEMS:
        raise InvalidInput(f"Parameter '{name}' accepts at most {MAX_ITEMS} values; {len(values)} were given.")
    if item_type == "Sku":
        return 200, {"payload": [_sku_price(sku, marketplace_id, customer_type) for sku in values]}
    asins = [_asin(value, name) for value in values]
    return 200, {"payload": [_asin_price(options, asin, marketplace_id, customer_type) for asin in asins]}


def _asin_price(options: EmulatorOptions, asin: str, marketplace_id: str, customer_type: str) -> dict[str, Any]:
    sandbox = _sandbox_price("Asin", asin, marketplace_id, customer_type)
    if sandbox is not None:
        return sandbox
    book = offer_book(asin, marketplace_id, options.not_found_prefix)
    if book is None:
        return {"status": "ClientError", "ASIN": asin, **_invalid_asin(asin, marketplace_id)}
    return competitive_price(book, customer_type)


def _sku_price(sku: str, marketplace_id: str, customer_type: str) -> dict[str, Any]:
    sandbox = _sandbox_price("Sku", sku, marketplace_id, customer_type)
    if sandbox is not None:
        return sandbox
    # The emulator's seller has no listings: every other SKU is unknown.
    unknown = error_list("InvalidInput", f"{sku} is an invalid SKU for marketplace {marketplace_id}")
    return {"status": "ClientError", "SellerSKU": sku, **unknown}


# --------------------------------------------------------------------------- getItemOffers


def _item_offers(options: EmulatorOptions, asin: str, args: QueryArgs) -> tuple[int, dict[str, Any]]:
    asin = _asin(asin, "Asin")
    marketplace_id = _marketplace(args.get("MarketplaceId"), "MarketplaceId")
    condition = _choice(args.get("ItemCondition"), "ItemCondition", CONDITIONS)
    customer_type = _choice(args.get("CustomerType"), "CustomerType", CUSTOMER_TYPES, "Consumer")
    return _offers_answer(options, asin, marketplace_id, condition, customer_type)


def _offers_answer(
    options: EmulatorOptions, asin: str, marketplace_id: str, condition: str, customer_type: str
) -> tuple[int, dict[str, Any]]:
    """getItemOffers' (status, body) for a validated request, sandbox examples included."""
    sandbox = _sandbox_offers_entry(asin, marketplace_id, condition, customer_type)
    if sandbox is not None:
        return sandbox["status"]["statusCode"], sandbox["body"]
    book = offer_book(asin, marketplace_id, options.not_found_prefix)
    if book is None:
        return 400, _invalid_asin(asin, marketplace_id)
    return 200, {"payload": offers_result(book, condition, customer_type)}


# --------------------------------------------------------------------------- getItemOffersBatch


@dataclass(frozen=True)
class _BatchItem:
    """One validated request of a batch; `asin` is the uri's ASIN as sent (it is checked per item)."""

    asin: str
    marketplace_id: str
    condition: str
    customer_type: str | None  # as sent; None means Consumer

    def echo(self) -> dict[str, Any]:
        """The `request` of the item's response: its parameters as the model's ItemOffersRequestParams names them."""
        echoed: dict[str, Any] = {"MarketplaceId": self.marketplace_id, "Asin": self.asin}
        if self.customer_type is not None:
            echoed["CustomerType"] = self.customer_type
        echoed["ItemCondition"] = self.condition
        return echoed


def _batch_log_fields(body: Any) -> tuple[list[str], str | None]:
    """The ASINs and marketplaces a batch body names, for the call log, however malformed the body."""
    requests = body.get("requests") if isinstance(body, dict) else None
    asins: list[str] = []
    marketplaces: list[str] = []
    for item in requests if isinstance(requests, list) else []:
        if not isinstance(item, dict):
            continue
        match = OFFERS_URI.fullmatch(item["uri"]) if isinstance(item.get("uri"), str) else None
        if match is not None:
            asins.append(match.group(1))
        if isinstance(item.get("MarketplaceId"), str) and item["MarketplaceId"]:
            marketplaces.append(item["MarketplaceId"])
    return asins, ",".join(dict.fromkeys(marketplaces)) or None


def _batch_items(body: Any) -> list[_BatchItem]:
    """Validate a getItemOffersBatch body (GetItemOffersBatchRequest); raises InvalidInput for the whole batch."""
    if not isinstance(body, dict) or "requests" not in body:
        raise InvalidInput("Missing required parameter 'requests': the body is a JSON object {\"requests\": [...]}.")
    requests = body["requests"]
    if not isinstance(requests, list) or not requests:
        raise InvalidInput(f"Parameter 'requests' must be a list of 1 to {MAX_BATCH_REQUESTS} requests.")
    if len(requests) > MAX_BATCH_REQUESTS:
        raise InvalidInput(f"Parameter 'requests' accepts at most {MAX_BATCH_REQUESTS} requests; {len(requests)} were given.")
    items = []
    for index, sent in enumerate(requests):
        where = f"requests[{index}]"
        if not isinstance(sent, dict):
            raise InvalidInput(f"Invalid value for parameter '{where}': each request is a JSON object.")
        uri = sent.get("uri")
        match = OFFERS_URI.fullmatch(uri) if isinstance(uri, str) else None
        if match is None:
            expected = "/products/pricing/v0/items/{Asin}/offers"
            raise InvalidInput(f"Invalid value '{_text(uri)}' for parameter '{where}.uri': expected {expected}.")
        if sent.get("method") != "GET":
            raise InvalidInput(f"Invalid value '{_text(sent.get('method'))}' for parameter '{where}.method': getItemOffers is a GET.")
        headers = sent.get("headers")
        if headers is not None and not (isinstance(headers, dict) and all(isinstance(v, str) for v in headers.values())):
            raise InvalidInput(f"Invalid value for parameter '{where}.headers': a JSON object of strings.")
        customer_type = sent.get("CustomerType")
        items.append(
            _BatchItem(
                asin=match.group(1),
                marketplace_id=_marketplace(sent.get("MarketplaceId"), f"{where}.MarketplaceId"),
                condition=_choice(sent.get("ItemCondition"), f"{where}.ItemCondition", CONDITIONS),
                customer_type=None if customer_type is None else _choice(customer_type, f"{where}.CustomerType", CUSTOMER_TYPES),
            )
        )
    asins = [normalize_asin(item.asin) for item in items]
    if len(set(asins)) != len(asins):
        raise InvalidInput(DUPLICATE_REQUESTS)
    return items


def _item_offers_batch(state: EmulatorState, body: Any) -> tuple[int, dict[str, Any]]:
    items = _batch_items(body)
    options = state.options
    responses = []
    for item in items:
        if options.item_fault_rate > 0 and state.draw_item_fault():
            code, message = FAULTS[500]
            responses.append(_batch_entry(item, 500, error_list(code, message)))
        else:
            responses.append(_batch_answer(options, item))
    return 200, {"responses": responses}


def _batch_answer(options: EmulatorOptions, item: _BatchItem) -> dict[str, Any]:
    customer_type = item.customer_type or "Consumer"
    if not is_valid_asin(item.asin):
        return _batch_entry(item, 400, _invalid_asin(item.asin, item.marketplace_id))
    asin = normalize_asin(item.asin)
    sandbox = _sandbox_offers_entry(asin, item.marketplace_id, item.condition, customer_type)
    if sandbox is not None and "request" in sandbox:  # the batch example's own entry, verbatim
        return sandbox
    status, body = _offers_answer(options, asin, item.marketplace_id, item.condition, customer_type)
    return _batch_entry(item, status, body)


def _batch_entry(item: _BatchItem, status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "status": {"statusCode": status, "reasonPhrase": _REASONS[status]},
        "body": body,
        "headers": {"x-amzn-RequestId": str(uuid.uuid4()), "Date": email.utils.formatdate(usegmt=True)},
        "request": item.echo(),
    }
