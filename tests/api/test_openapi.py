"""/openapi.json passes a validator and serves exactly the routes of docs/api.md, the repository's contract,
each of which the contract shows with a curl example and its own errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from openapi_spec_validator import validate

CONTRACT_MD = Path(__file__).resolve().parents[2] / "docs" / "api.md"
ROUTE_HEADING = re.compile(r"### `(GET|POST|PUT|PATCH|DELETE) (/\S*)`")
# What docs/api.md says every route may answer ("Every route may answer"), so a route's own Errors line
# need not repeat them; anything else a route can answer (404, 409, ...) it must name.
ANSWERED_BY_EVERY_ROUTE = {400, 401, 403, 405, 413, 415, 422, 429, 503}


def _contract() -> dict[tuple[str, str], str]:
    """Each route heading of docs/api.md with the text of its section (up to the next heading; a `#` line
    inside a code block, such as a Prometheus comment, is not a heading)."""
    sections: dict[tuple[str, str], list[str]] = {}
    current: list[str] | None = None
    in_code = False
    for line in CONTRACT_MD.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and re.match(r"#{1,3} ", line):
            match = ROUTE_HEADING.fullmatch(line.strip())
            current = None
            if match:
                route = (match[1], match[2])
                assert route not in sections, f"{route} has two sections in docs/api.md"
                current = sections[route] = []
            continue
        if current is not None:
            current.append(line)
    return {route: "\n".join(lines) for route, lines in sections.items()}


def _curl_calls(section: str) -> set[tuple[str, str]]:
    """(method, path) of every curl call in the section's sh blocks, the path as the example spells it."""
    calls = set()
    for block in re.findall(r"```sh\n(.*?)```", section, re.S):
        for command in re.findall(r"\bcurl\b[^|)\n]*", block.replace("\\\n", " ")):
            method = re.search(r"\s-X\s+([A-Z]+)", command)
            url = re.search(r'"\$BASTION(/[^"?\s]*)', command)
            if url:
                calls.add((method[1] if method else "GET", url[1]))
    return calls


def _path_pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{\w+\}", template)
    return re.compile("[^/]+".join(re.escape(part) for part in parts))


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


async def test_every_route_served_is_in_the_contract_with_a_curl_example(document):
    contract = _contract()
    missing = sorted(_routes(document) - set(contract))
    assert not missing, f"served but not in docs/api.md: {missing}"
    for (method, path), section in contract.items():
        pattern = _path_pattern(path)
        assert any(m == method and pattern.fullmatch(p) for m, p in _curl_calls(section)), (
            f"docs/api.md: {method} {path} has no curl example calling it"
        )


async def test_every_route_in_the_contract_is_served(document):
    not_served = sorted(set(_contract()) - _routes(document))
    assert not not_served, f"in docs/api.md but not served: {not_served}"


async def test_every_route_in_the_contract_names_its_own_errors(document):
    for (method, path), section in _contract().items():
        errors = re.search(r"\*\*Errors:\*\*(.*?)(?:\n\n|$)", section, re.S)
        assert errors, f"docs/api.md: {method} {path} has no Errors line"
        named = {int(status) for status in re.findall(r"\b([45]\d\d)\b", errors[1])}
        responses = document["paths"].get(path, {}).get(method.lower(), {}).get("responses", {})
        own = {int(s) for s in responses if s.startswith(("4", "5"))} - ANSWERED_BY_EVERY_ROUTE
        assert own <= named, f"docs/api.md: {method} {path} does not name {sorted(own - named)}"


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
