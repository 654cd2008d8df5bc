"""FBA Inbound Eligibility v1: may an item be sent to Amazon's fulfilment centres, through the guarded SP-API transport."""

from __future__ import annotations

from typing import Any

from services.datasets import dataset, dataset_error
from services.eligibility_item import INBOUND, eligibility_facts
from services.errors import ServiceError
from services.spapi import CallCount, SpApiClient
from utils.marketplaces import Marketplace


def inbound_eligibility(spapi: SpApiClient, marketplace: Marketplace, asin: str, count: CallCount | None = None) -> dict[str, Any]:
    """getItemEligibilityPreview for one ASIN, program INBOUND, in the marketplace: the dataset, or its own error."""

    def call(client: Any) -> Any:
        # marketplaceIds is required for INBOUND, one marketplace (fbaInbound.json: maxItems 1).
        return client.get_item_eligibility_preview(asin=asin, program=INBOUND, marketplaceIds=marketplace.marketplace_id)

    try:
        response = spapi.call(marketplace, "getItemEligibilityPreview", 1, call, count, family="eligibility")
    except ServiceError as failure:
        return dataset_error(failure)
    payload = response.payload if isinstance(response.payload, dict) else {}
    return dataset(eligibility_facts(payload))
