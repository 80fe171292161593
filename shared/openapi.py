"""OpenAPI 3 documents generated from the endpoints' marshmallow schemas (apispec)."""

from __future__ import annotations

import re
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

PROBLEM = {
    "type": "object",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
            "description": "messages per field at fault",
        },
    },
}

_PATH_PARAM = re.compile(r"<(?:[a-z]+:)?([a-zA-Z_][a-zA-Z0-9_]*)>")


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }


def build_spec(service: str, endpoints: list[Any]) -> dict[str, Any]:
    spec = APISpec(
        title=f"clustergov {service}",
        version="1",
        openapi_version="3.1.0",
        plugins=[MarshmallowPlugin()],
    )
    spec.components.schema("Problem", PROBLEM)
    spec.components.security_scheme(
        "bearer", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    )
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in sorted(endpoints, key=lambda e: (e.route, e.method)):
        path = _PATH_PARAM.sub(r"{\1}", endpoint.route)
        operation: dict[str, Any] = {
            "operationId": endpoint.method_name,
            "summary": endpoint.summary,
            "parameters": [
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                for name in _PATH_PARAM.findall(endpoint.route)
            ],
            "responses": {
                str(endpoint.status): {"description": "success"},
                "400": _problem("malformed request"),
                "422": _problem("invalid fields or a broken rule"),
            },
        }
        if endpoint.response_schema is not None:
            schema: Any = endpoint.response_schema
            if endpoint.many:
                schema = {"type": "array", "items": schema}
            operation["responses"][str(endpoint.status)]["content"] = {
                "application/json": {"schema": schema}
            }
        if endpoint.args_schema is not None:
            operation["parameters"].append({"in": "query", "schema": endpoint.args_schema})
        if endpoint.body_schema is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": endpoint.body_schema}},
            }
        if endpoint.raw_body:
            body = operation.setdefault("requestBody", {"required": True, "content": {}})
            for media_type in endpoint.raw_body:
                body["content"][media_type] = {"schema": {"type": "string"}}
            operation["responses"]["415"] = _problem("a body of another media type")
        if endpoint.method == "POST":
            operation["parameters"].append(
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string", "maxLength": 200},
                    "description": "retrying with the same key and body returns the first answer",
                }
            )
            operation["responses"]["409"] = _problem("concurrent changes; retry")
        if endpoint.roles is not None:
            operation["security"] = [{"bearer": []}]
            operation["description"] = "Roles: " + ", ".join(endpoint.roles)
            operation["responses"]["401"] = _problem("missing, invalid or expired token")
            operation["responses"]["403"] = _problem("role or scope not allowed")
        paths.setdefault(path, {})[endpoint.method.lower()] = operation
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()
