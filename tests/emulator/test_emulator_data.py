"""The catalog data builder: every item fits the model's schema, and the advertised mix of shapes holds."""

from __future__ import annotations

import random
from typing import Any

import pytest

from emulator import catalog, defaults
from emulator.identifiers import asin_for_upc, is_isbn10, jan_example, upc_check_digit, upc_for_asin

US = defaults.MARKETPLACES["US"]
ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
SAMPLE_SIZE = 3000


def _sample_asins(count: int, seed: int = 20240401) -> list[str]:
    rng = random.Random(seed)
    asins = ["B0" + "".join(rng.choice(ALNUM) for _ in range(8)) for _ in range(count - count // 10)]
    asins += ["".join(rng.choice("0123456789") for _ in range(10)) for _ in range(count // 10)]
    return asins


_TYPES: dict[str, Any] = {
    "object": dict,
    "array": list,
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
}


def schema_errors(value: Any, schema: dict[str, Any], definitions: dict[str, Any], path: str = "$") -> list[str]:
    """Validate `value` against a Swagger 2.0 schema: $ref, type, enum, required, properties, items.

    Stricter than the model on one point: objects may only hold declared properties (unless the
    schema allows additionalProperties), so the emulator cannot invent fields.
    """
    if "$ref" in schema:
        schema = definitions[schema["$ref"].rsplit("/", 1)[-1]]
    errors: list[str] = []
    expected = schema.get("type")
    if expected is None and "properties" in schema:
        expected = "object"
    if expected:
        python_type = _TYPES[expected]
        if not isinstance(value, python_type) or (expected in ("integer", "number") and isinstance(value, bool)):
            return [f"{path}: expected {expected}, got {type(value).__name__}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} not in enum")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                errors.append(f"{path}: missing required {name!r}")
        for name, item in value.items():
            if name in properties:
                errors += schema_errors(item, properties[name], definitions, f"{path}.{name}")
            elif properties and not schema.get("additionalProperties"):
                errors.append(f"{path}: unexpected property {name!r}")
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            errors += schema_errors(item, schema["items"], definitions, f"{path}[{index}]")
    return errors


def test_the_validator_catches_mistakes(model: dict[str, Any]) -> None:
    definitions = model["definitions"]
    item = catalog.build_item("B0CHECK001", US, catalog.INCLUDED_DATA_VALUES)
    assert item is not None
    item["summaries"][0]["itemClassification"] = "SOMETHING"
    item["images"][0]["images"].append({"variant": "MAIN"})
    item["salesRanks"][0]["bogus"] = 1
    errors = schema_errors(item, {"$ref": "#/definitions/Item"}, definitions)
    assert any("'SOMETHING' not in enum" in e for e in errors), errors
    assert any("missing required 'link'" in e for e in errors), errors
    assert any("unexpected property 'bogus'" in e for e in errors), errors


def test_sandbox_item_fits_the_schema(model: dict[str, Any]) -> None:
    item = catalog.build_item(catalog.SANDBOX_ASIN, US, catalog.INCLUDED_DATA_VALUES)
    assert schema_errors(item, {"$ref": "#/definitions/Item"}, model["definitions"]) == []


def test_every_synthetic_item_fits_the_schema(model: dict[str, Any]) -> None:
    definitions = model["definitions"]
    marketplaces = sorted(defaults.MARKETPLACES.values())
    for index, asin in enumerate(_sample_asins(SAMPLE_SIZE)):
        marketplace = marketplaces[index % len(marketplaces)]
        item = catalog.build_item(asin, marketplace, catalog.INCLUDED_DATA_VALUES)
        assert item is not None
        errors = schema_errors(item, {"$ref": "#/definitions/Item"}, definitions)
        assert errors == [], (asin, marketplace, errors[:5])
        assert set(item) == {"asin", *catalog.INCLUDED_DATA_VALUES}
        for name in catalog.INCLUDED_DATA_VALUES:
            if name != "attributes":
                assert [entry["marketplaceId"] for entry in item[name]] == [marketplace]
        summary = item["summaries"][0]
        for key in (
            "brand",
            "itemName",
            "manufacturer",
            "modelNumber",
            "partNumber",
            "itemClassification",
            "browseClassification",
            "websiteDisplayGroup",
            "websiteDisplayGroupName",
            "packageQuantity",
        ):
            assert key in summary, (asin, key)
        assert set(item["attributes"]) >= {"item_name", "brand", "manufacturer", "model_number", "list_price"}
        assert all(value[0]["marketplace_id"] == marketplace for value in item["attributes"].values())


def _share(items: list[dict[str, Any]], predicate: Any) -> float:
    return sum(1 for item in items if predicate(item)) / len(items)


def test_shapes_come_in_the_advertised_proportions() -> None:
    items = [catalog.build_item(asin, US, catalog.INCLUDED_DATA_VALUES) for asin in _sample_asins(SAMPLE_SIZE)]
    assert all(item is not None for item in items)
    ranks = [item["salesRanks"][0] for item in items]  # type: ignore[index]
    assert 0.03 <= _share(ranks, lambda r: "classificationRanks" not in r and "displayGroupRanks" not in r) <= 0.07
    assert 0.07 <= _share(ranks, lambda r: "classificationRanks" in r and "displayGroupRanks" not in r) <= 0.13
    full = [r for r in ranks if "displayGroupRanks" in r]
    assert all(len(r["displayGroupRanks"]) == 1 and 1 <= len(r["classificationRanks"]) <= 2 for r in full)
    assert 0.03 <= _share(items, lambda i: i["images"][0]["images"] == []) <= 0.07
    assert 0.07 <= _share(items, lambda i: "item" not in i["dimensions"][0]) <= 0.13
    assert all("package" in i["dimensions"][0] for i in items)  # type: ignore[index]
    assert 0.16 <= _share(items, lambda i: bool(i["relationships"][0]["relationships"])) <= 0.24
    with_images = [i["images"][0]["images"] for i in items if i["images"][0]["images"]]  # type: ignore[index]
    assert all([img["variant"] for img in images].count("MAIN") == 2 for images in with_images)
    assert all(any(img["variant"].startswith("PT") for img in images) for images in with_images)
    categories = {catalog.category_key(asin) for asin in _sample_asins(400)}
    assert len(categories) >= 6


def test_identifiers_are_valid_codes() -> None:
    for asin in _sample_asins(500) + ["0306406152", "B000000AAV", "B01000AAAV", jan_example()[1]]:
        codes: dict[str, list[str]] = {}
        for entry in catalog.item_identifiers(asin):
            codes.setdefault(entry["identifierType"], []).append(entry["identifier"])
        upc = codes["UPC"][0]  # the item's own codes come first
        assert len(upc) == 12 and upc.isdigit() and upc_check_digit(upc[:11]) == upc[11]
        assert codes["EAN"][0] == "0" + upc and codes["GTIN"][0] == "00" + upc
        assert all(upc_check_digit(code[:-1]) == code[-1] for kind in ("EAN", "GTIN", "UPC", "JAN") for code in codes.get(kind, []))
        assert codes.get("ISBN", []) == ([asin] if is_isbn10(asin) else [])
        assert upc == upc_for_asin(asin)
        decoded = asin_for_upc(upc)
        assert decoded == (asin if asin.startswith("B00") or asin.isdigit() else None)
    assert upc_check_digit("88727630219") == "5"  # the sandbox item's UPC 887276302195


@pytest.mark.parametrize("asin", ["B00AAAAAAA", "B00ZZZZZZZ", "B000000000", "0000000000", "9999999999", "B00A1B2C3D"])
def test_upc_codec_round_trips(asin: str) -> None:
    assert asin_for_upc(upc_for_asin(asin)) == asin


def test_item_exists_rules() -> None:
    assert catalog.item_exists("B07N4M94X4", US)
    assert not catalog.item_exists("B07N4M94X4", defaults.MARKETPLACES["GB"])
    assert catalog.item_exists("B0ANYTHING", defaults.MARKETPLACES["GB"])
    assert catalog.item_exists(" b0anything ", US)
    assert not catalog.item_exists("NF00000001", US)
    assert catalog.item_exists("NF00000001", US, not_found_prefix="XX")
    assert not catalog.item_exists("B0ANYTHIN", US)
    assert not catalog.item_exists("B0ANYTHING", "NOTAMARKET")
    assert catalog.build_item("NF00000001", US) is None
    with pytest.raises(ValueError):
        catalog.build_item("B0ANYTHING", US, ["offers"])


def test_build_item_is_pure_and_deterministic() -> None:
    first = catalog.build_item("B0PURE0001", US, catalog.INCLUDED_DATA_VALUES)
    assert first is not None
    first["summaries"][0]["brand"] = "mutated"
    second = catalog.build_item("B0PURE0001", US, catalog.INCLUDED_DATA_VALUES)
    assert second is not None and second["summaries"][0]["brand"] != "mutated"
    assert second == catalog.build_item("B0PURE0001", US, catalog.INCLUDED_DATA_VALUES)
    assert catalog.build_item("B0PURE0001", US) == {"asin": "B0PURE0001", "summaries": second["summaries"]}
