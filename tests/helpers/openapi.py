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


def schema_validator(spec: dict[str, Any], name: str) -> Draft202012Validator:
    """A JSON Schema validator for the component schema `name` (e.g. "SuccessEntry")."""
    return Draft202012Validator({"$ref": f"#/components/schemas/{name}", "components": spec["components"]})


def error_lines(validator: Draft202012Validator, instance: Any) -> list[str]:
    """What keeps `instance` from matching, one line per error (none when it matches)."""
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(instance)]


def assert_conforms(spec: dict[str, Any], method: str, path: str, status: int, body: Any) -> None:
    errors = error_lines(response_validator(spec, method, path, status), body)
    assert not errors, f"{method} {path} -> {status} does not match the document: {errors}\n{body}"
