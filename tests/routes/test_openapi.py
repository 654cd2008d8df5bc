"""The OpenAPI document (routes/openapi.yaml): valid 3.1, one entry per route and method, answers that fit it, and /docs."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_spec_validator import validate

from routes.errors import entry_response
from routes.openapi import HTTP_METHODS, spec_source
from services.errors import ENTRY_CODES, ServiceError
from tests.helpers.openapi import assert_conforms
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
