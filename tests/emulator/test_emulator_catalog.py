"""getCatalogItem over HTTP: the model's example item, includedData filtering, synthetic items, 404."""

from __future__ import annotations

from typing import Any

import pytest

from emulator import catalog, defaults
from emulator.client import EmulatorClient
from emulator.plans import OPERATIONS

US = defaults.MARKETPLACES["US"]
DE = defaults.MARKETPLACES["DE"]
ALL_DATA = ",".join(catalog.INCLUDED_DATA_VALUES)


def _example(model: dict[str, Any]) -> dict[str, Any]:
    return model["paths"]["/catalog/2022-04-01/items/{asin}"]["get"]["responses"]["200"]["examples"]["application/json"]


def test_sandbox_item_is_the_models_example(emu: EmulatorClient, model: dict[str, Any]) -> None:
    response = emu.get_catalog_item("B07N4M94X4", includedData=ALL_DATA)
    assert response.status_code == 200
    assert response.json() == _example(model)
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["x-amzn-RateLimit-Limit"] == "1000.0"
    assert len(response.headers["x-amzn-RequestId"]) == 36


def test_sandbox_request_of_the_model_gets_its_response(emu: EmulatorClient, model: dict[str, Any]) -> None:
    sandbox = model["paths"]["/catalog/2022-04-01/items/{asin}"]["get"]["responses"]["200"]["x-amzn-api-sandbox"]["static"][0]
    params = sandbox["request"]["parameters"]
    response = emu.get_catalog_item(
        params["asin"]["value"],
        marketplaceIds=",".join(params["marketplaceIds"]["value"]),
        includedData=",".join(params["includedData"]["value"]),
    )
    assert response.json() == sandbox["response"]


def test_included_data_filters_the_datasets(emu: EmulatorClient, model: dict[str, Any]) -> None:
    example = _example(model)
    default = emu.get_catalog_item("B07N4M94X4").json()
    assert default == {"asin": "B07N4M94X4", "summaries": example["summaries"]}  # the model's default: summaries
    picked = emu.get_catalog_item("B07N4M94X4", includedData="salesRanks,identifiers").json()
    assert picked == {"asin": "B07N4M94X4", "identifiers": example["identifiers"], "salesRanks": example["salesRanks"]}
    repeated = emu.get_catalog_item("B07N4M94X4", includedData=["images", "images", "productTypes"]).json()
    assert set(repeated) == {"asin", "images", "productTypes"}


def test_not_found_prefix_is_404(emu: EmulatorClient) -> None:
    response = emu.get_catalog_item("NF00000001")
    assert response.status_code == 404
    assert response.json() == {
        "errors": [{"code": "NOT_FOUND", "message": f"Requested item 'NF00000001' not found in marketplace {US}.", "details": ""}]
    }
    assert response.headers["x-amzn-RateLimit-Limit"] and response.headers["x-amzn-RequestId"]


def test_sandbox_asin_exists_only_in_the_us(emu: EmulatorClient) -> None:
    response = emu.get_catalog_item("B07N4M94X4", marketplaceIds=DE)
    assert response.status_code == 404
    assert response.json()["errors"][0]["message"] == f"Requested item 'B07N4M94X4' not found in marketplace {DE}."


@pytest.mark.parametrize("asin", ["B000000001", "B0TEST0001", "0306406152", "b0lower001"])
def test_synthetic_items_match_build_item(emu: EmulatorClient, asin: str) -> None:
    for marketplace in (US, DE, defaults.MARKETPLACES["JP"]):
        response = emu.get_catalog_item(asin, marketplaceIds=marketplace, includedData=ALL_DATA)
        assert response.status_code == 200
        body = response.json()
        assert body == catalog.build_item(asin, marketplace, catalog.INCLUDED_DATA_VALUES)
        assert body["asin"] == asin.upper()
        assert all(
            entry["marketplaceId"] == marketplace for name, value in body.items() if name not in ("asin", "attributes") for entry in value
        )


def test_synthetic_item_is_the_same_product_everywhere_but_local_details_differ() -> None:
    us = catalog.build_item("B0SAMEPROD", US, catalog.INCLUDED_DATA_VALUES)
    de = catalog.build_item("B0SAMEPROD", DE, catalog.INCLUDED_DATA_VALUES)
    assert us is not None and de is not None
    assert us["summaries"][0]["itemName"] == de["summaries"][0]["itemName"]
    assert us["identifiers"][0]["identifiers"] == de["identifiers"][0]["identifiers"]
    assert us["attributes"]["list_price"][0]["currency"] == "USD"
    assert de["attributes"]["list_price"][0]["currency"] == "EUR"
    assert us["dimensions"][0]["package"]["weight"]["unit"] == "pounds"
    assert de["dimensions"][0]["package"]["weight"]["unit"] == "kilograms"


def test_several_marketplaces_list_one_entry_each(emu: EmulatorClient) -> None:
    body = emu.get_catalog_item("B0MULTI001", marketplaceIds=f"{US},{DE}", includedData="summaries,attributes").json()
    assert [s["marketplaceId"] for s in body["summaries"]] == [US, DE]
    assert [v["marketplace_id"] for v in body["attributes"]["item_name"]] == [US, DE]
    # The sandbox item is US-only: asked with DE too, only the US entry comes back.
    sandbox = emu.get_catalog_item("B07N4M94X4", marketplaceIds=f"{DE},{US}").json()
    assert [s["marketplaceId"] for s in sandbox["summaries"]] == [US]


def test_call_log_records_catalog_calls(emu: EmulatorClient) -> None:
    ok = emu.get_catalog_item("B07N4M94X4")
    emu.get_catalog_item("NF00000001")
    emu.get_catalog_item("B07N4M94X4", token="bad")
    emu.get_catalog_item("bad")
    emu.search_catalog_items(identifiers="B07N4M94X4,NF00000002", identifiersType="ASIN")
    log = emu.calls()
    assert log["total"] == 6  # with the LWA call that fetched the token
    idle = {operation: {} for operation in OPERATIONS}  # every operation is counted, called or not
    assert log["by_operation"] == {
        **idle,
        "getCatalogItem": {"200": 1, "404": 1, "403": 1, "400": 1},
        "searchCatalogItems": {"200": 1},
        "lwaToken": {"200": 1},
    }
    first = log["calls"][1]
    assert first["operation"] == "getCatalogItem" and first["status"] == 200
    assert first["asins"] == ["B07N4M94X4"] and first["marketplace_id"] == US
    assert first["request_id"] == ok.headers["x-amzn-RequestId"]
    assert isinstance(first["time"], float) and log["calls"][0]["time"] <= first["time"]
    assert log["calls"][-1]["asins"] == ["B07N4M94X4", "NF00000002"]
    emu.reset()
    assert emu.calls() == {"total": 0, "by_operation": idle, "calls": []}
    assert emu.get_catalog_item("B07N4M94X4").status_code == 200  # tokens survive a reset


def test_unknown_paths_answer_an_error_list(emu: EmulatorClient) -> None:
    response = emu.http.get("/catalog/2020-12-01/items")
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "NotFound"
    assert emu.http.post("/catalog/2022-04-01/items").status_code == 405
