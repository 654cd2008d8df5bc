"""An SpApiClient built from settings as app.py's build_services builds it, for tests of the service layer without Flask."""

from __future__ import annotations

from dataclasses import dataclass, field

from config import Settings
from services.circuit import RegionCircuits
from services.health import UpstreamHealth
from services.spapi import SpApiClient, is_outage
from utils.rate_limit import CallLimiter, Plan
from utils.retry import RetryPolicy


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


def build_spapi(settings: Settings) -> SpApiParts:
    """The SP-API client of `settings`, with an in-memory limiter (one process's, as RATE_LIMIT_BACKEND=memory)."""
    limiter = CallLimiter(
        window_calls=settings.rate_limit_calls,
        window_seconds=settings.rate_limit_window,
        default_plan=Plan(settings.sp_api_rate, settings.sp_api_burst),
        margin=settings.sp_api_rate_margin,
        recovery_seconds=settings.sp_api_pace_recovery,
    )
    health = UpstreamHealth()
    sleeps: list[float] = []
    client = SpApiClient(
        credentials=settings.credentials(),
        endpoint=settings.sp_api_endpoint,
        token_url=settings.token_url(),
        limiter=limiter,
        retry_policy=RetryPolicy(settings.max_retries, settings.retry_delay_base, settings.retry_delay_max),
        timeout=settings.request_timeout,
        health=health,
        circuits=RegionCircuits(failures=settings.circuit_failures, cooldown=settings.circuit_cooldown, is_outage=is_outage),
        sleep=sleeps.append,
    )
    return SpApiParts(client, limiter, health, sleeps)
