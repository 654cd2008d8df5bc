"""Product Pricing v0: the Buy Box and offer counts (getCompetitivePricing) and the offers (getItemOffers, getItemOffersBatch) of ASINs.

Every call goes through SpApiClient.call (the one guarded transport) with the family's library client.
Each function answers every distinct ASIN exactly once: its dataset (services/pricing_item.py's facts
and a `fetched_at`, services/datasets.py) or `{"error": {...}}` in its place, so that a dataset that fails fails on its own.
ASINs are expected as utils/asins.normalize_asin gives them.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from services import errors
from services.datasets import dataset, dataset_error
from services.errors import ServiceError
from services.pricing_item import dicts, offers_facts, pricing_facts
from services.spapi import CallCount, SpApiClient, status_failure_code
from utils.marketplaces import CURRENCIES, Marketplace, amazon_seller_id

# getCompetitivePricing's Asins and getItemOffersBatch's requests take at most 20 items (the model: maxItems 20).
MAX_ASINS_PER_CALL = 20
# The buyer whose offers getItemOffersBatch asks for (ItemOffersRequest.CustomerType; Consumer is getItemOffers' default).
CUSTOMER_TYPE = "Consumer"
# SP-API's wording, inside a 400 InvalidInput, for an ASIN the marketplace does not have.
_UNKNOWN_ASIN = "is an invalid ASIN"


def _chunks(asins: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(asins), MAX_ASINS_PER_CALL):
        yield asins[start : start + MAX_ASINS_PER_CALL]


def _item_failure(operation: str, asin: str, status: int | None, errors_list: Any) -> ServiceError:
    """The ServiceError of an item SP-API answered with an error inside a 200 (or as the whole answer of one item)."""
    error = errors_list[0] if isinstance(errors_list, list) and errors_list and isinstance(errors_list[0], dict) else {}
    amzn_code, message = error.get("code") or "", error.get("message") or ""
    said = " ".join(str(part) for part in (status, amzn_code) if part) or "an error"
    described = f"SP-API {operation} answered {said} for {asin}" + (f": {message}" if message else "")
    code = errors.NOT_FOUND if _UNKNOWN_ASIN in message else status_failure_code(status)
    if code == errors.NOT_FOUND:
        return ServiceError(code, message or f"{asin} is not in the catalog")
    return ServiceError(code, described, retry_after=1.0 if code == errors.THROTTLED else None)


def _not_found_if_unknown(failure: ServiceError) -> ServiceError:
    """A whole-call 400 that says the ASIN is unknown is the item's NOT_FOUND."""
    if failure.code == errors.UPSTREAM_REJECTED and _UNKNOWN_ASIN in failure.message:
        return ServiceError(errors.NOT_FOUND, failure.message)
    return failure


def _in_currency(facts: dict[str, Any], marketplace: Marketplace) -> dict[str, Any]:
    """The facts with their currency named even where SP-API listed no price: the marketplace's."""
    return {**facts, "currency": facts["currency"] or CURRENCIES[marketplace.code]}


# --------------------------------------------------------------------------- getCompetitivePricing


def competitive_pricing(spapi: SpApiClient, marketplace: Marketplace, asins: list[str], count: CallCount | None = None) -> dict[str, dict]:
    """getCompetitivePricing, 20 ASINs a call: each distinct ASIN's pricing facts, or its error."""
    results: dict[str, dict] = {}
    for chunk in _chunks(list(dict.fromkeys(asins))):
        results.update(_pricing_chunk(spapi, marketplace, chunk, count))
    return results


def _pricing_chunk(spapi: SpApiClient, marketplace: Marketplace, chunk: list[str], count: CallCount | None) -> dict[str, dict]:
    def call(client: Any) -> Any:
        return client.get_competitive_pricing_for_asins(chunk).payload

    try:
        payload = spapi.call(marketplace, "getCompetitivePricing", len(chunk), call, count, family="pricing")
    except ServiceError as failure:
        return {asin: dataset_error(failure) for asin in chunk}
    by_asin = (
        {e["ASIN"].upper(): e for e in payload if isinstance(e, dict) and isinstance(e.get("ASIN"), str)}
        if isinstance(payload, list)
        else {}
    )
    results: dict[str, dict] = {}
    for asin in chunk:
        entry = by_asin.get(asin.upper())
        if entry is None:
            results[asin] = dataset_error(ServiceError(errors.UPSTREAM_ERROR, f"SP-API getCompetitivePricing answered nothing for {asin}"))
        elif entry.get("status") != "Success":
            # A ClientError entry (unknown ASIN: 400 InvalidInput) or a ServerError one, inside the 200.
            status = 400 if entry.get("status") == "ClientError" else 500
            results[asin] = dataset_error(_item_failure("getCompetitivePricing", asin, status, entry.get("errors")))
        else:
            results[asin] = dataset(_in_currency(pricing_facts(entry), marketplace))
    return results


# --------------------------------------------------------------------------- getItemOffers, getItemOffersBatch


@dataclass(frozen=True)
class _OffersAnswer:
    """One ASIN's answer: its GetOffersResult, or a failure; `again` when it failed inside a batch's 200 and asking again may cure it."""

    payload: dict[str, Any] | None = None
    failure: ServiceError | None = None
    again: bool = False


def item_offers(
    spapi: SpApiClient, marketplace: Marketplace, asins: list[str], count: CallCount | None = None, *, condition: str = "New"
) -> dict[str, dict]:
    """The offers of `condition`, 20 ASINs a getItemOffersBatch (one alone: getItemOffers): each distinct ASIN's offers facts, or its error.

    Items that fail inside a batch's 200 (5xx, 429) are asked again alone (SpApiClient.retry_items), never the whole batch.
    """
    amazon = amazon_seller_id(marketplace.code)
    fetch = functools.partial(_fetch_offers, spapi, marketplace, condition, count)
    results: dict[str, dict] = {}
    for chunk in _chunks(list(dict.fromkeys(asins))):
        operation = "getItemOffersBatch" if len(chunk) > 1 else "getItemOffers"
        answers = spapi.retry_items(operation, marketplace, chunk, fetch, lambda answer: answer.again)
        for asin in chunk:
            answer = answers[asin]
            if answer.payload is not None:
                results[asin] = dataset(_in_currency(offers_facts(answer.payload, amazon), marketplace))
            else:
                assert answer.failure is not None
                results[asin] = dataset_error(answer.failure)
    return results


def _fetch_offers(
    spapi: SpApiClient, marketplace: Marketplace, condition: str, count: CallCount | None, asins: list[str]
) -> dict[str, _OffersAnswer]:
    """Ask SP-API once for the offers of `asins` (distinct, at most 20): getItemOffers for one, getItemOffersBatch for more."""
    if len(asins) == 1:
        # getItemOffers' plan (0.5/s) beats the batch's (0.1/s) for a single item (the model's usage plans).
        return {asins[0]: _single_offers(spapi, marketplace, condition, count, asins[0])}
    requests = [
        {
            "uri": f"/products/pricing/v0/items/{asin}/offers",
            "method": "GET",
            # Top-level fields of each ItemOffersRequest (the model), not query parameters.
            "MarketplaceId": marketplace.marketplace_id,
            "ItemCondition": condition,
            "CustomerType": CUSTOMER_TYPE,
        }
        for asin in asins
    ]

    def call(client: Any) -> Any:
        return client.get_item_offers_batch(requests).payload

    try:
        payload = spapi.call(marketplace, "getItemOffersBatch", len(asins), call, count, family="pricing")
    except ServiceError as failure:
        return {asin: _OffersAnswer(failure=failure) for asin in asins}
    responses = dicts(payload.get("responses") if isinstance(payload, dict) else None)
    # Each response echoes its request's Asin; SP-API answers in request order, the fallback where one does not.
    if all(_request_asin(response) for response in responses):
        by_asin = {_request_asin(response): response for response in responses}
    else:
        by_asin = dict(zip((asin.upper() for asin in asins), responses, strict=False))
    return {asin: _batch_item(asin, by_asin.get(asin.upper())) for asin in asins}


def _single_offers(spapi: SpApiClient, marketplace: Marketplace, condition: str, count: CallCount | None, asin: str) -> _OffersAnswer:
    def call(client: Any) -> Any:
        return client.get_item_offers(asin, condition, CUSTOMER_TYPE).payload

    try:
        payload = spapi.call(marketplace, "getItemOffers", 1, call, count, family="pricing")
    except ServiceError as failure:
        return _OffersAnswer(failure=_not_found_if_unknown(failure))
    if not isinstance(payload, dict):
        return _OffersAnswer(failure=ServiceError(errors.UPSTREAM_ERROR, f"SP-API getItemOffers answered no payload for {asin}"))
    return _OffersAnswer(payload=payload)


def _request_asin(response: dict[str, Any]) -> str:
    request = response.get("request")
    asin = request.get("Asin") if isinstance(request, dict) else None
    return asin.upper() if isinstance(asin, str) else ""


def _batch_item(asin: str, response: dict[str, Any] | None) -> _OffersAnswer:
    """One ItemOffersResponse of a batch's 200: its payload, or its own failure (5xx and 429 worth asking again)."""
    if response is None:
        failure = ServiceError(errors.UPSTREAM_ERROR, f"SP-API getItemOffersBatch answered nothing for {asin}")
        return _OffersAnswer(failure=failure, again=True)
    status_line = response.get("status") if isinstance(response.get("status"), dict) else {}
    status = status_line.get("statusCode") if isinstance(status_line.get("statusCode"), int) else None
    body = response.get("body") if isinstance(response.get("body"), dict) else {}
    if status == 200 and isinstance(body.get("payload"), dict):
        return _OffersAnswer(payload=body["payload"])
    failure = _item_failure("getItemOffersBatch", asin, status, body.get("errors"))
    return _OffersAnswer(failure=failure, again=errors.is_transient(failure.code))
