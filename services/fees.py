"""Product Fees v0: the fees of items at given prices, through the guarded SP-API transport.

python-amazon-sp-api's fee-request helper uses the price as `Identifier` when given none, so two
items at one price would be told apart only by position, which SP-API does not promise: every
request here carries an identifier of its own, and results are matched by
`FeesEstimateIdentifier.SellerInputIdentifier`. Items that fail inside a 200 (Status ServiceError)
are asked again alone (`SpApiClient.retry_items`), never the whole batch.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from services import errors
from services.datasets import dataset, dataset_error
from services.errors import ServiceError
from services.fees_item import fees_facts
from services.spapi import CallCount, SpApiClient
from utils.marketplaces import CURRENCIES, Marketplace

# getMyFeesEstimates takes up to 20 FeesEstimateByIdRequest (productFeesV0.json). One request alone goes
# to getMyFeesEstimateForASIN instead: its plan (1/s, burst 2) beats the batch's (0.5/s, burst 1).
MAX_BATCH = 20
# FeesEstimateResult.Status values (productFeesV0.json).
SUCCESS, CLIENT_ERROR, SERVICE_ERROR = "Success", "ClientError", "ServiceError"

# What one request got: its FeesEstimateResult, or the failure of the call that carried it.
Answer = dict[str, Any] | ServiceError


@dataclass(frozen=True)
class FeeRequest:
    """The fees of one ASIN at one price (in the marketplace's currency), fulfilled by Amazon unless said otherwise."""

    asin: str
    price: float
    fulfilled_by_amazon: bool = True


def fees_estimates(
    spapi: SpApiClient, marketplace: Marketplace, requests: Iterable[FeeRequest], count: CallCount | None = None
) -> dict[FeeRequest, dict[str, Any]]:
    """The fees dataset of every distinct request (each asked once, 20 a call), or that request's own error."""
    distinct = list(dict.fromkeys(requests))
    if not distinct:
        return {}
    identifiers = {request: f"fees-{index}" for index, request in enumerate(distinct)}

    def fetch(keys: list[FeeRequest]) -> dict[FeeRequest, Answer]:
        if len(keys) == 1:
            return {keys[0]: _estimate_one(spapi, marketplace, keys[0], count)}
        answers: dict[FeeRequest, Answer] = {}
        for start in range(0, len(keys), MAX_BATCH):
            answers.update(_estimate_batch(spapi, marketplace, keys[start : start + MAX_BATCH], identifiers, count))
        return answers

    operation = "getMyFeesEstimateForASIN" if len(distinct) == 1 else "getMyFeesEstimates"
    answers = spapi.retry_items(operation, marketplace, distinct, fetch, _failed_inside)
    return {request: _dataset(request, answers[request]) for request in distinct}


def _fees_body(marketplace: Marketplace, request: FeeRequest) -> dict[str, Any]:
    """The library's fee-request arguments: FBA unless asked otherwise (the library's is_fba defaults to False)."""
    return {
        "price": request.price,
        "currency": CURRENCIES[marketplace.code],
        "is_fba": request.fulfilled_by_amazon,
        "marketplace_id": marketplace.marketplace_id,
    }


def _estimate_one(spapi: SpApiClient, marketplace: Marketplace, request: FeeRequest, count: CallCount | None) -> Answer:
    """getMyFeesEstimateForASIN for one request: its FeesEstimateResult, or the call's failure."""

    def call(client: Any) -> Any:
        return client.get_product_fees_estimate_for_asin(request.asin, **_fees_body(marketplace, request))

    try:
        response = spapi.call(marketplace, "getMyFeesEstimateForASIN", 1, call, count, family="fees")
    except ServiceError as failure:
        return failure
    result = (response.payload or {}).get("FeesEstimateResult")
    return result if isinstance(result, dict) else _no_result(request)


def _estimate_batch(
    spapi: SpApiClient, marketplace: Marketplace, chunk: list[FeeRequest], identifiers: dict[FeeRequest, str], count: CallCount | None
) -> dict[FeeRequest, Answer]:
    """getMyFeesEstimates for up to 20 requests, each result matched to its request by its own identifier."""
    estimates = [
        {**_fees_body(marketplace, request), "identifier": identifiers[request], "id_type": "ASIN", "id_value": request.asin}
        for request in chunk
    ]

    def call(client: Any) -> Any:
        return client.get_my_fees_estimates(estimates)

    try:
        response = spapi.call(marketplace, "getMyFeesEstimates", len(chunk), call, count, family="fees")
    except ServiceError as failure:
        return dict.fromkeys(chunk, failure)
    payload = response.payload if isinstance(response.payload, list) else []
    by_identifier = {
        (result.get("FeesEstimateIdentifier") or {}).get("SellerInputIdentifier"): result for result in payload if isinstance(result, dict)
    }
    return {request: by_identifier.get(identifiers[request]) or _no_result(request) for request in chunk}


def _no_result(request: FeeRequest) -> ServiceError:
    return ServiceError(errors.UPSTREAM_ERROR, f"SP-API answered no fees estimate for {request.asin} at {request.price:g}")


def _failed_inside(answer: Answer) -> bool:
    """True for a result SP-API failed on its side inside the 200 (Status ServiceError): worth asking again alone."""
    return isinstance(answer, dict) and answer.get("Status") == SERVICE_ERROR


def _dataset(request: FeeRequest, answer: Answer) -> dict[str, Any]:
    """The request's fees dataset: the facts of a Success, else its own error."""
    if isinstance(answer, ServiceError):
        return dataset_error(answer)
    status = answer.get("Status")
    if status == SUCCESS:
        return dataset(fees_facts(answer))
    error = answer.get("Error") or {}
    detail = " ".join(str(part) for part in (error.get("Code"), error.get("Message")) if part)
    if status == CLIENT_ERROR:
        # The request is well-formed and in the marketplace's currency: SP-API does not know the ASIN there.
        return dataset_error(ServiceError(errors.NOT_FOUND, detail or f"ASIN {request.asin} cannot be priced in this marketplace"))
    return dataset_error(ServiceError(errors.UPSTREAM_ERROR, f"SP-API could not estimate the fees ({status}): {detail}".rstrip(": ")))
