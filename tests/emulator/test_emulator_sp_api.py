"""python-amazon-sp-api (the client fba-backend uses) works against the emulator unchanged."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from emulator import EmulatorServer, catalog, defaults

sp_api_catalog = pytest.importorskip("sp_api.api.catalog_items.catalog_items")
sp_api_auth = pytest.importorskip("sp_api.auth")
sp_api_base = pytest.importorskip("sp_api.base")
sp_api_exceptions = pytest.importorskip("sp_api.base.exceptions")


def _client(server: EmulatorServer, refresh_token: str) -> object:
    host = server.url.removeprefix("http://")
    # The library posts to scheme + host + /auth/o2/token; point it at the emulator.
    token_client = type("EmulatorTokenClient", (sp_api_auth.AccessTokenClient,), {"scheme": "http://", "host": host})
    client = sp_api_catalog.CatalogItems(
        sp_api_base.Marketplaces.US,
        version=sp_api_catalog.CatalogItemsVersion.V_2022_04_01,
        credentials={"lwa_app_id": defaults.CLIENT_ID, "lwa_client_secret": defaults.CLIENT_SECRET, "refresh_token": refresh_token},
        auth_token_client_class=token_client,
    )
    client.endpoint = server.url
    return client


def test_library_fetches_a_token_and_calls_both_operations(make_server: Callable[..., EmulatorServer]) -> None:
    # A refresh token of its own: the library caches access tokens per refresh token, process-wide.
    refresh_token = f"Atzr|sp-api-test-{uuid.uuid4()}"
    server = make_server(rate=1000.0, burst=1000, refresh_token=refresh_token)
    client = _client(server, refresh_token)

    item = client.get_catalog_item("B07N4M94X4", marketplaceIds=[defaults.MARKETPLACES["US"]], includedData=["summaries", "salesRanks"])
    assert item.payload == catalog.build_item("B07N4M94X4", defaults.MARKETPLACES["US"], ["summaries", "salesRanks"])
    assert item.headers["x-amzn-RateLimit-Limit"] == "1000.0"

    found = client.search_catalog_items(
        identifiers="B07N4M94X4,B000000001,NF00000001",
        identifiersType="ASIN",
        marketplaceIds=[defaults.MARKETPLACES["US"]],
        includedData=["summaries"],
        pageSize=20,
    )
    assert sorted(i["asin"] for i in found.payload["items"]) == ["B000000001", "B07N4M94X4"]

    with pytest.raises(sp_api_exceptions.SellingApiNotFoundException):
        client.get_catalog_item("NF00000001", marketplaceIds=[defaults.MARKETPLACES["US"]], includedData=["summaries"])

    server.configure(rate=0.0, burst=0)
    with pytest.raises(sp_api_exceptions.SellingApiRequestThrottledException):
        client.get_catalog_item("B07N4M94X4", marketplaceIds=[defaults.MARKETPLACES["US"]], includedData=["summaries"])
    assert server.calls()["by_operation"]["lwaToken"] == {"200": 1}
