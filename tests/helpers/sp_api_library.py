"""python-amazon-sp-api's own clients pointed at an emulator, for the tests that check the emulator answers what the library sends."""

from __future__ import annotations

from typing import Any

from sp_api.auth import AccessTokenClient
from sp_api.base import Marketplaces

from emulator import EmulatorServer, defaults
from emulator.plans import MODEL_PLANS

# Every operation with a model plan, fast enough never to throttle a test that is not about the plan.
FAST_PLANS = {operation: (1000.0, 1000) for operation in MODEL_PLANS}


def library_client(client_class: type, server: EmulatorServer, refresh_token: str, **options: Any) -> Any:
    """A `client_class` (CatalogItems, Products, ProductFees, ...) of the library for the US marketplace, calling `server`.

    Give each test a refresh token of its own: the library caches access tokens per refresh token, process-wide.
    """
    host = server.url.removeprefix("http://")
    # The library posts to scheme + host + /auth/o2/token; point it at the emulator.
    token_client = type("EmulatorTokenClient", (AccessTokenClient,), {"scheme": "http://", "host": host})
    client = client_class(
        Marketplaces.US,
        credentials={"lwa_app_id": defaults.CLIENT_ID, "lwa_client_secret": defaults.CLIENT_SECRET, "refresh_token": refresh_token},
        auth_token_client_class=token_client,
        **options,
    )
    client.endpoint = server.url
    return client
