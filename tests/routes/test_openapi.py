"""The OpenAPI document (routes/openapi.yaml): valid 3.1, one entry per route and method, answers that fit it, and /docs."""

from __future__ import annotations

import csv
import dataclasses
import io
import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from openpyxl import Workbook, load_workbook

from app import scan_defaults
from config import Settings
from emulator import catalog
from emulator.identifiers import two_asin_upc, unmatched_code
from routes.errors import entry_response
from routes.openapi import HTTP_METHODS, spec_source
from services.datasets import DATASETS, ENTRY_KEYS
from services.entries import LookupEntry
from services.entry_csv import DATASET_COLUMNS, RESULT_COLUMNS, result_columns
from services.errors import ENTRY_CODES, NO_PRICE, SELLER_ID_MISSING, ServiceError
from services.scan import BUY, FULL, REASONS, REVIEW, SCREENED, SKIP
from services.scan_csv import SCAN_COLUMNS, output_names
from services.scan_profile import FULFILLMENTS, PRICE_SOURCES, PROFILE_KEYS
from tests.helpers.openapi import assert_conforms, error_lines, schema_validator
from tests.helpers.spapi import FAMILY_PLANS
from utils.marketplaces import SUPPORTED_CODES
from utils.supplier_list import INVALID_COST, INVALID_IDENTIFIER, INVALID_PACK

# Methods Flask adds to every rule by itself.
AUTOMATIC_METHODS = {"HEAD", "OPTIONS"}
API_KEY = "test-key-0123456789abcdef"
# Path parameter values and a body that make each documented operation a valid request.
PATH_VALUES = {"asin": "B07N4M94X4", "country": "US", "job_id": "0123456789abcdef"}
BODIES = {
    "/asin/{country}": {"asin": "B07N4M94X4"},
    "/asin/batch/{country}": {"asins": ["B07N4M94X4"]},
    "/jobs/{country}": {"asins": ["B07N4M94X4"]},
    "/scan/{country}": {"items": [{"upc": "12345", "cost": 1}]},  # a code that is no UPC: answered without an SP-API call
}
# Every code a dataset's own error may carry (services/datasets.py dataset_error).
DATASET_CODES = (*ENTRY_CODES, NO_PRICE, SELLER_ID_MISSING)
EVERY_DATASET = ",".join(DATASETS)
# The lists inside a dataset, and the schema of their items.
DATASET_LISTS = {
    "Offers": ("offers", "Offer"),
    "Restrictions": ("reasons", "RestrictionReason"),
    "Eligibility": ("reasons", "EligibilityReason"),
}


def documented_operations(spec: dict[str, Any]) -> set[tuple[str, str]]:
    """(METHOD, path template) of every operation in the document."""
    return {(method.upper(), path) for path, item in spec["paths"].items() for method in HTTP_METHODS if method in item}


def routed_operations(app: Flask) -> set[tuple[str, str]]:
    """(METHOD, path template) of every Flask route, `<converter:name>` written as `{name}`."""
    found = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        found |= {(method, path) for method in rule.methods - AUTOMATIC_METHODS}
    return found


@pytest.fixture
def spec(client: FlaskClient) -> dict[str, Any]:
    """The document as the app serves it."""
    response = client.get("/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    return response.get_json()


def test_the_served_document_is_valid_openapi_3_1(spec):
    assert spec["openapi"] == "3.1.0"
    validate(spec)  # raises on any violation of the OpenAPI 3.1 schema


def test_the_yaml_source_says_what_it_means():
    """No key without a value (an unquoted comma in a YAML flow mapping splits a description) and no non-string key."""

    def walk(node: Any, path: str) -> Iterator[str]:
        if isinstance(node, dict):
            for key, value in node.items():
                if not isinstance(key, str) or value is None:
                    yield f"{path}/{key!r}"
                yield from walk(value, f"{path}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                yield from walk(value, f"{path}/{index}")

    assert list(walk(spec_source(), "#")) == []


def test_every_route_is_documented_and_every_documented_operation_is_routed(app, spec):
    routed, documented = routed_operations(app), documented_operations(spec)
    assert routed - documented == set(), "routes missing from routes/openapi.yaml"
    assert documented - routed == set(), "operations in routes/openapi.yaml that no route serves"
    operation_ids = [op["operationId"] for item in spec["paths"].values() for method, op in item.items() if method in HTTP_METHODS]
    assert len(operation_ids) == len(set(operation_ids)) == len(documented)


def test_the_document_carries_the_running_services_version_and_limits(make_app):
    app = make_app(max_batch_size=7, default_country="DE")
    spec = app.test_client().get("/openapi.json").get_json()
    assert spec["info"]["version"] == app.config["VERSION"]
    assert spec["servers"] == [{"url": "/"}]
    assert spec["components"]["schemas"]["BatchRequest"]["properties"]["asins"]["maxItems"] == 7
    assert spec["components"]["parameters"]["CountryQuery"]["schema"]["default"] == "DE"
    # The source stays as written for the next app.
    assert spec_source()["components"]["schemas"]["BatchRequest"]["properties"]["asins"]["maxItems"] == 100


def test_countries_and_error_codes_are_the_services_own(spec):
    assert set(spec["components"]["schemas"]["Country"]["enum"]) == set(SUPPORTED_CODES)
    codes = spec["components"]["schemas"]["FailureEntry"]["properties"]["error"]["properties"]["code"]["enum"]
    assert set(codes) == set(ENTRY_CODES)


def test_the_datasets_and_their_error_codes_are_the_services_own(spec):
    schemas = spec["components"]["schemas"]
    assert schemas["DatasetName"]["enum"] == list(DATASETS)
    assert set(schemas["DatasetError"]["properties"]["error"]["properties"]["code"]["enum"]) == set(DATASET_CODES)
    for key in ENTRY_KEYS.values():
        # Each dataset on a found entry: its own schema, or its own error; never required (only what `include` names).
        assert schemas["SuccessEntry"]["properties"][key]["oneOf"] == [
            {"$ref": f"#/components/schemas/{key}"},
            {"$ref": "#/components/schemas/DatasetError"},
        ]
        assert key not in schemas["SuccessEntry"]["required"] and key not in schemas["FailureEntry"]["properties"]
    named = {"$ref": "#/components/schemas/DatasetName"}
    assert schemas["Job"]["properties"]["include"]["items"] == named and "include" in schemas["Job"]["required"]
    for name in ("AsinRequest", "BatchRequest", "JobRequest"):
        assert schemas[name]["properties"]["include"]["items"] == named
    assert schemas["Fulfillment"]["enum"] == ["FBA", "FBM"]
    get_asin = {p["$ref"].rsplit("/", 1)[-1] for p in spec["paths"]["/asin/{asin}"]["get"]["parameters"]}
    assert {"IncludeQuery", "PriceQuery", "FulfillmentQuery"} <= get_asin
    assert "include" in {p.get("name") for p in spec["paths"]["/jobs/{country}"]["post"]["parameters"]}


def test_the_results_text_names_every_csv_column_a_dataset_adds_in_order(spec):
    text = " ".join(spec["paths"]["/jobs/{job_id}/results"]["get"]["description"].split())
    for name, columns in DATASET_COLUMNS.items():
        named = [text.index(f"`{column}`", text.index(f"{name} `")) for column in columns]
        assert named == sorted(named), f"the {name} columns, in their order"
    assert "`currency`" in text


def schemas_within(node: Any) -> Iterator[dict[str, Any]]:
    """`node` (a schema) and every schema inside it."""
    if not isinstance(node, dict):
        return
    yield node
    for key in ("items", "not", "propertyNames", "additionalProperties"):
        yield from schemas_within(node.get(key))
    for sub in node.get("properties", {}).values():
        yield from schemas_within(sub)
    for combinator in ("oneOf", "anyOf", "allOf"):
        for sub in node.get(combinator, []):
            yield from schemas_within(sub)


def test_every_example_fits_its_schema(spec):
    """The examples of schemas, parameters and request bodies are answers and requests the document allows."""
    components = spec["components"]
    examples: list[tuple[str, dict[str, Any], Any]] = []
    roots = [*components["schemas"].items(), *((name, p["schema"]) for name, p in components["parameters"].items())]
    for name, root in roots:
        examples += [(name, schema, example) for schema in schemas_within(root) for example in schema.get("examples", [])]
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            for parameter in operation.get("parameters", []) if method in HTTP_METHODS else []:
                if "schema" in parameter:
                    examples += [
                        (f"{path} {parameter['name']}", s, e) for s in schemas_within(parameter["schema"]) for e in s.get("examples", [])
                    ]
            body = operation.get("requestBody", {}) if method in HTTP_METHODS else {}
            for media_type, media in body.get("content", {}).items():
                if "example" in media:
                    examples.append((f"{method.upper()} {path} {media_type}", media["schema"], media["example"]))
    for where, schema, example in examples:
        errors = error_lines(Draft202012Validator({**schema, "components": components}), example)
        assert not errors, f"an example of {where} does not fit its schema: {errors}\n{example}"
    # Each dataset's schema carries an example drawn from a real answer.
    for name in (*ENTRY_KEYS.values(), "DatasetError"):
        assert components["schemas"][name]["examples"], name
    assert len(examples) >= 20


def assert_datasets_are_documented_exactly(spec: dict[str, Any], entry: dict[str, Any]) -> None:
    """Each dataset of `entry` has exactly the keys its schema names (the schemas allow more keys than they name)."""
    schemas = spec["components"]["schemas"]

    def keys(name: str) -> set[str]:
        return set(schemas[name]["properties"])

    for key in ENTRY_KEYS.values():
        found = entry.get(key)
        if found is None:
            continue
        if "error" in found:
            assert set(found) == keys("DatasetError") and set(found["error"]) <= set(
                schemas["DatasetError"]["properties"]["error"]["properties"]
            )
            continue
        assert set(found) == keys(key), f"{key}: {set(found) ^ keys(key)}"
        if key in DATASET_LISTS:
            field, name = DATASET_LISTS[key]
            assert all(set(part) == keys(name) for part in found[field]), f"{key}.{field}: {found[field]}"


def test_answers_with_datasets_match_the_document(make_app, emulator):
    """`include`, `price`, `prices` and `fulfillment` through the app to the emulator, each answer checked against its schema."""
    emulator.configure(plans=FAMILY_PLANS)
    client = make_app().test_client()
    spec = client.get("/openapi.json").get_json()
    every = list(DATASETS)
    cases = [
        ("GET", "/asin/{asin}", f"/asin/B07N4M94X4?include={EVERY_DATASET}", None, 200),
        ("GET", "/asin/{asin}", f"/asin/B07N4M94X4?include={EVERY_DATASET}", None, 200),  # every dataset from its cache
        ("GET", "/asin/{asin}", "/asin/B0TEST0002?include=OFFERS,fees", None, 200),  # no Buy Box, no offer: NO_PRICE
        ("GET", "/asin/{asin}", "/asin/B0TEST0003?include=restrictions", None, 200),  # a gated brand: APPROVAL_REQUIRED
        ("GET", "/asin/{asin}", "/asin/B0TEST0012?include=eligibility", None, 200),  # not eligible for inbound
        ("GET", "/asin/{asin}", "/asin/B07N4M94X4?include=fees&price=25&fulfillment=fbm", None, 200),
        ("GET", "/asin/{asin}", f"/asin/NF00000001?include={EVERY_DATASET}", None, 404),
        ("GET", "/asin/{asin}", "/asin/B07N4M94X4?include=pricing,stock", None, 400),
        ("GET", "/asin/{asin}", "/asin/B07N4M94X4?price=25", None, 400),
        ("GET", "/asin/{asin}", "/asin/B07N4M94X4?include=fees&price=0", None, 400),
        ("GET", "/asin/{asin}", "/asin/B07N4M94X4?include=fees&fulfillment=AFN", None, 400),
        (
            "POST",
            "/asin/{country}",
            "/asin/US",
            {"asin": "B07N4M94X4", "include": ["pricing", "fees"], "price": 2999.99, "fulfillment": "FBA"},
            200,
        ),
        ("POST", "/asin/{country}", "/asin/US", {"asin": "B07N4M94X4", "include": "pricing"}, 400),
        ("POST", "/asin/{country}", "/asin/US", {"asin": "B07N4M94X4", "include": ["fees"], "price": "free"}, 400),
        (
            "POST",
            "/asin/batch/{country}",
            "/asin/batch/US",
            {"asins": ["B07N4M94X4", "B0TEST0006", "NF00000001", "bad"], "include": every, "prices": {"b07n4m94x4": 2999.99}},
            200,
        ),
        (
            "POST",
            "/asin/batch/{country}",
            "/asin/batch/US",
            {"identifiers": ["887276302195"], "identifier_type": "UPC", "include": every},
            200,
        ),
        (
            "POST",
            "/asin/batch/{country}",
            "/asin/batch/US",
            {"asins": ["B07N4M94X4"], "include": ["fees"], "prices": {"B08N5WRWNW": 20}},
            400,
        ),
        (
            "POST",
            "/asin/batch/{country}",
            "/asin/batch/US",
            {"asins": ["B07N4M94X4"], "include": ["pricing"], "prices": {"B07N4M94X4": 20}},
            400,
        ),
        (
            "POST",
            "/asin/batch/{country}",
            "/asin/batch/US",
            {"identifiers": ["887276302195"], "identifier_type": "UPC", "include": ["fees"], "prices": {"B07N4M94X4": 20}},
            400,
        ),
    ]
    entries = []
    for method, template, url, body, status in cases:
        response = client.open(url, method=method, json=body)
        assert response.status_code == status, (method, url, body, response.get_json())
        answer = response.get_json()
        assert_conforms(spec, method, template, status, answer)
        if ("success" in answer and "asin" in answer) or "results" in answer:
            entries += answer.get("results", [answer])
    for entry in entries:
        assert_datasets_are_documented_exactly(spec, entry)
        if not entry["success"]:
            assert not set(entry) & set(ENTRY_KEYS.values()), "a failed entry carries no datasets"
    # Each dataset answered once with its facts, and a dataset error among them.
    for key in ENTRY_KEYS.values():
        assert any(key in entry and "error" not in entry[key] for entry in entries), key
    assert any(entry.get("Fees", {}).get("error", {}).get("code") == NO_PRICE for entry in entries)


def test_a_job_with_datasets_matches_the_document(make_app, emulator):
    emulator.configure(plans=FAMILY_PLANS)
    app = make_app()
    client = app.test_client()
    spec = client.get("/openapi.json").get_json()
    submitted = client.post("/jobs/US", json={"asins": ["B07N4M94X4", "B0TEST0002", "NF00000001"], "include": ["fees", "PRICING"]})
    assert submitted.status_code == 202
    assert_conforms(spec, "POST", "/jobs/{country}", 202, submitted.get_json())
    assert submitted.get_json()["include"] == ["pricing", "fees"]
    uploaded = client.post("/jobs/US?include=restrictions,eligibility", data="asin\nB0TEST0003\n", content_type="text/csv")
    assert uploaded.status_code == 202 and uploaded.get_json()["include"] == ["restrictions", "eligibility"]
    for refused in (
        client.post("/jobs/US?include=stock", data="asin\nB0TEST0003\n", content_type="text/csv"),
        client.post("/jobs/US", json={"asins": ["B07N4M94X4"], "include": "pricing"}),
    ):
        assert refused.status_code == 400
        assert_conforms(spec, "POST", "/jobs/{country}", 400, refused.get_json())
    while app.extensions["jobs"].runner.run_once():
        pass
    for job in (submitted.get_json(), uploaded.get_json()):
        results = client.get(f"/jobs/{job['id']}/results")
        assert_conforms(spec, "GET", "/jobs/{job_id}/results", 200, results.get_json())
        for entry in results.get_json()["results"]:
            assert_datasets_are_documented_exactly(spec, entry)
            if entry["success"]:
                assert {ENTRY_KEYS[name] for name in job["include"]} <= set(entry)
        rows = list(csv.reader(io.StringIO(client.get(f"/jobs/{job['id']}/results?format=csv").get_data(as_text=True))))
        assert tuple(rows[0]) == result_columns(job["include"]) and len(rows[0]) > len(RESULT_COLUMNS)


# -- scans of supplier lists ------------------------------------------------------------------------

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def upc(asin: str) -> str:
    """The UPC the emulator serves `asin` with."""
    return next(code["identifier"] for code in catalog.item_identifiers(asin) if code["identifierType"] == "UPC")


def scan_items() -> list[dict[str, Any]]:
    """Rows that between them reach every stage and every verdict, with cells of every kind of trouble."""
    multiple, _ = two_asin_upc(3)
    return [
        *({"upc": upc(f"B00SCAN{n:03d}"), "cost": 2.5, "pack_quantity": 6, "sku": f"S{n}"} for n in range(4)),
        {"upc": multiple, "cost": 0.01},  # two ASINs: MULTIPLE_MATCHES
        {"upc": unmatched_code("UPC"), "cost": 1},  # no item carries it: NOT_FOUND
        {"upc": "12345", "cost": 1},  # INVALID_IDENTIFIER, no lookup
        {"upc": upc("B00SCAN000"), "cost": "cheap"},  # INVALID_COST, no lookup
        {"asin": "B00SCAN000", "cost": 1, "pack": "x"},  # INVALID_PACK, in a row of an ASIN
        {"asin": "B00SCAN000", "cost": "$40.00"},  # costs more than it earns: stops at the screen
    ]


def schema_keys(spec: dict[str, Any], name: str) -> set[str]:
    return set(spec["components"]["schemas"][name]["properties"])


def assert_scan_entry_is_documented_exactly(spec: dict[str, Any], entry: dict[str, Any]) -> None:
    """A scan entry has the keys its schemas name and no other: the product's (found, failed or refused), its datasets, `Scan`."""
    if entry["success"]:
        product = schema_keys(spec, "SuccessEntry")
    else:
        product = schema_keys(spec, "FailureEntry") | schema_keys(spec, "RefusedRowEntry")
    documented = schema_keys(spec, "ScanEntry") | product
    assert set(entry) <= documented, f"undocumented keys: {set(entry) - documented}"
    assert set(entry["Scan"]) == schema_keys(spec, "Scan"), set(entry["Scan"]) ^ schema_keys(spec, "Scan")
    assert all(set(reason) == schema_keys(spec, "ScanReason") for reason in entry["Scan"]["reasons"])
    assert isinstance(entry["input"], dict)
    assert_datasets_are_documented_exactly(spec, entry)
    if not entry["success"]:
        assert not set(entry) & set(ENTRY_KEYS.values()), "a failed row carries no datasets"
    if not entry["success"] and entry["fetched_at"] is None:
        # A row refused before any lookup: the schema that says so fits it.
        errors = error_lines(schema_validator(spec, "RefusedRowEntry"), entry)
        assert not errors, f"a refused row does not fit RefusedRowEntry: {errors}\n{entry}"


def assert_scan_view_is_documented_exactly(spec: dict[str, Any], view: dict[str, Any]) -> None:
    scan = view["scan"]
    assert set(scan) == schema_keys(spec, "JobScan")
    assert set(scan["profile"]) == schema_keys(spec, "ScanProfile")
    assert set(scan["stages"]) == set(spec["components"]["schemas"]["JobScan"]["properties"]["stages"]["properties"])
    assert set(scan["verdicts"]) == schema_keys(spec, "ScanVerdicts")
    assert scan["stages"]["done"] == view["counts"]["done"] == scan["stages"]["screened"] + scan["stages"]["deep_checked"]
    assert sum(scan["verdicts"].values()) == view["counts"]["done"]


def test_the_scan_profile_reasons_and_verdicts_are_the_services_own(spec):
    schemas = spec["components"]["schemas"]
    profile = schemas["ScanProfile"]["properties"]
    assert set(profile) == set(schemas["ScanProfile"]["required"]) == PROFILE_KEYS
    # A request may send any key of the profile, and only those.
    assert set(schemas["ScanSettings"]["properties"]) == PROFILE_KEYS and schemas["ScanSettings"]["additionalProperties"] is False
    assert schemas["ScanRequest"]["properties"]["scan"] == {"$ref": "#/components/schemas/ScanSettings"}
    # Each default is the service's (from its SCAN_* setting), and names that setting.
    defaults = scan_defaults(Settings()).as_json()
    assert {key: profile[key].get("default") for key in PROFILE_KEYS} == defaults
    settings = {field.name.upper() for field in dataclasses.fields(Settings) if field.name.startswith("scan_")}
    named = {name for key in PROFILE_KEYS for name in re.findall(r"`(SCAN_[A-Z_]+)`", profile[key]["description"])}
    assert named == settings
    # A CSV or XLSX scan takes the same settings as query parameters, and its columns.
    query = {p["name"]: p for p in spec["paths"]["/jobs/{country}"]["post"]["parameters"] if "name" in p}
    assert PROFILE_KEYS | {"scan", "cost_column", "pack_column"} <= set(query)
    assert all(f"`ScanProfile.{key}`" in query[key]["description"] for key in PROFILE_KEYS)
    # Reasons, verdicts, stages and price sources.
    codes = schemas["ScanReason"]["properties"]["code"]
    assert codes["enum"] == list(REASONS)
    assert all(f"`{code}`" in codes["description"] for code in REASONS), "each reason is explained"
    assert schemas["Verdict"]["enum"] == [BUY, REVIEW, SKIP] and schema_keys(spec, "ScanVerdicts") == {BUY, REVIEW, SKIP}
    assert schemas["Scan"]["properties"]["stage"]["enum"] == [SCREENED, FULL]
    assert set(schemas["Scan"]["required"]) == schema_keys(spec, "Scan")
    assert schemas["PriceSource"]["enum"] == list(PRICE_SOURCES)
    assert schemas["Scan"]["properties"]["price_source"]["enum"] == [*PRICE_SOURCES, None]
    assert schemas["Fulfillment"]["enum"] == list(FULFILLMENTS)
    # A refused row's product part is a lookup entry too, its code that of the cell the list could not read.
    assert schema_keys(spec, "RefusedRowEntry") <= set(LookupEntry.__required_keys__ | LookupEntry.__optional_keys__)
    refused = schemas["RefusedRowEntry"]["properties"]["error"]["properties"]["code"]["enum"]
    assert refused == [INVALID_IDENTIFIER, INVALID_COST, INVALID_PACK] and set(refused) <= set(REASONS)
    assert "scan" in schemas["Job"]["required"]


def test_the_results_text_names_the_scan_csv_columns_in_order(spec):
    text = " ".join(spec["paths"]["/jobs/{job_id}/results"]["get"]["description"].split())
    listed = text.split("then the scan's columns, in this order:", 1)[1].split(".", 1)[0]
    assert re.findall(r"`([^`]+)`", listed) == list(SCAN_COLUMNS)
    assert "`scan_<name>`" in text


def test_scan_answers_match_the_document(make_app, emulator):
    """A scan through the app to the emulator: every verdict, stage and kind of row, checked against the document key by key."""
    emulator.configure(plans=FAMILY_PLANS, rate=50, burst=50)
    app = make_app()
    client = app.test_client()
    spec = client.get("/openapi.json").get_json()
    body = {"items": scan_items(), "scan": {"skip_restricted": False, "prep_cost": 0.35, "inbound_per_pound": "0.5"}}
    response = client.post("/scan/US", json=body)
    assert response.status_code == 200, response.get_json()
    answer = response.get_json()
    assert_conforms(spec, "POST", "/scan/{country}", 200, answer)
    assert set(answer) == schema_keys(spec, "ScanResult")
    assert set(answer["profile"]) == schema_keys(spec, "ScanProfile") and set(answer["verdicts"]) == schema_keys(spec, "ScanVerdicts")
    for entry in answer["results"]:
        assert_scan_entry_is_documented_exactly(spec, entry)
    scans = [entry["Scan"] for entry in answer["results"]]
    assert answer["verdicts"] == {verdict: sum(s["verdict"] == verdict for s in scans) for verdict in (BUY, REVIEW, SKIP)}
    assert answer["total"] == len(scans) == len(body["items"])
    assert {s["verdict"] for s in scans} == {BUY, REVIEW, SKIP} and {s["stage"] for s in scans} == {SCREENED, FULL}
    found = {reason["code"] for s in scans for reason in s["reasons"]}
    assert {"APPROVAL_REQUIRED", "MULTIPLE_MATCHES", "NOT_FOUND", "INVALID_IDENTIFIER", "INVALID_COST", "INVALID_PACK"} <= found
    assert {"PROFIT_BELOW_MIN", "ROI_BELOW_MIN"} <= found
    # Each dataset a scan fetches appears in some entry with its facts.
    for key in ENTRY_KEYS.values():
        assert any(key in entry and "error" not in entry[key] for entry in answer["results"]), key
    # Requests refused as a whole.
    one = scan_items()[:1]
    too_many = app.config["SETTINGS"].max_batch_size + 1
    for url, sent, status in [
        ("/scan/US", {"items": one, "scan": {"min_roi": 30}}, 400),  # an unknown setting
        ("/scan/US", {"items": one, "scan": {"max_sales_rank": 0}}, 400),
        ("/scan/US", {"items": one, "scan": ["min_roi_percent"]}, 400),
        ("/scan/US", {"items": []}, 400),
        ("/scan/US", {"items": [{"sku": "S1", "cost": 1}]}, 400),  # no code key
        ("/scan/US", {"items": one, "cost_column": "Our price"}, 400),  # a key no item has
        ("/scan/US", {"items": one * too_many}, 400),  # BATCH_TOO_LARGE
        ("/scan/XX", {"items": one}, 400),
        ("/scan/US", ["not", "an", "object"], 400),
    ]:
        refused = client.post(url, json=sent)
        assert refused.status_code == status, (sent, refused.get_json())
        assert_conforms(spec, "POST", "/scan/{country}", status, refused.get_json())
    refused = client.post("/scan/US", data="upc,cost\n012345678905,1\n", content_type="text/csv")
    assert refused.status_code == 415
    assert_conforms(spec, "POST", "/scan/{country}", 415, refused.get_json())


def xlsx(rows: list[list[Any]]) -> bytes:
    book = Workbook()
    for row in rows:
        book.active.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def test_a_scan_job_matches_the_document(make_app, emulator):
    """Scan jobs of a CSV body, an XLSX upload and JSON items: the job, its results (JSON, filtered, CSV, XLSX) and its refusals."""
    emulator.configure(plans=FAMILY_PLANS, rate=50, burst=50)
    app = make_app()
    client = app.test_client()
    spec = client.get("/openapi.json").get_json()
    text = (
        "UPC,Unit Cost,Case Pack,Title,Notes\r\n"
        + "".join(f"{upc(f'B00SCAN{n:03d}')},$2.50,6,Widget {n},n{n}\r\n" for n in range(4))
        + "12345,1,1,x,bad\r\n"
        + f"{upc('B00SCAN005')},cheap,1,y,cheap\r\n"
    )
    # A title above the header, a cost column of a name of its own, an EAN stored as a number (its leading zero lost).
    workbook = xlsx([["Supplier list"], ["EAN", "List price", "Our price"], [int("0" + upc("B00SCAN003")), 99.0, 0.5]])
    created = [
        client.post("/jobs/US?scan=true&skip_restricted=false&min_roi_percent=40&fulfillment=fbm", data=text, content_type="text/csv"),
        client.post(
            "/jobs/US?scan=true&cost_column=Our%20price&max_sales_rank=100000",
            data={"file": (io.BytesIO(workbook), "list.xlsx", XLSX)},
        ),
        client.post(
            "/jobs/US",
            json={
                "items": [{"asin": "B00SCAN003", "Our price": "2,50 €", "Inner pack": 6}, {"asin": "B0000000XX", "Our price": 1}],
                "cost_column": "Our price",
                "pack_column": "Inner pack",
                "scan": {"price_source": "LOWEST_OFFER"},
            },
        ),
    ]
    lookup = client.post("/jobs/US", json={"asins": ["B07N4M94X4"]})
    for response in (*created, lookup):
        assert response.status_code == 202, response.get_json()
        assert_conforms(spec, "POST", "/jobs/{country}", 202, response.get_json())
    assert lookup.get_json()["scan"] is None
    while app.extensions["jobs"].runner.run_once():
        pass
    for response in created:
        job_id = response.get_json()["id"]
        view = client.get(f"/jobs/{job_id}").get_json()
        assert view["status"] == "done"
        assert_conforms(spec, "GET", "/jobs/{job_id}", 200, view)
        assert_scan_view_is_documented_exactly(spec, view)
        results = client.get(f"/jobs/{job_id}/results")
        assert_conforms(spec, "GET", "/jobs/{job_id}/results", 200, results.get_json())
        entries = results.get_json()["results"]
        assert len(entries) == view["counts"]["total"]
        for entry in entries:
            assert_scan_entry_is_documented_exactly(spec, entry)
            # A file's row has a cell for every column; a JSON item, its own keys.
            assert set(entry["input"]) <= set(view["scan"]["columns"])
            assert list(entry["input"]) == view["scan"]["columns"] or view["source"] == "json scan"
        kept = client.get(f"/jobs/{job_id}/results?verdict=buy,REVIEW")
        assert_conforms(spec, "GET", "/jobs/{job_id}/results", 200, kept.get_json())
        assert [e["Scan"]["verdict"] for e in kept.get_json()["results"]] == [
            e["Scan"]["verdict"] for e in entries if e["Scan"]["verdict"] in (BUY, REVIEW)
        ]
        rows = list(csv.reader(io.StringIO(client.get(f"/jobs/{job_id}/results?format=csv").get_data(as_text=True))))
        columns = view["scan"]["columns"]
        assert rows[0] == [*columns, *output_names(columns)] and len(rows) == 1 + len(entries)
        book = client.get(f"/jobs/{job_id}/results?format=xlsx")
        assert book.status_code == 200
        assert book.mimetype in spec["paths"]["/jobs/{job_id}/results"]["get"]["responses"]["200"]["content"]
        sheet = load_workbook(io.BytesIO(book.get_data()), read_only=True).active
        assert [cell.value for cell in next(sheet.iter_rows())] == rows[0], "the XLSX is the CSV's table"
    first = client.get(f"/jobs/{created[0].get_json()['id']}").get_json()
    assert first["scan"]["verdicts"][REVIEW] and first["scan"]["verdicts"][BUY] and first["scan"]["verdicts"][SKIP]
    header = next(csv.reader(io.StringIO(client.get(f"/jobs/{first['id']}/results?format=csv").get_data(as_text=True))))
    assert "Title" in header and "scan_title" in header, "a scan column the list already has is written scan_<name>"
    jobs = client.get("/jobs")
    assert_conforms(spec, "GET", "/jobs", 200, jobs.get_json())
    assert {job["scan"] is None for job in jobs.get_json()["jobs"]} == {True, False}
    # Refusals.
    for url, status in [
        (f"/jobs/{lookup.get_json()['id']}/results?verdict=BUY", 400),
        (f"/jobs/{lookup.get_json()['id']}/results?format=xlsx", 400),
        (f"/jobs/{first['id']}/results?verdict=MAYBE", 400),
    ]:
        refused = client.get(url)
        assert refused.status_code == status, refused.get_json()
        assert_conforms(spec, "GET", "/jobs/{job_id}/results", status, refused.get_json())
    for url, sent, status in [
        ("/jobs/US?scan=true", "upc,price\r\n012345678905,3\r\n", 400),  # no cost column: INVALID_CSV
        ("/jobs/US?scan=true&cost_column=Our%20price", "upc,cost\r\n012345678905,3\r\n", 400),
        ("/jobs/US?scan=true&min_profit=lots", "upc,cost\r\n012345678905,3\r\n", 400),
        ("/jobs/US?scan=maybe", "upc,cost\r\n012345678905,3\r\n", 400),
    ]:
        refused = client.post(url, data=sent, content_type="text/csv")
        assert refused.status_code == status, (url, refused.get_json())
        assert_conforms(spec, "POST", "/jobs/{country}", status, refused.get_json())
    no_cost = client.post("/jobs/US?scan=true", data="upc,price\r\n1,3\r\n", content_type="text/csv").get_json()
    assert "'upc', 'price'" in no_cost["error"]["message"], "the columns the list has are named"
    refused = client.post("/jobs/US", json={"items": [{"upc": "012345678905", "cost": 1}], "scan": {"min_roi": 30}})
    assert refused.status_code == 400
    assert_conforms(spec, "POST", "/jobs/{country}", 400, refused.get_json())


@pytest.mark.parametrize("code", ENTRY_CODES)
def test_a_failed_lookup_answers_a_status_and_body_the_document_gives_for_its_code(app, spec, code):
    failure = ServiceError(code, f"{code} happened", retry_after=2.5 if code == "THROTTLED" else None)
    entry = app.extensions["asin_service"].failure_entry("B07N4M94X4", "US", failure)
    with app.test_request_context():
        response, status = entry_response(entry)
    for method, path in (("GET", "/asin/{asin}"), ("POST", "/asin/{country}")):
        assert_conforms(spec, method, path, status, response.get_json())


def test_answers_from_the_emulator_match_the_document(client, spec):
    """Each kind of answer once, through the app to the emulator, checked against its documented schema."""
    cases = [
        ("GET", "/asin/{asin}", "/asin/B07N4M94X4", None, 200),
        ("GET", "/asin/{asin}", "/asin/B07N4M94X4", None, 200),  # now from the cache
        ("GET", "/asin/{asin}", "/asin/NF00000001?country=uk", None, 404),
        ("GET", "/asin/{asin}", "/asin/not-an-asin", None, 400),
        ("GET", "/asin/{asin}", "/asin/B07N4M94X4?country=XX", None, 400),
        ("GET", "/asin/{asin}", "/asin/B07N4M94X4?refresh=maybe", None, 400),
        ("POST", "/asin/{country}", "/asin/us", {"asin": " b08n5wrwnw "}, 200),
        ("POST", "/asin/{country}", "/asin/US", {"asin": 42}, 400),
        ("POST", "/asin/{country}", "/asin/US", ["B07N4M94X4"], 400),
        ("POST", "/asin/batch/{country}", "/asin/batch/US", {"asins": ["B07N4M94X4", "NF00000001", "bad", None, {"a": 1}]}, 200),
        ("POST", "/asin/batch/{country}", "/asin/batch/US", {"asins": ["B07N4M94X4"] * 101}, 400),
        ("POST", "/asin/batch/{country}", "/asin/batch/XX", {"asins": ["B07N4M94X4"]}, 400),
        ("POST", "/asin/batch/{country}", "/asin/batch/US", {"asins": []}, 400),
        ("GET", "/health", "/health", None, 200),
        ("GET", "/config", "/config", None, 200),
        ("GET", "/openapi.json", "/openapi.json", None, 200),
    ]
    for method, template, url, body, status in cases:
        response = client.open(url, method=method, json=body)
        assert response.status_code == status, (method, url, response.get_json())
        assert_conforms(spec, method, template, status, response.get_json())
    metrics = client.get("/metrics")
    assert metrics.status_code == 200 and metrics.mimetype in spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    # A body that is not JSON at all.
    response = client.post("/asin/US", data="asin=B07N4M94X4", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert_conforms(spec, "POST", "/asin/{country}", 415, response.get_json())


def test_only_the_operations_documented_as_open_answer_without_an_api_key(make_app):
    app = make_app(api_keys=(API_KEY,))
    client = app.test_client()
    spec = client.get("/openapi.json").get_json()
    for method, path in sorted(documented_operations(spec)):
        operation = spec["paths"][path][method.lower()]
        open_ = operation.get("security", spec["security"]) == []
        url = re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES[m.group(1)], path)
        response = client.open(url, method=method, json=BODIES.get(path))
        if open_:
            assert response.status_code != 401, f"{method} {path} is documented as open but asks for a key"
        else:
            assert response.status_code == 401, f"{method} {path} is documented as needing a key but answered {response.status_code}"
            assert_conforms(spec, method, path, 401, response.get_json())
            keyed = client.open(url, method=method, json=BODIES.get(path), headers={"X-API-Key": API_KEY})
            assert keyed.status_code != 401


def test_docs_page_shows_every_operation_and_needs_nothing_from_elsewhere(client, spec):
    response = client.get("/docs")
    assert response.status_code == 200 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    for method, path in documented_operations(spec):
        assert f'<span class="method {method}">{method}</span> <code>{path}</code>' in page
    for name in spec["components"]["schemas"]:
        assert f'id="schema-{name}"' in page
    # Works offline, and under a policy that allows no script.
    assert "<script" not in page and "<link" not in page and 'src="' not in page
    assert "script-src" not in response.headers["Content-Security-Policy"]
