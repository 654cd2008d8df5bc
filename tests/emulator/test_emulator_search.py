"""searchCatalogItems over HTTP: identifiers, pagination, UPC/EAN/GTIN/ISBN/JAN resolution, keywords, refinements."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from emulator import catalog, defaults
from emulator.client import EmulatorClient
from emulator.identifiers import asin_for_upc, jan_example, two_asin_upc, unmatched_code, upc_check_digit, upc_for_asin

US = defaults.MARKETPLACES["US"]
DE = defaults.MARKETPLACES["DE"]


def _asins(body: dict[str, Any]) -> list[str]:
    return [item["asin"] for item in body["items"]]


def test_identifier_search_returns_each_existing_asin_once(emu: EmulatorClient) -> None:
    asked = ["B0ZZZZZZZ1", "B07N4M94X4", "NF00000001", "B0AAAAAAA1", "b0zzzzzzz1", "B07N4M94X4", "NF00000002", "B0MMMMMMM1"]
    response = emu.search_catalog_items(identifiers=",".join(asked), identifiersType="ASIN", pageSize=20)
    assert response.status_code == 200
    body = response.json()
    found = _asins(body)
    assert sorted(found) == ["B07N4M94X4", "B0AAAAAAA1", "B0MMMMMMM1", "B0ZZZZZZZ1"]
    assert body["numberOfResults"] == 4
    assert "pagination" not in body
    assert all(set(item) == {"asin", "summaries"} for item in body["items"])  # default includedData
    assert response.headers["x-amzn-RateLimit-Limit"] == "1000.0"


def test_identifier_search_order_is_deterministic_but_not_the_request_order(emu: EmulatorClient) -> None:
    asked = [f"B0ORDER{n:03d}" for n in range(20)]
    first = _asins(emu.search_catalog_items(identifiers=",".join(asked), identifiersType="ASIN", pageSize=20).json())
    again = _asins(emu.search_catalog_items(identifiers=",".join(reversed(asked)), identifiersType="ASIN", pageSize=20).json())
    assert first == again
    assert sorted(first) == sorted(asked)
    assert first != asked and first != list(reversed(asked))
    assert first == sorted(asked, key=lambda a: hashlib.sha256(f"order|{a}".encode()).hexdigest())


def test_search_items_carry_the_requested_datasets(emu: EmulatorClient) -> None:
    body = emu.search_catalog_items(
        identifiers="B0DATASET1,B07N4M94X4", identifiersType="ASIN", includedData="salesRanks,identifiers"
    ).json()
    for item in body["items"]:
        assert item == catalog.build_item(item["asin"], US, ["salesRanks", "identifiers"])


def test_page_size_cap_paginates_with_opaque_next_tokens(make_client: Callable[..., EmulatorClient]) -> None:
    emu = make_client(rate=1000.0, burst=1000, page_size_cap=7)
    asked = [f"B0PAGE{n:04d}" for n in range(20)]
    params = {"identifiers": ",".join(asked), "identifiersType": "ASIN", "pageSize": 20}
    pages: list[list[str]] = []
    token = None
    previous = []
    while True:
        body = emu.search_catalog_items(**params, **({"pageToken": token} if token else {})).json()
        assert body["numberOfResults"] == 20
        pages.append(_asins(body))
        previous.append(body.get("pagination", {}).get("previousToken"))
        token = body.get("pagination", {}).get("nextToken")
        if not token:
            break
        assert "B0PAGE" not in token  # opaque
    assert [len(p) for p in pages] == [7, 7, 6]
    union = [a for page in pages for a in page]
    assert sorted(union) == sorted(asked) and len(set(union)) == 20
    assert previous[0] is None and all(previous[1:])
    back = emu.search_catalog_items(**params, pageToken=previous[2]).json()
    assert _asins(back) == pages[1]


def test_page_token_of_another_query_is_rejected(emu: EmulatorClient) -> None:
    asked = [f"B0TOKEN{n:03d}" for n in range(15)]
    first = emu.search_catalog_items(identifiers=",".join(asked), identifiersType="ASIN", pageSize=5).json()
    token = first["pagination"]["nextToken"]
    assert len(first["items"]) == 5
    same_query = emu.search_catalog_items(identifiers=",".join(asked), identifiersType="ASIN", pageSize=5, pageToken=token)
    assert same_query.status_code == 200
    other = emu.search_catalog_items(identifiers=",".join(asked[:10]), identifiersType="ASIN", pageSize=5, pageToken=token)
    assert other.status_code == 400
    error = other.json()["errors"][0]
    assert error["code"] == "InvalidInput" and "pageToken" in error["message"]


def test_sandbox_codes_resolve_to_the_sandbox_item(emu: EmulatorClient) -> None:
    for kind, code in (("UPC", "887276302195"), ("EAN", "0887276302195"), ("GTIN", "00887276302195")):
        body = emu.search_catalog_items(identifiers=code, identifiersType=kind).json()
        assert _asins(body) == ["B07N4M94X4"], kind
    assert emu.search_catalog_items(identifiers="887276302195", identifiersType="EAN").json()["numberOfResults"] == 0
    assert emu.search_catalog_items(identifiers="887276302195", identifiersType="UPC", marketplaceIds=DE).json()["items"] == []


def test_synthetic_codes_resolve(emu: EmulatorClient) -> None:
    decodable = ["B00UPCTEST", "0306406152"]
    for asin in decodable:
        upc = upc_for_asin(asin)
        assert asin_for_upc(upc) == asin
        for kind, code in (("UPC", upc), ("EAN", "0" + upc), ("GTIN", "00" + upc)):
            assert _asins(emu.search_catalog_items(identifiers=code, identifiersType=kind).json()) == [asin]
    # Other ASINs' codes resolve once the emulator has served the item.
    hashed = "B0HASHED01"
    upc = upc_for_asin(hashed)
    assert asin_for_upc(upc) is None
    assert emu.search_catalog_items(identifiers=upc, identifiersType="UPC").json()["items"] == []
    assert emu.get_catalog_item(hashed).status_code == 200
    assert _asins(emu.search_catalog_items(identifiers=upc, identifiersType="UPC").json()) == [hashed]
    # A code with a wrong check digit matches nothing.
    bad = upc[:11] + str((int(upc[11]) + 1) % 10)
    assert emu.search_catalog_items(identifiers=bad, identifiersType="UPC").json()["numberOfResults"] == 0


def test_types_without_emulated_codes_match_nothing(emu: EmulatorClient) -> None:
    for kind, extra in (("MINSAN", {}), ("SKU", {"sellerId": "A2SELLER"})):
        response = emu.search_catalog_items(identifiers="4901234567894", identifiersType=kind, **extra)
        assert response.status_code == 200
        assert response.json()["numberOfResults"] == 0


def test_a_shared_upc_finds_the_item_and_its_bundle(emu: EmulatorClient) -> None:
    upc, (base, bundle) = two_asin_upc(3)
    assert (base, bundle) == ("B00000003V", "B01000003V")
    for kind, code in (("UPC", upc), ("EAN", "0" + upc), ("GTIN", "00" + upc)):
        body = emu.search_catalog_items(identifiers=code, identifiersType=kind, includedData="identifiers,summaries,salesRanks").json()
        assert sorted(_asins(body)) == [base, bundle], kind
        for item in body["items"]:
            listed = [(e["identifierType"], e["identifier"]) for e in item["identifiers"][0]["identifiers"]]
            assert (kind, code) in listed
    items = {item["asin"]: item for item in body["items"]}
    assert items[bundle]["summaries"][0]["itemClassification"] == "PRODUCT_BUNDLE"
    assert items[bundle]["summaries"][0]["brand"] == items[base]["summaries"][0]["brand"]
    assert items[bundle]["summaries"][0]["packageQuantity"] == 2 * items[base]["summaries"][0]["packageQuantity"]
    assert items[bundle]["salesRanks"] != items[base]["salesRanks"]
    # Looked up by ASIN, each item is the one search answered; the bundle keeps codes of its own.
    for asin in (base, bundle):
        assert emu.get_catalog_item(asin, includedData="identifiers,summaries,salesRanks").json() == items[asin]
    own_upc = upc_for_asin(bundle)
    assert _asins(emu.search_catalog_items(identifiers=own_upc, identifiersType="UPC").json()) == [bundle]
    # Both pages of a 20-code search that finds 40 items.
    codes = [two_asin_upc(n)[0] for n in range(20)]
    first = emu.search_catalog_items(identifiers=",".join(codes), identifiersType="UPC", pageSize=20).json()
    assert first["numberOfResults"] == 40 and len(first["items"]) == 20 and first["pagination"]["nextToken"]


def test_isbn_searches_find_the_book_whose_asin_is_the_isbn10(emu: EmulatorClient) -> None:
    for kind, code in (("ISBN", "0306406152"), ("ISBN", "9780306406157"), ("EAN", "9780306406157"), ("GTIN", "09780306406157")):
        body = emu.search_catalog_items(identifiers=code, identifiersType=kind).json()
        assert _asins(body) == ["0306406152"], (kind, code)
    assert _asins(emu.search_catalog_items(identifiers="080442957X", identifiersType="ISBN").json()) == ["080442957X"]
    for code in ("0306406153", unmatched_code("ISBN"), "9780306406157"[:12] + "8"):
        assert emu.search_catalog_items(identifiers=code, identifiersType="ISBN").json()["numberOfResults"] == 0, code
    identifiers = emu.get_catalog_item("0306406152", includedData="identifiers").json()["identifiers"][0]["identifiers"]
    assert {"identifierType": "ISBN", "identifier": "0306406152"} in identifiers
    assert {"identifierType": "EAN", "identifier": "9780306406157"} in identifiers


def test_jan_searches_find_japanese_imports(emu: EmulatorClient) -> None:
    jan, asin = jan_example(7)
    assert jan.startswith("490") and asin.startswith("B00") and upc_for_asin(asin).startswith("00")
    for kind, code in (("JAN", jan), ("EAN", jan), ("GTIN", "0" + jan)):
        assert _asins(emu.search_catalog_items(identifiers=code, identifiersType=kind).json()) == [asin], kind
    assert emu.search_catalog_items(identifiers=jan, identifiersType="UPC").json()["numberOfResults"] == 0
    for code in (unmatched_code("JAN"), jan[:12] + str((int(jan[12]) + 1) % 10)):
        assert emu.search_catalog_items(identifiers=code, identifiersType="JAN").json()["numberOfResults"] == 0, code


def test_unmatched_codes_have_valid_check_digits_and_find_nothing(emu: EmulatorClient) -> None:
    for kind in ("UPC", "EAN", "GTIN", "ISBN", "JAN"):
        code = unmatched_code(kind)
        assert upc_check_digit(code[:-1]) == code[-1]
        assert emu.search_catalog_items(identifiers=code, identifiersType=kind).json()["numberOfResults"] == 0, kind


def test_keywords_samsung_tv_match_the_models_sandbox(emu: EmulatorClient, model: dict[str, Any]) -> None:
    sandbox = model["paths"]["/catalog/2022-04-01/items"]["get"]["responses"]["200"]["x-amzn-api-sandbox"]["static"][0]
    params = sandbox["request"]["parameters"]
    body = emu.search_catalog_items(
        keywords=",".join(params["keywords"]["value"]),
        marketplaceIds=",".join(params["marketplaceIds"]["value"]),
        includedData=",".join(params["includedData"]["value"]),
    ).json()
    expected = dict(sandbox["response"])
    expected.pop("pagination")  # the example's tokens are placeholders; one result has no other page
    assert body == expected


def test_keyword_search_is_deterministic_and_relevant(emu: EmulatorClient) -> None:
    first = emu.search_catalog_items(keywords="water bottle", pageSize=20).json()
    again = emu.search_catalog_items(keywords="bottle,water", pageSize=20).json()
    assert first == again
    assert first["numberOfResults"] >= 12
    assert "B07N4M94X4" not in _asins(first)
    titles = [item["summaries"][0]["itemName"] for item in first["items"]]
    assert "Water Bottle" in titles[0]
    brands = first["refinements"]["brands"]
    assert sum(b["numberOfResults"] for b in brands) == first["numberOfResults"]
    assert sum(c["numberOfResults"] for c in first["refinements"]["classifications"]) == first["numberOfResults"]


def test_keyword_search_brand_filter(emu: EmulatorClient) -> None:
    body = emu.search_catalog_items(keywords="water bottle", brandNames="Acme", pageSize=20).json()
    assert body["numberOfResults"] > 0
    assert {item["summaries"][0]["brand"] for item in body["items"]} == {"Acme"}
    assert body["refinements"]["brands"] == [{"numberOfResults": body["numberOfResults"], "brandName": "Acme"}]
