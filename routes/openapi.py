"""The API's own description: the OpenAPI document at /openapi.json and a page rendering it at /docs.

The document is kept beside the routes in routes/openapi.yaml; the running service fills in what
depends on its settings (version, MAX_BATCH_SIZE, DEFAULT_COUNTRY). The page is rendered here from
the same document, with no script and nothing fetched from elsewhere, so it works offline.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from pathlib import Path
from typing import Any

import yaml
from flask import Blueprint, Response, current_app, jsonify, render_template
from markupsafe import Markup, escape

bp = Blueprint("openapi", __name__, template_folder="templates")

SPEC_PATH = Path(__file__).with_name("openapi.yaml")
DOCS_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


@functools.cache
def spec_source() -> dict[str, Any]:
    """routes/openapi.yaml as written (read once per process)."""
    with SPEC_PATH.open(encoding="utf-8") as file:
        return yaml.safe_load(file)


def build_spec(version: str, max_batch_size: int, default_country: str) -> dict[str, Any]:
    """The document as served (a fresh copy): the source with this service's version, batch limit and default country."""
    spec = copy.deepcopy(spec_source())
    spec["info"]["version"] = version
    spec["servers"] = [{"url": "/"}]
    schemas = spec["components"]["schemas"]
    for field in ("asins", "identifiers"):
        schemas["BatchRequest"]["properties"][field]["maxItems"] = max_batch_size
    spec["components"]["parameters"]["CountryQuery"]["schema"] = {
        "$ref": "#/components/schemas/Country",
        "default": default_country,
    }
    return spec


def served_spec() -> dict[str, Any]:
    """The document for the running app."""
    settings = current_app.config["SETTINGS"]
    return build_spec(current_app.config["VERSION"], settings.max_batch_size, settings.default_country)


@bp.get("/openapi.json")
def get_spec() -> Response:
    """The OpenAPI 3.1 document of this service."""
    return jsonify(served_spec())


@bp.get("/docs")
def get_docs() -> Response:
    """Every operation with its parameters, body and answers, as one HTML page."""
    spec = served_spec()
    page = render_template("openapi/docs.html", spec=spec, operations=operations(spec), schemas=schema_tables(spec), md=inline_markdown)
    response = Response(page, content_type="text/html; charset=utf-8")
    # The page's only resource is its own <style>: allow that, and still no script or anything fetched.
    response.headers["Content-Security-Policy"] = DOCS_CSP
    return response


# -- the page's view of the document --------------------------------------------------------


def resolve(spec: dict[str, Any], node: Any) -> Any:
    """`node` with a local `$ref` followed (repeatedly); anything else as is."""
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and node["$ref"].startswith("#/"):
        target: Any = spec
        for part in node["$ref"][2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def schema_label(schema: Any) -> str:
    """A short human name for a schema: its component name, type, enum or combination."""
    if not isinstance(schema, dict):
        return "any"
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "const" in schema:
        return json.dumps(schema["const"])
    if "enum" in schema:
        return " | ".join(_shown(value) for value in schema["enum"])
    for combinator, joiner in (("oneOf", " or "), ("anyOf", " or ")):
        if combinator in schema:
            return joiner.join(schema_label(part) for part in schema[combinator])
    if "allOf" in schema:
        return schema_label(schema["allOf"][0])
    kind = schema.get("type")
    if kind == "array":
        return f"array of {schema_label(schema.get('items'))}"
    if isinstance(kind, list):
        return " | ".join(kind)
    return kind or "any"


def operations(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Each operation as the page shows it: method, path, auth, parameters, body and responses."""
    found = []
    for path, item in spec["paths"].items():
        for method in HTTP_METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            parameters = [resolve(spec, p) for p in item.get("parameters", []) + operation.get("parameters", [])]
            body = resolve(spec, operation.get("requestBody"))
            found.append(
                {
                    "id": operation.get("operationId", f"{method}-{path}"),
                    "method": method.upper(),
                    "path": path,
                    "summary": operation.get("summary", ""),
                    "description": operation.get("description", ""),
                    "needs_key": operation.get("security", spec.get("security")) not in (None, []),
                    "parameters": [
                        {
                            "name": p["name"],
                            "in": p["in"],
                            "required": p.get("required", False),
                            "type": schema_label(p.get("schema")) + _default_of(p.get("schema")),
                            "description": p.get("description", ""),
                        }
                        for p in parameters
                    ],
                    "body": _media(spec, body) if body else None,
                    "responses": [
                        {"status": status, **_media(spec, resolve(spec, response))} for status, response in operation["responses"].items()
                    ],
                }
            )
    return found


def _default_of(schema: Any) -> str:
    """`, default X` for a schema with a default, else an empty string."""
    if isinstance(schema, dict) and "default" in schema:
        return f", default {_shown(schema['default'])}"
    return ""


def _shown(value: Any) -> str:
    """A JSON value as the page writes it: strings bare, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def _media(spec: dict[str, Any], holder: dict[str, Any]) -> dict[str, Any]:
    """Description, media types, schema labels and example of a request body or response."""
    content = holder.get("content", {})
    example = next((m["example"] for m in content.values() if "example" in m), None)
    return {
        "description": holder.get("description", ""),
        "headers": sorted(holder.get("headers", {})),
        "content": [{"type": media_type, "schema": schema_label(media.get("schema"))} for media_type, media in content.items()],
        "example": json.dumps(example, indent=2) if example is not None else None,
    }


def schema_tables(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Each component schema with its fields (name, type, required, description)."""
    tables = []
    for name, schema in spec["components"]["schemas"].items():
        required = set(schema.get("required", []))
        fields = [
            {
                "name": field,
                "type": schema_label(sub),
                "required": field in required,
                "description": sub.get("description", "") if isinstance(sub, dict) else "",
            }
            for field, sub in schema.get("properties", {}).items()
        ]
        label = schema_label({k: v for k, v in schema.items() if k != "properties"})
        tables.append({"name": name, "label": label, "description": schema.get("description", ""), "fields": fields})
    return tables


_CODE_SPAN = re.compile(r"`([^`]+)`")


def inline_markdown(text: str) -> Markup:
    """`text` HTML-escaped, with `code spans` as <code> and blank lines as paragraph breaks."""
    escaped = str(escape(text.strip()))
    html = _CODE_SPAN.sub(r"<code>\1</code>", escaped)
    paragraphs = [p.strip() for p in html.split("\n\n") if p.strip()]
    return Markup("".join(f"<p>{p}</p>" for p in paragraphs))
