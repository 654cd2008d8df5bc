"""Listings Restrictions 2021-08-01: may the seller list an item new, through the guarded SP-API transport."""

from __future__ import annotations

from typing import Any

from services import errors
from services.datasets import dataset, dataset_error
from services.errors import ServiceError
from services.restrictions_item import NEW_CONDITION, restrictions_facts
from services.spapi import CallCount, SpApiClient
from utils.marketplaces import Marketplace


def listing_restrictions(
    spapi: SpApiClient, marketplace: Marketplace, asin: str, seller_id: str, count: CallCount | None = None
) -> dict[str, Any]:
    """getListingsRestrictions for one ASIN, new, as seller `seller_id` (a merchant token): the dataset, or its own error."""
    if not seller_id:
        missing = ServiceError(errors.SELLER_ID_MISSING, "Listing restrictions need the seller's merchant token: set SELLER_ID")
        return dataset_error(missing, fetched=False)

    def call(client: Any) -> Any:
        # sellerId and marketplaceIds are required (one ASIN a call); conditionType filters to the condition asked.
        return client.get_listings_restrictions(
            asin=asin, sellerId=seller_id, marketplaceIds=marketplace.marketplace_id, conditionType=NEW_CONDITION
        )

    try:
        response = spapi.call(marketplace, "getListingsRestrictions", 1, call, count, family="restrictions")
    except ServiceError as failure:
        return dataset_error(failure)
    payload = response.payload if isinstance(response.payload, dict) else {}
    return dataset(restrictions_facts(payload, marketplace.marketplace_id))
