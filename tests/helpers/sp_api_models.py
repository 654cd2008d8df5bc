"""Amazon's SP-API models for the emulator's conformance tests, and strict JSON Schema validators of their definitions."""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

from jsonschema import Draft4Validator

REPO_ROOT = Path(__file__).resolve().parents[2]


@functools.cache
def _model_text(name: str) -> str:
    # The copy in ../shared/reference wins when present; tests/fixtures vendors the same files.
    shared = REPO_ROOT.parent / "shared/reference" / name
    return (shared if shared.is_file() else REPO_ROOT / "tests/fixtures" / name).read_text(encoding="utf-8")


def load_model(name: str) -> dict[str, Any]:
    """A fresh copy of the model `name`, e.g. "productFeesV0.json"."""
    return json.loads(_model_text(name))


def _closed(schema: Any) -> Any:
    """The schema with every object that declares properties closed to others, so an invented field fails."""
    if isinstance(schema, dict):
        closed = {key: _closed(value) for key, value in schema.items()}
        if "properties" in closed and "additionalProperties" not in closed:
            closed["additionalProperties"] = False
        return closed
    if isinstance(schema, list):
        return [_closed(value) for value in schema]
    return schema


def strict_validator(model: dict[str, Any], definition: str) -> Draft4Validator:
    """A validator for `#/definitions/<definition>` of a Swagger 2.0 model (JSON Schema draft 4), objects closed."""
    definitions = _closed(copy.deepcopy(model["definitions"]))
    return Draft4Validator({"$ref": f"#/definitions/{definition}", "definitions": definitions})


def schema_errors(model: dict[str, Any], definition: str, instance: Any) -> list[str]:
    """What keeps `instance` from matching the definition, one line per error (none when it matches)."""
    validator = strict_validator(model, definition)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(instance)]


def sandbox_response(model: dict[str, Any], operation_id: str, status: str = "200") -> Any:
    """The response of the first static sandbox example (`x-amzn-api-sandbox`) of an operation's `status` answer."""
    for methods in model["paths"].values():
        for operation in methods.values():
            if isinstance(operation, dict) and operation.get("operationId") == operation_id:
                return operation["responses"][status]["x-amzn-api-sandbox"]["static"][0]["response"]
    raise KeyError(operation_id)
