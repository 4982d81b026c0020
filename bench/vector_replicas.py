"""Vector writes between two replicas (issue 22): how soon an upsert on A is in B's index, and what reading
it on B at once costs.

    .venv/bin/python -m bench.vector_replicas              # about 2 minutes
    .venv/bin/python -m bench.vector_replicas --seconds 20 # a quick look

Two real `bastiond` (tests/daemon_process.py), data dirs of their own, on one PostgreSQL (a schema of the
benchmark's own, dropped after) and Redis (a key prefix of its own). A collection of `--preload` vectors of
384 dimensions; then, for `--seconds`, single-vector upserts on A at `--rate` a minute (10,000: the issue's
load), paced from the harness. Measured in the same run, all times from the event's publication (`at`, one
clock: one machine):

- applied in B's index: B's `bastion_vector_follow_seconds` histogram, its count over the run; p50 and p99
  interpolated within its buckets as Prometheus's histogram_quantile does (the goal: p99 under 100 ms);
- the baseline, the event bus itself: the same events delivered to a WebSocket client of B, exactly;
- read-your-writes: a probe every 200 ms upserts on A then queries B for that vector at once (the query
  catches B up from SQL when the event has not done it yet), against the same probe querying A; every
  B answer must hold the probe's vector.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import secrets
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import aiohttp
import numpy as np
import redis

from bench.run import LOAD_SETTINGS, machine, pg_schema
from daemon.clock import parse
from tests.conftest import REDIS_URL
from tests.daemon_process import Daemon, replicas

DIM = 384
PROBE_EVERY_S = 0.2
IN_FLIGHT = 32  # writes on their way at most: a daemon that falls behind gets a lower rate, reported, not a pile


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _histogram(text: str, name: str) -> list[tuple[float, float]]:
    """(upper bound, cumulative count) of a histogram in a Prometheus exposition."""
    found = re.findall(rf'^{name}_bucket{{le="([^"]+)"}} (\S+)$', text, re.M)
    return [(float(le), float(count)) for le, count in found]


def _quantile(buckets: list[tuple[float, float]], q: float) -> float:
    """histogram_quantile: linear within the bucket that holds the q-th observation."""
    total = buckets[-1][1]
    rank, lower, below = q * total, 0.0, 0.0
    for upper, count in buckets:
        if count >= rank:
            if upper == float("inf"):
                return lower
            return lower + (upper - lower) * ((rank - below) / (count - below) if count > below else 0)
        lower, below = upper, count
    return float("nan")


async def _metrics(http: aiohttp.ClientSession, daemon: Daemon) -> list[tuple[float, float]]:
    async with http.get(daemon.url + "/metrics") as response:
        return _histogram(await response.text(), "bastion_vector_follow_seconds")


def _vector(rng: np.random.Generator) -> list[float]:
    return rng.normal(size=DIM).astype(np.float32).round(5).tolist()


async def _run(a: Daemon, b: Daemon, args) -> dict:
    rng = np.random.default_rng(5)
    async with aiohttp.ClientSession() as http:
        async with http.post(a.url + "/api/v1/auth/login",
                             json={"email": "admin@example.com", "password": "correct horse battery staple"}) as r:
            headers = {"Authorization": f"Bearer {(await r.json())['access_token']}"}

        async def call(daemon: Daemon, path: str, body: dict) -> dict:
            async with http.post(daemon.url + "/api/v1/collections" + path, json=body, headers=headers) as response:
                assert response.status in (200, 201), await response.text()
                return await response.json()

        await call(a, "", {"name": "bench", "dimension": DIM, "metric": "cosine"})
        for start in range(0, args.preload, 500):
            await call(a, "/bench/upsert", {"vectors": [{"id": f"pre{i}", "values": _vector(rng)}
                                                         for i in range(start, min(args.preload, start + 500))]})
        await call(b, "/bench/query", {"vector": _vector(rng), "top_k": 1})  # B holds the collection from here
        await asyncio.sleep(3)
        before = await _metrics(http, b)

        delivered: list[float] = []
        async with http.ws_connect(b.url + "/api/v1/ws") as ws:
            await ws.send_json({"type": "auth", "token": headers["Authorization"][7:]})
            await ws.send_json({"type": "subscribe", "topics": ["collections/bench"]})

            async def hear() -> None:
                async for message in ws:
                    event = message.json()
                    if event.get("type") == "event" and event.get("event") == "vectors.upserted":
                        delivered.append(time.time() - parse(event["at"]).timestamp())

            listening = asyncio.create_task(hear())
            end = time.monotonic() + args.seconds
            interval = 60.0 / args.rate
            writes: list[asyncio.Task] = []

            room = asyncio.Semaphore(IN_FLIGHT)

            async def write(n: int) -> None:
                async with room:
                    await call(a, "/bench/upsert", {"vectors": [{"id": f"w{n}", "values": _vector(rng)}]})

            async def load() -> None:
                n, due = 0, time.monotonic()
                while due < end:
                    if room.locked():  # behind: skip this slot rather than queue it
                        due += interval
                        await asyncio.sleep(max(0.0, due - time.monotonic()))
                        continue
                    writes.append(asyncio.create_task(write(n)))
                    n += 1
                    due += interval
                    await asyncio.sleep(max(0.0, due - time.monotonic()))

            on_b: list[float] = []
            on_a: list[float] = []
            missed = 0

            async def probe() -> None:
                nonlocal missed
                n = 0
                while time.monotonic() < end:
                    for reader, took in ((b, on_b), (a, on_a)):
                        values = _vector(rng)
                        await call(a, "/bench/upsert", {"vectors": [{"id": f"probe{n}", "values": values}]})
                        started = time.perf_counter()
                        found = await call(reader, "/bench/query", {"vector": values, "top_k": 1})
                        took.append(time.perf_counter() - started)
                        if reader is b and [m["id"] for m in found["matches"]] != [f"probe{n}"]:
                            missed += 1
                        n += 1
                    await asyncio.sleep(PROBE_EVERY_S)

            await asyncio.gather(load(), probe())
            await asyncio.gather(*writes)
            await asyncio.sleep(3)  # the last events in flight
            listening.cancel()
        after = await _metrics(http, b)
    applied = [(upper, count - dict(before).get(upper, 0.0)) for upper, count in after]
    return {"writes": len(writes), "applied": applied, "delivered": delivered, "on_b": on_b, "on_a": on_a,
            "missed": missed}


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def report(result: dict, args) -> str:
    applied, delivered = result["applied"], result["delivered"]
    lines = [
        f"{machine()}; {result['writes']} single-vector upserts on A in {args.seconds} s "
        f"({result['writes'] * 60 / args.seconds:,.0f}/min of the {args.rate:,}/min asked), {args.preload:,} x {DIM} "
        f"preloaded, probes every {PROBE_EVERY_S} s",
        "",
        "| measured (from the event's publication) | n | p50 ms | p99 ms |",
        "| --- | --- | --- | --- |",
        f"| baseline: the event delivered to a WebSocket client of B | {len(delivered)} | "
        f"{_ms(_percentile(delivered, 0.5))} | {_ms(_percentile(delivered, 0.99))} |",
        f"| the change applied in B's index (histogram, interpolated) | {int(applied[-1][1])} | "
        f"{_ms(_quantile(applied, 0.5))} | {_ms(_quantile(applied, 0.99))} |",
        "",
        "| read at once after an upsert on A | n | p50 ms | p99 ms | answers without the write |",
        "| --- | --- | --- | --- | --- |",
        f"| query on A (baseline: the writer's replica) | {len(result['on_a'])} | {_ms(_percentile(result['on_a'], 0.5))} | "
        f"{_ms(_percentile(result['on_a'], 0.99))} | — |",
        f"| query on B | {len(result['on_b'])} | {_ms(_percentile(result['on_b'], 0.5))} | "
        f"{_ms(_percentile(result['on_b'], 0.99))} | {result['missed']} |",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.vector_replicas", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--rate", type=int, default=10_000, help="upserts a minute on A")
    parser.add_argument("--preload", type=int, default=10_000)
    args = parser.parse_args(argv)
    prefix = f"bastion-bench-{secrets.token_hex(4)}:"
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bastion-replicas-")))
        database_url = stack.enter_context(pg_schema())
        shared = {**LOAD_SETTINGS, "BASTION_DATABASE_URL": database_url, "BASTION_REDIS_URL": REDIS_URL,
                  "BASTION_REDIS_PREFIX": prefix, "BASTION_SECRET_KEY": secrets.token_hex(24)}
        try:
            a, b = stack.enter_context(replicas(workdir, shared))
            result = asyncio.run(_run(a, b, args))
        finally:
            client = redis.Redis.from_url(REDIS_URL)
            keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
            if keys:
                client.delete(*keys)
            client.close()
    print(report(result, args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
