"""400 InvalidInput for every parameter rule of the model (one message naming the parameter)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from emulator import defaults
from emulator.client import CATALOG_ITEMS_PATH, EmulatorClient

US = defaults.MARKETPLACES["US"]
DE = defaults.MARKETPLACES["DE"]
TWENTY_ONE = ",".join(f"B0000000{n:02d}" for n in range(21))


def _assert_invalid(response: httpx.Response, parameter: str) -> None:
    assert response.status_code == 400, response.text
    errors = response.json()["errors"]
    assert len(errors) == 1
    assert errors[0]["code"] == "InvalidInput"
    assert errors[0]["details"] == ""
    assert parameter in errors[0]["message"]
    assert response.headers["x-amzn-RequestId"] and response.headers["x-amzn-RateLimit-Limit"]


@pytest.mark.parametrize(
    ("asin", "params", "parameter"),
    [
        ("B07N4M94X4", {"marketplaceIds": None}, "marketplaceIds"),
        ("B07N4M94X4", {"marketplaceIds": "XX123"}, "marketplaceIds"),
        ("B07N4M94X4", {"includedData": "summaries,offers"}, "includedData"),
        ("B07N4M94X4", {"includedData": "Summaries"}, "includedData"),
        ("B07N4M94X", {}, "asin"),
        ("B07N4M94X44", {}, "asin"),
        ("B07N4M94-4", {}, "asin"),
    ],
)
def test_get_catalog_item_validation(emu: EmulatorClient, asin: str, params: dict[str, Any], parameter: str) -> None:
    query = {"marketplaceIds": US, **params}
    query = {k: v for k, v in query.items() if v is not None}
    response = emu.http.get(f"{CATALOG_ITEMS_PATH}/{asin}", params=query, headers={"x-amz-access-token": emu.token})
    _assert_invalid(response, parameter)


def test_empty_asin_is_invalid_like_the_models_sandbox_400(emu: EmulatorClient) -> None:
    response = emu.http.get(f"{CATALOG_ITEMS_PATH}/", params={"marketplaceIds": US}, headers={"x-amz-access-token": emu.token})
    _assert_invalid(response, "asin")


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"marketplaceIds": None, "keywords": "shoes"}, "marketplaceIds"),
        ({"marketplaceIds": f"{US},{DE}", "keywords": "shoes"}, "marketplaceIds"),  # model: maxItems 1
        ({"keywords": "shoes", "includedData": "summaries,bogus"}, "includedData"),
        ({"identifiers": TWENTY_ONE, "identifiersType": "ASIN"}, "identifiers"),  # model: maxItems 20
        ({"keywords": ",".join(f"k{n}" for n in range(21))}, "keywords"),  # model: maxItems 20
        ({"identifiers": "B07N4M94X4"}, "identifiersType"),
        ({"identifiers": "B07N4M94X4", "identifiersType": "ISIN"}, "identifiersType"),
        ({"identifiers": "SKU-1", "identifiersType": "SKU"}, "sellerId"),
        ({"identifiers": "B07N4M94X4", "identifiersType": "ASIN", "keywords": "tv"}, "keywords"),
        ({"identifiers": "B07N4M94X4", "identifiersType": "ASIN", "brandNames": "SAMSUNG"}, "brandNames"),
        ({}, "identifiers"),
        ({"keywords": "tv", "pageSize": "0"}, "pageSize"),
        ({"keywords": "tv", "pageSize": "21"}, "pageSize"),  # model: maximum 20
        ({"keywords": "tv", "pageSize": "ten"}, "pageSize"),
        ({"keywords": "tv", "pageToken": "not-a-token!"}, "pageToken"),
    ],
)
def test_search_catalog_items_validation(emu: EmulatorClient, params: dict[str, Any], parameter: str) -> None:
    query = {"marketplaceIds": US, **params}
    query = {k: v for k, v in query.items() if v is not None}
    response = emu.http.get(CATALOG_ITEMS_PATH, params=query, headers={"x-amz-access-token": emu.token})
    _assert_invalid(response, parameter)


def test_twenty_identifiers_and_page_size_twenty_are_fine(emu: EmulatorClient) -> None:
    twenty = ",".join(f"B0000000{n:02d}" for n in range(20))
    response = emu.search_catalog_items(identifiers=twenty, identifiersType="ASIN", pageSize=20)
    assert response.status_code == 200
    assert response.json()["numberOfResults"] == 20


def test_extra_parameters_the_library_adds_are_ignored(emu: EmulatorClient) -> None:
    # python-amazon-sp-api adds MarketplaceId/MarketplaceIds/marketplace_ids to GETs that lack marketplaceIds.
    response = emu.get_catalog_item("B07N4M94X4", MarketplaceId=US, MarketplaceIds=US, marketplace_ids=US, locale="en_US")
    assert response.status_code == 200
    repeated = emu.search_catalog_items(identifiers=["B07N4M94X4", "B000000001"], identifiersType="ASIN")
    assert repeated.json()["numberOfResults"] == 2  # repeated parameters count like a comma-delimited list
