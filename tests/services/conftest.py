"""Fixtures of the service-layer tests: SpApiClients built as the app builds them, against the emulator."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from emulator import EmulatorServer
from services.spapi import SpApiClient
from tests.conftest import emulator_settings
from tests.helpers.spapi import FAMILY_PLANS, SpApiParts, spapi_parts


@pytest.fixture
def make_client(emulator: EmulatorServer, request: pytest.FixtureRequest) -> Callable[..., SpApiParts]:
    """Build SpApiClients against the emulator (2 retries); `make_client(max_retries=0, ...)` overrides settings."""
    emulator.configure(rate=50, burst=50)

    def build(**overrides: Any) -> SpApiParts:
        if "lwa_app_id" in overrides:
            overrides.setdefault("lwa_endpoint", emulator.url + "/auth/o2/token")
        parts = spapi_parts(emulator_settings(emulator, **{"sp_api_rate": 50, "sp_api_burst": 50, "max_retries": 2, **overrides}))
        request.addfinalizer(parts.close)  # the limiter's store, released at teardown
        return parts

    return build


@pytest.fixture
def spapi(make_client: Callable[..., SpApiParts], emulator: EmulatorServer) -> SpApiClient:
    """A client without retries, the emulator's plans of the fees, restrictions and eligibility operations raised."""
    emulator.configure(plans=FAMILY_PLANS)
    return make_client(max_retries=0).client
