"""The ASIN endpoints through the Flask app, over real HTTP to the SP-API emulator."""

from __future__ import annotations

import pytest

from emulator.catalog import build_item
from tests.helpers.data import SANDBOX_TITLE, US, synthetic_asins
from tests.helpers.emulator_log import calls_by_status, operation_calls


def test_sandbox_item_has_every_fact(client, emulator):
    response = client.get("/asin/B07N4M94X4")
    assert response.status_code == 200
    body = response.get_json()
    assert body["asin"] == "B07N4M94X4" and body["success"] is True
    assert (body["country"], body["marketplace_id"]) == ("US", US)
    assert body["Title"] == SANDBOX_TITLE
    assert (body["SalesRank"], body["SalesRankCategory"]) == (72855, "Electronics")
    assert {(r["kind"], r["title"], r["rank"]) for r in body["SalesRanks"]} == {
        ("displayGroup", "Electronics", 72855),
        ("classification", "QLED TVs", 113),
    }
    assert (body["Brand"], body["Manufacturer"], body["ModelNumber"]) == ("SAMSUNG", "Samsung", "QN82Q60RAFXZA")
    assert body["ProductType"] == "TELEVISION"
    assert body["ImageUrl"] == "https://m.media-amazon.com/images/I/91uohwV+k3L.jpg"  # the largest MAIN image
    assert body["Identifiers"] == {"EAN": ["0887276302195"], "GTIN": ["00887276302195"], "UPC": ["887276302195"]}
    assert body["ItemDimensions"]["weight"] == {"value": 107.6, "unit": "pounds"}
    assert body["ItemDimensions"]["height"] == {"value": 41.4, "unit": "inches"}
    assert body["PackageDimensions"]["weight"] == {"value": 62.142, "unit": "kilograms"}
    assert body["ParentAsin"] == "B08J7TQ9FL"
    assert calls_by_status(emulator, "getCatalogItem") == {"200": 1}


def test_country_parameter_and_uk_alias(client):
    body = client.get("/asin/b0test0001?country=uk").get_json()
    assert (body["asin"], body["country"], body["marketplace_id"]) == ("B0TEST0001", "GB", "A1F83G8C2ARO7P")
    assert body["Title"] == build_item("B0TEST0001", "A1F83G8C2ARO7P", ["summaries"])["summaries"][0]["itemName"]


def test_post_single_normalises_the_asin(client):
    response = client.post("/asin/de", json={"asin": "  b0test0002 "})
    assert response.status_code == 200
    body = response.get_json()
    assert (body["asin"], body["country"], body["marketplace_id"]) == ("B0TEST0002", "DE", "A1PA6795UKMFR9")


def test_not_found_is_404_and_not_retried(client, emulator):
    response = client.get("/asin/NF00000001")
    assert response.status_code == 404
    body = response.get_json()
    assert body["success"] is False and body["asin"] == "NF00000001"
    assert body["error"]["code"] == "NOT_FOUND"
    assert calls_by_status(emulator, "getCatalogItem") == {"404": 1}


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code"),
    [
        ("get", "/asin/abc", {}, 400, "INVALID_ASIN"),
        ("get", "/asin/B07N4M94X4!", {}, 400, "INVALID_ASIN"),
        ("get", "/asin/..%2F..%2Fetc%2Fpasswd", {}, 400, "INVALID_ASIN"),
        ("get", "/asin/B07N4M94X4?country=XX", {}, 400, "INVALID_COUNTRY"),
        ("post", "/asin/XX", {"json": {"asin": "B07N4M94X4"}}, 400, "INVALID_COUNTRY"),
        ("post", "/asin/US", {"json": {"asin": 42}}, 400, "INVALID_ASIN"),
        ("post", "/asin/US", {"json": {"sku": "B07N4M94X4"}}, 400, "INVALID_REQUEST"),
        ("post", "/asin/US", {"data": "asin=B07N4M94X4"}, 415, "UNSUPPORTED_MEDIA_TYPE"),
        ("post", "/asin/US", {"data": "{not json", "content_type": "application/json"}, 400, "INVALID_REQUEST"),
        ("post", "/asin/US", {"json": ["B07N4M94X4"]}, 400, "INVALID_REQUEST"),
        ("get", "/nowhere", {}, 404, "NOT_FOUND"),
        ("delete", "/asin/US", {}, 405, "METHOD_NOT_ALLOWED"),
        ("get", "/asin/batch/US", {}, 400, "INVALID_ASIN"),
    ],
)
def test_bad_single_requests_get_json_errors(client, emulator, method, path, kwargs, status, code):
    response = getattr(client, method)(path, **kwargs)
    assert response.status_code == status
    assert response.is_json
    assert response.get_json()["error"]["code"] == code
    assert response.get_json()["success"] is False
    assert emulator.calls()["total"] == 0  # nothing was spent on SP-API


def test_unknown_country_lists_the_supported_codes(client):
    message = client.get("/asin/B07N4M94X4?country=ZZ").get_json()["error"]["message"]
    for code in ("US", "UK", "GB", "DE", "JP", "ZA", "SG"):
        assert code in message


def test_batch_of_45_makes_three_search_calls_in_order(client, emulator):
    asins = synthetic_asins(43) + ["NF00000001", "B07N4M94X4"]
    response = client.post("/asin/batch/US", json={"asins": asins})
    assert response.status_code == 200
    body = response.get_json()
    assert [entry["asin"] for entry in body["results"]] == asins
    assert calls_by_status(emulator, "searchCatalogItems") == {"200": 3}
    assert calls_by_status(emulator, "getCatalogItem") == {}
    assert body["api_calls"] == 3
    assert (body["total_requested"], body["successful"], body["failed"]) == (45, 44, 1)
    assert body["success_rate"] == "97.8%"
    assert body["results"][43]["error"]["code"] == "NOT_FOUND"
    assert body["results"][44]["Title"] == SANDBOX_TITLE
    for asin, entry in zip(asins[:43], body["results"], strict=False):
        expected = build_item(asin, US, ["summaries"])["summaries"][0]["itemName"]
        assert entry["success"] is True and entry["Title"] == expected
    # Each call carried at most 20 identifiers.
    searches = operation_calls(emulator, "searchCatalogItems")
    assert sorted(len(c["asins"]) for c in searches) == [5, 20, 20]


def test_batch_duplicates_fetched_once_and_invalid_fail_alone(client, emulator):
    asins = ["B0TEST0001", "b0test0001 ", "bad", None, "B0TEST0002", "B0TEST0001", 7]
    body = client.post("/asin/batch/US", json={"asins": asins, "refresh": True, "whatever": 1}).get_json()
    assert len(body["results"]) == 7
    codes = [entry["error"]["code"] if not entry["success"] else "ok" for entry in body["results"]]
    assert codes == ["ok", "ok", "INVALID_ASIN", "INVALID_ASIN", "ok", "ok", "INVALID_ASIN"]
    assert body["results"][0] == body["results"][1] == body["results"][5]
    assert [entry["asin"] for entry in body["results"]][2:4] == ["bad", None]
    searches = operation_calls(emulator, "searchCatalogItems")
    assert len(searches) == 1 and sorted(searches[0]["asins"]) == ["B0TEST0001", "B0TEST0002"]
    assert (body["successful"], body["failed"], body["success_rate"]) == (4, 3, "57.1%")


def test_original_readme_example_three_of_the_same(client, emulator):
    body = client.post("/asin/batch/US", json={"asins": ["B07N4M94X4"] * 3}).get_json()
    assert (body["total_requested"], body["successful"], body["failed"], body["success_rate"]) == (3, 3, 0, "100.0%")
    assert body["api_calls"] == 1


def test_emulator_paging_below_page_size_still_yields_whole_chunks(client, emulator):
    emulator.configure(page_size_cap=7)
    asins = synthetic_asins(20)
    body = client.post("/asin/batch/US", json={"asins": asins}).get_json()
    assert body["successful"] == 20
    assert calls_by_status(emulator, "searchCatalogItems") == {"200": 3}  # pages of 7, 7, 6
    assert body["api_calls"] == 3


@pytest.mark.parametrize(
    ("kwargs", "code", "needle"),
    [
        ({"json": {"asins": []}}, "INVALID_REQUEST", "empty"),
        ({"json": {"asins": ["B0TEST0001"] * 101}}, "BATCH_TOO_LARGE", "MAX_BATCH_SIZE"),
        ({"json": {"asin": "B0TEST0001"}}, "INVALID_REQUEST", "'asins'"),
        ({"json": {"asins": "B0TEST0001"}}, "INVALID_REQUEST", "'asins'"),
        ({"data": "not json", "content_type": "application/json"}, "INVALID_REQUEST", "JSON"),
        ({"json": "B0TEST0001"}, "INVALID_REQUEST", "object"),
    ],
)
def test_bad_batches_are_400_naming_the_problem(client, emulator, kwargs, code, needle):
    response = client.post("/asin/batch/US", **kwargs)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == code and needle in error["message"]
    assert emulator.calls()["total"] == 0


def test_batch_in_unknown_country_is_400(client):
    response = client.post("/asin/batch/XX", json={"asins": ["B0TEST0001"]})
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "INVALID_COUNTRY"


def test_items_with_missing_data_give_nulls_not_crashes(client):
    """Synthetic items without ranks, item dimensions or images answer nulls."""
    candidates = synthetic_asins(400)
    items = {asin: build_item(asin, US, ["salesRanks", "dimensions", "images"]) for asin in candidates}

    def ranks(asin):
        entry = items[asin]["salesRanks"][0] if items[asin]["salesRanks"] else {}
        return entry.get("displayGroupRanks") or [], entry.get("classificationRanks") or []

    no_ranks = next(a for a in candidates if ranks(a) == ([], []))
    only_classification = next(a for a in candidates if not ranks(a)[0] and ranks(a)[1])
    no_images = next(a for a in candidates if not any(e.get("images") for e in items[a]["images"]))
    no_item_dims = next(a for a in candidates if not any(e.get("item") for e in items[a]["dimensions"]))
    body = client.post("/asin/batch/US", json={"asins": [no_ranks, only_classification, no_images, no_item_dims]}).get_json()
    by_asin = {entry["asin"]: entry for entry in body["results"]}
    assert by_asin[no_ranks]["SalesRank"] is None and by_asin[no_ranks]["SalesRanks"] == []
    best = min(ranks(only_classification)[1], key=lambda r: r["rank"])
    assert (by_asin[only_classification]["SalesRank"], by_asin[only_classification]["SalesRankCategory"]) == (best["rank"], best["title"])
    assert by_asin[no_images]["ImageUrl"] is None
    assert by_asin[no_item_dims]["ItemDimensions"] is None
    assert all(entry["success"] for entry in body["results"])


def test_sp_api_default_marketplace_does_not_override(make_app, emulator, monkeypatch):
    monkeypatch.setenv("SP_API_DEFAULT_MARKETPLACE", "DE")
    body = make_app().test_client().get("/asin/B07N4M94X4?country=US").get_json()
    assert body["Title"] == SANDBOX_TITLE
    assert [c["marketplace_id"] for c in operation_calls(emulator, "getCatalogItem")] == [US]
