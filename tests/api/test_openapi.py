"""/openapi.json describes exactly the routes of API.md, with schemas, and passes a validator."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from openapi_spec_validator import validate

API_MD = Path(__file__).resolve().parents[3] / "shared" / "API.md"

# The routes of API.md (its tables), plus GET /api/v1/audit from the auth issue.
CONTRACT = {
    ("POST", "/api/v1/auth/register"), ("POST", "/api/v1/auth/login"), ("POST", "/api/v1/auth/refresh"),
    ("POST", "/api/v1/auth/logout"), ("GET", "/api/v1/auth/sessions"), ("DELETE", "/api/v1/auth/sessions/{id}"),
    ("POST", "/api/v1/auth/password"), ("POST", "/api/v1/auth/password-reset"), ("POST", "/api/v1/auth/api-keys"),
    ("GET", "/api/v1/auth/api-keys"), ("DELETE", "/api/v1/auth/api-keys/{id}"), ("GET", "/.well-known/jwks.json"),
    ("GET", "/api/v1/users/me"), ("PATCH", "/api/v1/users/me"), ("GET", "/api/v1/users"), ("POST", "/api/v1/users"),
    ("GET", "/api/v1/users/{id}"), ("PATCH", "/api/v1/users/{id}"), ("DELETE", "/api/v1/users/{id}"),
    ("POST", "/api/v1/users/{id}/password-reset"), ("GET", "/api/v1/audit"),
    ("POST", "/api/v1/collections"), ("GET", "/api/v1/collections"), ("GET", "/api/v1/collections/{name}"),
    ("DELETE", "/api/v1/collections/{name}"), ("POST", "/api/v1/collections/{name}/upsert"),
    ("POST", "/api/v1/collections/{name}/query"), ("POST", "/api/v1/collections/{name}/fetch"),
    ("GET", "/api/v1/collections/{name}/vectors"), ("POST", "/api/v1/collections/{name}/delete"),
    ("GET", "/api/v1/embedders"),
    ("GET", "/api/v1/ws"),
    ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"), ("GET", "/openapi.json"),
}


@pytest.fixture
async def document(client):
    response = await client.get("/openapi.json")
    assert response.status == 200
    return await response.json()


def _routes(document: dict) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in document["paths"].items() for method in item}


async def test_the_document_passes_the_openapi_31_validator(document):
    assert document["openapi"].startswith("3.1")
    validate(document)


async def test_it_describes_exactly_the_routes_of_the_contract(document):
    assert _routes(document) == CONTRACT


@pytest.mark.skipif(not API_MD.exists(), reason=f"{API_MD} is not beside this checkout")
def test_the_contract_list_here_matches_api_md():
    text = API_MD.read_text()
    found = set()
    top_level = ("/.well-known", "/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/api/v1")
    for method, path in re.findall(r"`(GET|POST|PATCH|DELETE) (/[^`\s]*)`", text):
        found.add((method, path if path.startswith(top_level) else "/api/v1" + path))
    found.discard(("GET", "/docs"))  # the Swagger UI page that shows this document, not an API route
    found.add(("GET", "/api/v1/audit"))
    assert found <= CONTRACT
    assert CONTRACT <= found


async def test_every_operation_has_responses_and_bodies_have_schemas(document):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            assert operation["responses"], (method, path)
            if "requestBody" in operation:
                schema = operation["requestBody"]["content"]["application/json"]["schema"]
                assert schema, (method, path)
            errors = [s for s in operation["responses"] if s.startswith(("4", "5"))]
            if path.startswith("/api/"):
                assert errors, f"{method} {path} documents no error response"
                for status in errors:
                    content = operation["responses"][status]["content"]
                    assert "application/problem+json" in content
