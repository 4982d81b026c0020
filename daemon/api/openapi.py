"""The OpenAPI 3.1 document, generated from the routes' declarations (api/routing.py)."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, TypeAdapter

from daemon.api.routing import Endpoint
from shared.models import Problem

_ERROR_TEXT = {
    400: "The body is not valid JSON",
    401: "Missing, malformed, expired or revoked credentials",
    403: "Authenticated but not allowed",
    404: "No such resource, or not visible to the caller",
    405: "Method not allowed",
    409: "A unique key is taken",
    413: "The body is over the limit",
    415: "The body is not application/json",
    422: "A field is not valid; `errors` names each one",
    429: "Rate limited; see Retry-After",
    503: "A backing service is unavailable; see Retry-After",
}


class _Schemas:
    def __init__(self) -> None:
        self.components: dict[str, Any] = {}

    def ref(self, kind: Any, mode: str) -> dict[str, Any]:
        schema = TypeAdapter(kind).json_schema(ref_template="#/components/schemas/{model}", mode=mode)  # type: ignore[arg-type]
        self.components.update(schema.pop("$defs", {}))
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            # A generic model is named like "Page[User]"; component names allow only [A-Za-z0-9._-].
            name = re.sub(r"\W+", "_", kind.__name__).strip("_")
            self.components[name] = schema
            return {"$ref": f"#/components/schemas/{name}"}
        return schema


def _error_statuses(spec: Endpoint) -> list[int]:
    statuses = {503}
    if spec.body is not None:
        statuses |= {400, 413, 415, 422}
    if spec.query is not None:
        statuses.add(422)
    if spec.access in ("user", "admin", "optional"):
        statuses |= {401, 403}
    if "{" in spec.path:
        statuses.add(404)
    if spec.rate:
        statuses.add(429)
    statuses |= set(spec.errors)
    return sorted(statuses)


def _operation(spec: Endpoint, schemas: _Schemas) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": spec.handler.__name__,
        "summary": spec.summary,
        "tags": [spec.tag],
        "responses": {},
    }
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
        for name in re.findall(r"{(\w+)}", spec.path)
    ]
    if spec.query is not None:
        query_schema = spec.query.model_json_schema(ref_template="#/components/schemas/{model}")
        required = set(query_schema.get("required", []))
        for name, prop in query_schema.get("properties", {}).items():
            params.append({"name": name, "in": "query", "required": name in required, "schema": prop})
    if params:
        op["parameters"] = params
    if spec.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": schemas.ref(spec.body, "validation")}},
        }
    if spec.response is None:
        op["responses"][str(spec.status)] = {"description": "Done; no body"}
    else:
        op["responses"][str(spec.status)] = {
            "description": "Success",
            "content": {spec.media_type: {"schema": schemas.ref(spec.response, "serialization")}},
        }
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for status in _error_statuses(spec):
        op["responses"][str(status)] = {"description": _ERROR_TEXT.get(status, "Error"), "content": problem}
    if spec.access == "optional":
        op["security"] = [{}, {"bearer": []}]
    elif spec.access != "public":
        op["security"] = [{"bearer": []}]
    return op


def build(endpoints: list[Endpoint], version: str) -> dict[str, Any]:
    schemas = _Schemas()
    schemas.ref(Problem, "serialization")
    paths: dict[str, dict[str, Any]] = {}
    for spec in endpoints:
        paths.setdefault(spec.path, {})[spec.method.lower()] = _operation(spec, schemas)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Bastion API",
            "version": version,
            "description": "Authentication, user management and vector search with live updates.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas.components,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An access token (JWT) from /api/v1/auth/login, or an API key",
                }
            },
        },
    }
