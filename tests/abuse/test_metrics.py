"""/metrics against a scraper nobody invited: with BASTION_METRICS_TOKEN set it answers only the token's
holder, and however many scrapes and probes come at once, each backing service is checked once at a time.

The finding of issue 21: /metrics was public, unlimited, and ran every readiness check per scrape."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from daemon.api import ops
from daemon.app import create_app
from daemon.context import READINESS
from tests.helpers import problem

TOKEN = "a metrics token of at least 32 characters"


async def test_with_a_metrics_token_only_its_holder_may_scrape(aiohttp_client, settings):
    client = await aiohttp_client(create_app(replace(settings, metrics_token=TOKEN)))
    for headers in ({}, {"Authorization": "Bearer not the token"}, {"Authorization": f"Bearer {TOKEN[:-1]}"}):
        refused = await client.get("/metrics", headers=headers)
        assert refused.status == 401, headers
        assert (await problem(refused))["code"] == "unauthorized"
    scraped = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert scraped.status == 200 and "bastion_backend_up" in await scraped.text()
    assert (await client.get("/healthz")).status == 200  # the probes need no token


def counting_check(client):
    """A readiness check of a backend that always answers, counting its runs; returns the count's reader."""
    runs = []

    async def counted() -> None:
        runs.append(1)

    client.app[READINESS]["counted"] = counted
    return lambda: len(runs)


async def test_fifty_scrapes_and_probes_at_once_check_each_backend_once(aiohttp_client, settings, monkeypatch):
    monkeypatch.setattr(ops, "READY_REUSE_S", 3600.0)  # the window made long, so no assertion rests on timing
    client = await aiohttp_client(create_app(settings))
    calls = counting_check(client)
    responses = await asyncio.gather(*(client.get("/metrics" if n % 2 else "/readyz") for n in range(50)))
    assert [r.status for r in responses] == [200] * 50
    assert calls() == 1


async def test_past_the_reuse_window_each_answer_is_checked_again(aiohttp_client, settings, monkeypatch):
    monkeypatch.setattr(ops, "READY_REUSE_S", 0.0)
    client = await aiohttp_client(create_app(settings))
    calls = counting_check(client)
    for _ in range(3):
        assert (await client.get("/readyz")).status == 200
    assert calls() == 3
