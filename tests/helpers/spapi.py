"""An SpApiClient built from settings by app.py's own steps, for tests of the service layer without Flask."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from app import build_limiter, build_spapi
from config import Settings
from services.health import UpstreamHealth
from services.spapi import SpApiClient
from utils.rate_limit import CallLimiter

# The emulator's plans of the Product Fees, Listings Restrictions and FBA Inbound Eligibility operations,
# raised so that no test waits for a slot (emulator.configure(plans=FAMILY_PLANS)).
FAMILY_PLANS = {
    "getCompetitivePricing": [50.0, 50],
    "getItemOffers": [50.0, 50],
    "getItemOffersBatch": [50.0, 50],
    "getMyFeesEstimates": [50.0, 5],
    "getMyFeesEstimateForASIN": [50.0, 5],
    "getListingsRestrictions": [50.0, 10],
    "getItemEligibilityPreview": [50.0, 5],
}


@dataclass
class SpApiParts:
    """The client and the parts a test judges it by: its limiter, its health record and the retry delays it slept."""

    client: SpApiClient
    limiter: CallLimiter
    health: UpstreamHealth
    # The client's retry delays, recorded instead of slept: the emulator's call log says what was retried.
    sleeps: list[float] = field(default_factory=list)

    def close(self) -> None:
        """Release the limiter's store."""
        self.limiter.close()


def spapi_parts(settings: Settings) -> SpApiParts:
    """The SP-API client of `settings` as the app builds it, with an in-memory limiter (RATE_LIMIT_BACKEND=memory)."""
    limiter = build_limiter(dataclasses.replace(settings, rate_limit_backend="memory"))
    health = UpstreamHealth()
    sleeps: list[float] = []
    client = build_spapi(settings, limiter, health, sleep=sleeps.append)
    return SpApiParts(client, limiter, health, sleeps)
