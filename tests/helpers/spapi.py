"""An SpApiClient built from settings by app.py's own steps, for tests of the service layer without Flask."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from app import build_limiter, build_spapi
from config import Settings
from emulator import EmulatorServer
from services.health import UpstreamHealth
from services.spapi import SpApiClient
from tests.conftest import emulator_settings
from utils.rate_limit import CallLimiter


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


@contextmanager
def client_builder(emulator: EmulatorServer) -> Iterator[Callable[..., SpApiParts]]:
    """Build SpApiClients against `emulator` at 50 calls/s, 2 retries (`build(max_retries=0, ...)` overrides settings), closed on exit."""
    built: list[SpApiParts] = []

    def build(**overrides: Any) -> SpApiParts:
        if "lwa_app_id" in overrides:
            overrides.setdefault("lwa_endpoint", emulator.url + "/auth/o2/token")
        settings = emulator_settings(emulator, **{"sp_api_rate": 50, "sp_api_burst": 50, "max_retries": 2, **overrides})
        parts = spapi_parts(settings)
        built.append(parts)
        return parts

    try:
        yield build
    finally:
        for parts in built:
            parts.close()
