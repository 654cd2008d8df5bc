"""Checking answers against the OpenAPI document (routes/openapi.yaml) the service serves."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator


def response_validator(spec: dict[str, Any], method: str, path: str, status: int) -> Draft202012Validator:
    """A JSON Schema validator for the documented JSON body of `status` (OpenAPI 3.1 schemas are JSON Schema 2020-12)."""
    response = spec["paths"][path][method.lower()]["responses"][str(status)]
    if "$ref" in response:
        response = spec["components"]["responses"][response["$ref"].rsplit("/", 1)[-1]]
    schema = response["content"]["application/json"]["schema"]
    # The components at the root, so `#/components/...` references resolve.
    return Draft202012Validator({**schema, "components": spec["components"]})


def assert_conforms(spec: dict[str, Any], method: str, path: str, status: int, body: Any) -> None:
    validator = response_validator(spec, method, path, status)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(body)]
    assert not errors, f"{method} {path} -> {status} does not match the document: {errors}\n{body}"
