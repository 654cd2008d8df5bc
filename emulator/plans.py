"""Every emulated SP-API operation and its usage plan (rate in requests per second, burst), as the models state them.

Catalog Items' two operations follow the `rate`/`burst` options (the plan tests and benchmarks vary);
every other operation has the plan of its model (shared/reference/), which the `plans` option can
override per operation, e.g. `{"getItemOffersBatch": [10, 10]}` for a fast test.
"""

from __future__ import annotations

from typing import NamedTuple

GET_CATALOG_ITEM = "getCatalogItem"
SEARCH_CATALOG_ITEMS = "searchCatalogItems"
GET_COMPETITIVE_PRICING = "getCompetitivePricing"
GET_ITEM_OFFERS = "getItemOffers"
GET_ITEM_OFFERS_BATCH = "getItemOffersBatch"
GET_MY_FEES_ESTIMATES = "getMyFeesEstimates"
GET_MY_FEES_ESTIMATE_FOR_ASIN = "getMyFeesEstimateForASIN"
GET_LISTINGS_RESTRICTIONS = "getListingsRestrictions"
GET_ITEM_ELIGIBILITY_PREVIEW = "getItemEligibilityPreview"
LWA_TOKEN = "lwaToken"

CATALOG_OPERATIONS = (GET_CATALOG_ITEM, SEARCH_CATALOG_ITEMS)


class Plan(NamedTuple):
    """A usage plan: tokens refilled per second, and the bucket's size."""

    rate: float
    burst: int


# From each operation's description in its model ("Usage plan" tables).
MODEL_PLANS: dict[str, Plan] = {
    GET_COMPETITIVE_PRICING: Plan(0.5, 1),  # productPricingV0.json
    GET_ITEM_OFFERS: Plan(0.5, 1),  # productPricingV0.json
    GET_ITEM_OFFERS_BATCH: Plan(0.1, 1),  # productPricingV0.json (lowered in July 2023)
    GET_MY_FEES_ESTIMATES: Plan(0.5, 1),  # productFeesV0.json
    GET_MY_FEES_ESTIMATE_FOR_ASIN: Plan(1.0, 2),  # productFeesV0.json
    GET_LISTINGS_RESTRICTIONS: Plan(5.0, 10),  # listingsRestrictions_2021-08-01.json
    GET_ITEM_ELIGIBILITY_PREVIEW: Plan(1.0, 1),  # fbaInbound.json
}

# Every operation that has a usage plan, and every operation the call log counts.
PLANNED_OPERATIONS = (*CATALOG_OPERATIONS, *MODEL_PLANS)
OPERATIONS = (*PLANNED_OPERATIONS, LWA_TOKEN)
