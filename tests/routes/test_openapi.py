"""The OpenAPI document (routes/openapi.yaml): valid 3.1, one entry per route and method, answers that fit it, and /docs."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from routes.errors import entry_response
from routes.openapi import HTTP_METHODS, spec_source
from services.datasets import DATASETS, ENTRY_KEYS
from services.entry_csv import DATASET_COLUMNS, RESULT_COLUMNS, result_columns
from services.errors import ENTRY_CODES, NO_PRICE, SELLER_ID_MISSING, ServiceError
from tests.helpers.openapi import assert_conforms, error_lines
from tests.helpers.spapi import FAMILY_PLANS
from utils.marketplaces import SUPPORTED_CODES

# Methods Flask adds to every rule by itself.
AUTOMATIC_METHODS = {"HEAD", "OPTIONS"}
API_KEY = "test-key-0123456789abcdef"
# Path parameter values and a body that make each documented operation a valid request.
PATH_VALUES = {"asin": "B07N4M94X4", "country": "US", "job_id": "0123456789abcdef"}
BODIES = {
    "/asin/{country}": {"asin": "B07N4M94X4"},
    "/asin/batch/{country}": {"asins": ["B07N4M94X4"]},
    "/jobs/{country}": {"asins": ["B07N4M94X4"]},
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
