"""UPC/EAN/GTIN/ISBN/JAN batches through the Flask app, over real HTTP to the SP-API emulator."""

from __future__ import annotations

import hashlib

import pytest

from emulator.catalog import build_item
from emulator.identifiers import jan_example, two_asin_upc, unmatched_code, upc_for_asin
from services.catalog_item import product_facts
from services.spapi import INCLUDED_DATA
from tests.helpers.emulator_log import calls_by_status, operation_calls
from tests.helpers.openapi import assert_conforms
from utils.marketplaces import MARKETPLACES

US = MARKETPLACES["US"]
SANDBOX_UPC = "887276302195"


def decodable_upcs(n: int, start: int = 0) -> list[tuple[str, str]]:
    """(UPC, ASIN) of n emulated items whose UPC maps to that one ASIN."""
    return [(upc_for_asin(f"B00IDN{i:04d}"), f"B00IDN{i:04d}") for i in range(start, start + n)]


def sales_rank(asin: str) -> int | None:
    """The SalesRank the service reports for an emulated item in the US."""
    return product_facts(build_item(asin, US.marketplace_id, INCLUDED_DATA), US)["SalesRank"]


def spapi_order(asins: list[str]) -> list[str]:
    """The order the emulator lists search results in (a hash of the ASIN, unrelated to rank)."""
    return sorted(asins, key=lambda a: hashlib.sha256(f"order|{a}".encode()).hexdigest())


def shared_upc_listed_worst_first() -> tuple[str, list[str]]:
    """A UPC of two ranked items, and its ASINs best-ranked first, where SP-API lists the worse-ranked one first."""
    for n in range(200):
        upc, pair = two_asin_upc(n)
        ranks = {asin: sales_rank(asin) for asin in pair}
        if None in ranks.values() or len(set(ranks.values())) < 2:
            continue
        best_first = sorted(pair, key=lambda a: ranks[a])
        if spapi_order(list(pair))[0] != best_first[0]:
            return upc, best_first
    raise AssertionError("no example in the first 200 shared UPCs")


def batch(client, identifiers, identifier_type="UPC", country="US", **extra):
    response = client.post(f"/asin/batch/{country}", json={"identifiers": identifiers, "identifier_type": identifier_type, **extra})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_the_sandbox_items_upc_resolves_to_it(client, emulator):
    body = batch(client, [SANDBOX_UPC])
    (entry,) = body["results"]
    assert entry["success"] is True
    assert (entry["identifier"], entry["identifier_type"], entry["asin"]) == (SANDBOX_UPC, "UPC", "B07N4M94X4")
    assert entry["Identifiers"]["UPC"] == [SANDBOX_UPC]
    assert (entry["SalesRank"], entry["Brand"]) == (72855, "SAMSUNG")
    assert entry["matches"] == [{"asin": "B07N4M94X4", "rank": 72855, "best": True}]
    assert (body["country"], body["marketplace_id"], body["successful"], body["api_calls"]) == ("US", US.marketplace_id, 1, 1)
    (call,) = operation_calls(emulator, "searchCatalogItems")
    assert (call["asins"], call["identifiers_type"]) == ([SANDBOX_UPC], "UPC")


def test_one_upc_two_asins_best_ranked_first(client, emulator):
    upc, best_first = shared_upc_listed_worst_first()
    (entry,) = batch(client, [upc])["results"]
    ranks = [sales_rank(asin) for asin in best_first]
    assert entry["matches"] == [
        {"asin": best_first[0], "rank": ranks[0], "best": True},
        {"asin": best_first[1], "rank": ranks[1], "best": False},
    ]
    # The entry's facts are the best-ranked item's.
    assert entry["asin"] == best_first[0] and entry["SalesRank"] == ranks[0]
    assert entry["Title"] == build_item(best_first[0], US.marketplace_id)["summaries"][0]["itemName"]
    assert upc in entry["Identifiers"]["UPC"]


def test_an_unranked_match_comes_last(client, emulator):
    for n in range(500):
        upc, pair = two_asin_upc(n)
        ranks = {asin: sales_rank(asin) for asin in pair}
        if list(ranks.values()).count(None) == 1:
            break
    else:
        raise AssertionError("no shared UPC with one unranked item in the first 500")
    ranked = next(asin for asin in pair if ranks[asin] is not None)
    unranked = next(asin for asin in pair if ranks[asin] is None)
    (entry,) = batch(client, [upc])["results"]
    assert entry["matches"] == [{"asin": ranked, "rank": ranks[ranked], "best": True}, {"asin": unranked, "rank": None, "best": False}]
    assert entry["asin"] == ranked


def test_unmatched_codes_are_not_found_and_bad_check_digits_invalid_without_a_call(client, emulator):
    unmatched = unmatched_code("UPC")
    bad = SANDBOX_UPC[:11] + "4"
    body = batch(client, [unmatched, bad, "12345", None])
    codes = [entry["error"]["code"] for entry in body["results"]]
    assert codes == ["NOT_FOUND", "INVALID_IDENTIFIER", "INVALID_IDENTIFIER", "INVALID_IDENTIFIER"]
    assert body["results"][0]["error"]["message"] == f"UPC {unmatched} matches no item in marketplace {US.marketplace_id}"
    assert body["results"][1]["error"]["message"] == "UPC 887276302194 has check digit 4; expected 5"
    assert [entry["identifier"] for entry in body["results"]] == [unmatched, bad, "12345", None]
    assert all(entry["asin"] is None and entry["matches"] == [] and entry["success"] is False for entry in body["results"])
    assert [entry["fetched_at"] is None for entry in body["results"]] == [False, True, True, True]
    assert (body["successful"], body["failed"], body["api_calls"]) == (0, 4, 1)
    (call,) = operation_calls(emulator, "searchCatalogItems")
    assert call["asins"] == [unmatched]  # the invalid codes never reached SP-API

    only_bad = batch(client, [bad, "ABC"])
    assert only_bad["api_calls"] == 0 and len(operation_calls(emulator, "searchCatalogItems")) == 1


def test_45_codes_make_three_searches_of_at_most_20_with_identifiers_type(client, emulator):
    pairs = decodable_upcs(44)
    codes = [upc for upc, _ in pairs] + [SANDBOX_UPC]
    body = batch(client, codes)
    assert [entry["identifier"] for entry in body["results"]] == codes
    assert [entry["asin"] for entry in body["results"]] == [asin for _, asin in pairs] + ["B07N4M94X4"]
    assert (body["total_requested"], body["successful"], body["api_calls"]) == (45, 45, 3)
    assert calls_by_status(emulator, "searchCatalogItems") == {"200": 3}
    searches = operation_calls(emulator, "searchCatalogItems")
    assert sorted(len(call["asins"]) for call in searches) == [5, 20, 20]
    assert {call["identifiers_type"] for call in searches} == {"UPC"}
    assert sorted(code for call in searches for code in call["asins"]) == sorted(codes)


def test_a_repeated_batch_is_served_from_the_cache_and_refresh_bypasses_it(client, emulator):
    upc, pair = two_asin_upc(1)
    codes = [SANDBOX_UPC, upc, unmatched_code("UPC")]
    first = batch(client, codes)
    assert (first["api_calls"], first["cached"]) == (1, 0)

    second = batch(client, codes)
    assert (second["api_calls"], second["cached"]) == (0, 3)
    assert [entry["cached"] for entry in second["results"]] == [True, True, True]
    assert [{k: v for k, v in e.items() if k != "cached"} for e in second["results"]] == [
        {k: v for k, v in e.items() if k != "cached"} for e in first["results"]
    ]
    assert len(operation_calls(emulator, "searchCatalogItems")) == 1

    # The ASINs a code resolved to are cached as ASIN lookups too.
    for asin in pair:
        single = client.get(f"/asin/{asin}")
        assert single.status_code == 200 and single.get_json()["cached"] is True
    assert operation_calls(emulator, "getCatalogItem") == []

    refreshed = batch(client, codes, refresh=True)
    assert (refreshed["api_calls"], refreshed["cached"]) == (1, 0)
    assert [entry["cached"] for entry in refreshed["results"]] == [False, False, False]
    assert len(operation_calls(emulator, "searchCatalogItems")) == 2


def test_duplicates_are_fetched_once_and_answered_at_each_position(client, emulator):
    (upc, asin), (other, other_asin) = decodable_upcs(2)
    spaced = f"{upc[0]} {upc[1:6]}-{upc[6:]}"
    body = batch(client, [upc, other, spaced, upc, "bad"])
    assert [entry.get("asin") for entry in body["results"]] == [asin, other_asin, asin, asin, None]
    assert body["results"][0] == body["results"][2] == body["results"][3]
    assert body["results"][2]["identifier"] == upc  # normalized
    (call,) = operation_calls(emulator, "searchCatalogItems")
    assert sorted(call["asins"]) == sorted([upc, other])
    assert (body["total_requested"], body["successful"], body["failed"], body["success_rate"]) == (5, 4, 1, "80.0%")


@pytest.mark.parametrize(
    ("kind", "code", "asin"),
    [
        ("EAN", "0" + SANDBOX_UPC, "B07N4M94X4"),
        ("ean", "0-887276-302195", "B07N4M94X4"),
        ("GTIN", SANDBOX_UPC, "B07N4M94X4"),  # a GTIN-12 is looked up as its GTIN-14
        ("ISBN", "0-306-40615-2", "0306406152"),
        ("ISBN", "978-0-306-40615-7", "0306406152"),
        ("ISBN", "080442957x", "080442957X"),
        ("EAN", "9780306406157", "0306406152"),
        ("JAN", jan_example(2)[0], jan_example(2)[1]),
    ],
)
def test_ean_gtin_isbn_and_jan_resolve(client, emulator, kind, code, asin):
    (entry,) = batch(client, [code], kind)["results"]
    assert entry["success"] is True, entry
    assert (entry["asin"], entry["identifier_type"]) == (asin, kind.upper())
    assert [match["asin"] for match in entry["matches"]] == [asin]
    (call,) = operation_calls(emulator, "searchCatalogItems")
    assert call["identifiers_type"] == kind.upper()


def test_unmatched_isbn_and_jan_are_not_found(client, emulator):
    for kind in ("ISBN", "JAN", "EAN"):
        (entry,) = batch(client, [unmatched_code(kind)], kind)["results"]
        assert entry["error"]["code"] == "NOT_FOUND", kind


def test_codes_are_resolved_per_marketplace(client, emulator):
    (entry,) = batch(client, [SANDBOX_UPC], country="DE")["results"]
    assert entry["error"]["code"] == "NOT_FOUND"  # the sandbox item is a US listing
    ((upc, asin),) = decodable_upcs(1)
    (entry,) = batch(client, [upc], country="uk")["results"]
    assert (entry["asin"], entry["country"]) == (asin, "GB")


@pytest.mark.parametrize(
    ("body", "code", "fragment"),
    [
        ({"asins": ["B07N4M94X4"], "identifiers": [SANDBOX_UPC], "identifier_type": "UPC"}, "INVALID_REQUEST", "not both"),
        ({"identifiers": [SANDBOX_UPC]}, "INVALID_REQUEST", "identifier_type"),
        ({"identifiers": [], "identifier_type": "UPC"}, "INVALID_REQUEST", "empty"),
        ({"identifiers": SANDBOX_UPC, "identifier_type": "UPC"}, "INVALID_REQUEST", "'identifiers' list"),
        ({"identifiers": [SANDBOX_UPC] * 101, "identifier_type": "UPC"}, "BATCH_TOO_LARGE", "MAX_BATCH_SIZE is 100"),
        ({"identifiers": [SANDBOX_UPC], "identifier_type": "ASIN"}, "INVALID_IDENTIFIER", "UPC, EAN, GTIN, ISBN, JAN"),
        ({"identifiers": [SANDBOX_UPC], "identifier_type": None}, "INVALID_IDENTIFIER", "identifier_type"),
        ({"identifiers": [SANDBOX_UPC], "identifier_type": "UPC", "refresh": "yes"}, "INVALID_REQUEST", "refresh"),
    ],
)
def test_a_wrong_request_is_refused_as_a_whole(client, emulator, body, code, fragment):
    response = client.post("/asin/batch/US", json=body)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == code and fragment in error["message"], error
    assert operation_calls(emulator, "searchCatalogItems") == []


def test_identifier_answers_match_the_document(client, emulator):
    spec = client.get("/openapi.json").get_json()
    upc, _ = two_asin_upc(2)
    ok = client.post("/asin/batch/US", json={"identifiers": [SANDBOX_UPC, upc, unmatched_code(), "1", 5], "identifier_type": "upc"})
    assert ok.status_code == 200
    assert_conforms(spec, "POST", "/asin/batch/{country}", 200, ok.get_json())
    refused = client.post("/asin/batch/US", json={"identifiers": [upc], "identifier_type": "SKU"})
    assert refused.status_code == 400
    assert_conforms(spec, "POST", "/asin/batch/{country}", 400, refused.get_json())
