"""python-amazon-sp-api (the client fba-backend uses) works against the emulator unchanged."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from emulator import EmulatorServer, catalog, defaults
from tests.helpers.sp_api_library import library_client

sp_api_catalog = pytest.importorskip("sp_api.api.catalog_items.catalog_items")
sp_api_base = pytest.importorskip("sp_api.base")
sp_api_exceptions = pytest.importorskip("sp_api.base.exceptions")


def _client(server: EmulatorServer, refresh_token: str) -> object:
    client = library_client(sp_api_catalog.CatalogItems, server, refresh_token, version=sp_api_catalog.CatalogItemsVersion.V_2022_04_01)
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
