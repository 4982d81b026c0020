"""/metrics carries what an operator watches: requests by route template, latency, DB pool use, and
whether each backing service answers (refreshed at scrape time, not only when /readyz is polled)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from daemon.context import READINESS
from daemon.settings import Settings


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_metrics_carry_pool_use_backend_health_and_requests_by_route(aiohttp_client, backend_settings: Settings):
    from daemon.app import create_app

    client = await aiohttp_client(create_app(backend_settings))
    assert (await client.get("/healthz")).status == 200
    response = await client.get("/metrics")
    assert response.status == 200
    samples = _samples(await response.text())

    assert samples[("bastion_db_pool_connections", (("state", "size"),))] >= 1
    assert ("bastion_db_pool_connections", (("state", "in_use"),)) in samples
    for service in client.app[READINESS]:
        assert samples[("bastion_backend_up", (("service", service),))] == 1, service
    assert {"database", "secrets"} <= set(client.app[READINESS])
    assert samples[("bastion_http_requests_total", (("method", "GET"), ("route", "/healthz"), ("status", "200")))] == 1
    assert samples[("bastion_http_request_duration_seconds_count", (("method", "GET"), ("route", "/healthz")))] == 1


def test_request_latencies_fall_in_prometheus_buckets_and_counts_add_up() -> None:
    """The request metrics are kept by hand (daemon/metrics.py), so their exposition is checked here."""
    from prometheus_client import generate_latest

    from daemon.metrics import Metrics

    metrics = Metrics()
    for latency in (0.0004, 0.001, 0.0011, 0.3, 20.0):  # 0.001 is on a bound: `le` counts it there
        metrics.requests.observe("GET", "/healthz", 200, latency)
    metrics.requests.observe("GET", "/healthz", 503, 0.002)
    samples = _samples(generate_latest(metrics.registry).decode())

    def bucket(le: str) -> float:
        return samples[("bastion_http_request_duration_seconds_bucket", (("le", le), ("method", "GET"), ("route", "/healthz")))]

    assert [bucket(le) for le in ("0.001", "0.0025", "0.25", "0.5", "10.0", "+Inf")] == [2, 4, 4, 5, 5, 6]
    labels = (("method", "GET"), ("route", "/healthz"))
    assert samples[("bastion_http_request_duration_seconds_count", labels)] == 6
    assert abs(samples[("bastion_http_request_duration_seconds_sum", labels)] - 20.3045) < 1e-9
    assert samples[("bastion_http_requests_total", (*labels, ("status", "200")))] == 5
    assert samples[("bastion_http_requests_total", (*labels, ("status", "503")))] == 1


async def test_a_backend_that_stops_answering_shows_as_down(aiohttp_client, settings: Settings):
    from daemon.app import create_app

    app = create_app(settings)
    client = await aiohttp_client(app)

    async def broken() -> None:
        raise ConnectionError("gone")

    app[READINESS]["secrets"] = broken
    samples = _samples(await (await client.get("/metrics")).text())
    assert samples[("bastion_backend_up", (("service", "secrets"),))] == 0
    assert samples[("bastion_backend_up", (("service", "database"),))] == 1
    ready = await client.get("/readyz")
    assert ready.status == 503
    assert "secrets" in (await ready.json())["detail"]


async def test_every_family_an_operator_watches_is_declared(client):
    text = await (await client.get("/metrics")).text()
    families = {family.name for family in text_string_to_metric_families(text)}
    assert {
        "bastion_http_requests",
        "bastion_http_request_duration_seconds",
        "bastion_websockets_open",
        "bastion_events_published",
        "bastion_rate_limit_rejections",
        "bastion_db_pool_connections",
        "bastion_backend_up",
    } <= families


async def test_a_rate_limited_request_is_counted(aiohttp_client, data_dir):
    from daemon.app import create_app

    settings = Settings.from_env({"BASTION_AUTH_RATE_LIMIT_PER_MINUTE": "1"}, data_dir=data_dir)
    client = await aiohttp_client(create_app(settings))
    statuses = [(await client.post("/api/v1/auth/login", json={})).status for _ in range(2)]
    assert statuses == [422, 429]
    samples = _samples(await (await client.get("/metrics")).text())
    assert samples[("bastion_rate_limit_rejections_total", (("limit", "auth"),))] == 1
