"""The conventions of docs/api.md that every route shares, on a real app with probe routes of its own."""

from __future__ import annotations

import io
import json
import logging

import pytest
from pydantic import Field

from daemon.context import BODY, ENDPOINTS, QUERY
from daemon.api.routing import Routes
from daemon.app import create_app
from daemon.settings import Settings
from shared.models import PageQuery, Strict

SECURITY_HEADERS = {
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "SAMEORIGIN",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "X-DNS-Prefetch-Control": "off",
    "X-Permitted-Cross-Domain-Policies": "none",
    "X-XSS-Protection": "0",
}


class Echo(Strict):
    name: str = Field(min_length=1, max_length=10)
    count: int = Field(ge=0)


probe = Routes(prefix="/probe")


@probe.post("/echo", summary="echo", tag="probe", body=Echo, response=Echo, access="public")
async def echo(request):
    return request[BODY]


@probe.get("/page", summary="page", tag="probe", query=PageQuery, response=dict, access="public")
async def page(request):
    return {"limit": request[QUERY].limit}


@probe.get("/boom", summary="boom", tag="probe", response=dict, access="public")
async def boom(request):
    raise RuntimeError("SELECT secret FROM internals")


@probe.get("/private", summary="private", tag="probe", response=dict)
async def private(request):
    return {}


def _app(settings: Settings):
    app = create_app(settings)
    probe.add_to(app.router)
    app[ENDPOINTS].extend(probe.endpoints)
    return app


@pytest.fixture
async def api(aiohttp_client, settings):
    return await aiohttp_client(_app(settings))


def assert_problem(response, body, status, code):
    assert response.status == status
    assert response.content_type == "application/problem+json"
    assert body["status"] == status and body["code"] == code
    assert body["request_id"] == response.headers["X-Request-ID"]
    assert {"type", "title", "detail"} <= body.keys()


async def test_every_response_carries_the_security_headers_and_no_server_version(api):
    for path in ("/healthz", "/no-such-route"):
        response = await api.get(path)
        for name, value in SECURITY_HEADERS.items():
            assert response.headers[name] == value, name
        assert "Content-Security-Policy" in response.headers
        assert "X-Powered-By" not in response.headers
        assert "aiohttp" not in response.headers.get("Server", "").lower()


async def test_a_well_formed_request_id_is_echoed_and_a_bad_one_replaced(api):
    response = await api.get("/healthz", headers={"X-Request-ID": "trace-1234abcd"})
    assert response.headers["X-Request-ID"] == "trace-1234abcd"
    response = await api.get("/healthz", headers={"X-Request-ID": "bad id\twith junk"})
    assert response.headers["X-Request-ID"] != "bad id\twith junk"
    assert len(response.headers["X-Request-ID"]) == 32


async def test_unknown_route_is_404_problem(api):
    response = await api.get("/api/v1/nothing-here")
    assert_problem(response, await response.json(content_type=None), 404, "not_found")


async def test_wrong_method_is_405_with_allow(api):
    response = await api.delete("/healthz")
    assert_problem(response, await response.json(content_type=None), 405, "method_not_allowed")
    assert "GET" in response.headers["Allow"]


async def test_malformed_json_is_400_invalid_json(api):
    response = await api.post("/probe/echo", data=b'{"name": "x",', headers={"Content-Type": "application/json"})
    assert_problem(response, await response.json(content_type=None), 400, "invalid_json")


async def test_invalid_utf8_is_400_invalid_json(api):
    response = await api.post("/probe/echo", data=b'{"name": "\xff\xfe"}', headers={"Content-Type": "application/json"})
    assert_problem(response, await response.json(content_type=None), 400, "invalid_json")


async def test_json_nested_ten_thousand_deep_is_refused_not_crashed(api):
    response = await api.post("/probe/echo", data=b"[" * 10000 + b"]" * 10000, headers={"Content-Type": "application/json"})
    assert_problem(response, await response.json(content_type=None), 400, "invalid_json")


async def test_wrong_content_type_is_415(api):
    response = await api.post("/probe/echo", data=b"name=x", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert_problem(response, await response.json(content_type=None), 415, "unsupported_media_type")


async def test_body_over_the_limit_is_413(api):
    body = json.dumps({"name": "x" * (2 << 20), "count": 1}).encode()
    response = await api.post("/probe/echo", data=io.BytesIO(body), headers={"Content-Type": "application/json"})
    assert_problem(response, await response.json(content_type=None), 413, "payload_too_large")


async def test_invalid_fields_are_422_naming_each_field(api):
    response = await api.post("/probe/echo", json={"name": "", "count": -1, "extra": True})
    body = await response.json(content_type=None)
    assert_problem(response, body, 422, "validation_failed")
    assert {e["field"] for e in body["errors"]} == {"name", "count", "extra"}


async def test_a_bad_query_value_is_422(api):
    for query in ("limit=0", "limit=201", "limit=ten", "bogus=1"):
        response = await api.get(f"/probe/page?{query}")
        assert_problem(response, await response.json(content_type=None), 422, "validation_failed")
    response = await api.get("/probe/page?limit=7")
    assert await response.json() == {"limit": 7}


async def test_an_unexpected_error_is_500_without_details_and_logged_once(api, caplog):
    caplog.set_level(logging.ERROR, logger="bastion.errors")
    response = await api.get("/probe/boom", headers={"X-Request-ID": "req-boom-0001"})
    text = await response.text()
    assert response.status == 500
    assert "SELECT" not in text and "Traceback" not in text and "RuntimeError" not in text
    errors = [r for r in caplog.records if r.name == "bastion.errors"]
    assert len(errors) == 1 and errors[0].request_id == "req-boom-0001"


async def test_a_protected_route_without_a_token_is_401(api):
    response = await api.get("/probe/private")
    assert_problem(response, await response.json(content_type=None), 401, "unauthorized")


async def test_a_token_in_the_url_is_refused(api):
    response = await api.get("/probe/private?access_token=abc")
    assert_problem(response, await response.json(content_type=None), 401, "unauthorized")


async def test_rate_limit_headers_then_429_with_retry_after(aiohttp_client, data_dir):
    api = await aiohttp_client(_app(Settings.from_env({}, data_dir=data_dir, rate_limit_per_minute=3)))
    for remaining in (2, 1, 0):
        response = await api.post("/probe/echo", json={"name": "a", "count": 1})
        assert response.status == 200
        assert response.headers["RateLimit-Limit"] == "3"
        assert response.headers["RateLimit-Remaining"] == str(remaining)
    response = await api.post("/probe/echo", json={"name": "a", "count": 1})
    assert_problem(response, await response.json(content_type=None), 429, "rate_limited")
    assert int(response.headers["Retry-After"]) >= 1


async def test_rate_limiting_runs_before_authentication(aiohttp_client, data_dir):
    """A flood of bad tokens is throttled without each one costing a token check."""
    api = await aiohttp_client(_app(Settings.from_env({}, data_dir=data_dir, rate_limit_per_minute=1)))
    await api.get("/probe/private", headers={"Authorization": "Bearer junk"})
    response = await api.get("/probe/private", headers={"Authorization": "Bearer junk"})
    assert response.status == 429


async def test_cors_only_for_configured_origins_and_never_null(aiohttp_client, data_dir):
    settings = Settings.from_env({"BASTION_CORS_ORIGINS": "https://ops.example.com"}, data_dir=data_dir)
    api = await aiohttp_client(_app(settings))
    ok = await api.get("/healthz", headers={"Origin": "https://ops.example.com"})
    assert ok.headers["Access-Control-Allow-Origin"] == "https://ops.example.com"
    for origin in ("https://evil.example.com", "null"):
        response = await api.get("/healthz", headers={"Origin": origin})
        assert "Access-Control-Allow-Origin" not in response.headers
        preflight = await api.options(
            "/healthz", headers={"Origin": origin, "Access-Control-Request-Method": "GET"}
        )
        assert preflight.status == 403


async def test_the_access_log_is_one_json_line_per_request(api, caplog):
    caplog.set_level(logging.INFO, logger="bastion.access")
    await api.get("/probe/page?limit=3", headers={"X-Request-ID": "req-log-00001"})
    lines = [r for r in caplog.records if r.name == "bastion.access"]
    assert len(lines) == 1
    record = lines[0]
    assert (record.method, record.route, record.status, record.request_id) == ("GET", "/probe/page", 200, "req-log-00001")
    assert record.latency_ms >= 0


async def test_health_readiness_metrics(api):
    assert (await (await api.get("/healthz")).json()) == {"status": "ok", "checks": None}
    ready = await api.get("/readyz")
    assert ready.status == 200 and (await ready.json())["checks"]["database"] == "ok"
    metrics = await (await api.get("/metrics")).text()
    assert "bastion_http_requests_total" in metrics and 'route="/healthz"' in metrics


async def test_readiness_names_the_service_that_is_down(api):
    from daemon.context import READINESS

    async def down():
        raise ConnectionError("gone")

    api.app[READINESS]["postgresql"] = down
    response = await api.get("/readyz")
    body = await response.json(content_type=None)
    assert response.status == 503 and "postgresql" in body["detail"] and response.headers["Retry-After"]


async def test_openapi_is_generated_from_the_routes(api):
    document = await (await api.get("/openapi.json")).json()
    assert document["openapi"] == "3.1.0"
    assert "/probe/echo" in document["paths"]
    body = document["paths"]["/probe/echo"]["post"]
    assert body["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Echo"}
    assert {"400", "413", "415", "422"} <= set(body["responses"])


async def test_docs_are_served_from_our_own_assets(api):
    page = await api.get("/docs")
    html = await page.text()
    assert page.status == 200 and "/docs/assets/swagger-ui-bundle.js" in html and "<script>" not in html
    asset = await api.get("/docs/assets/swagger-ui-bundle.js")
    assert asset.status == 200 and len(await asset.read()) > 100_000
