"""WebSocket fan-out: many subscribers, events published at a steady rate, measured from outside.

    .venv/bin/python -m bench.ws_fanout [--clients 500] [--rate 20] [--duration 10] [--modes bare,in-process,redis]

Each mode is a server in a process of its own, the clients in another (`--clients-only`, driven by
this harness over stdin/stdout), and the harness publishes: one HTTP request per event, at a steady
rate. For Bastion the request is `PATCH /api/v1/users/me` by an admin, which raises `user.updated` on
the `users` topic that every client subscribes to; `at` in the event is the moment it was published.
The baseline is a bare aiohttp WebSocket broadcast in the same run: `POST /publish` sends one message
to every socket (asyncio.gather), with no auth, no bus and no per-client queues.

Reported per mode: events delivered per second (all clients together; the ideal is clients x rate),
publish-to-receive latency p50 and p99, and sockets dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime
from pathlib import Path

import aiohttp
from aiohttp import web

from tests.conftest import REDIS_URL, free_port
from tests.daemon_process import ADMIN_EMAIL, ADMIN_PASSWORD, ROOT, start

DRAIN_S = 3.0


# --- the bare baseline server -------------------------------------------------------------------


def serve_bare(port: int) -> None:
    sockets: set[web.WebSocketResponse] = set()

    async def ws_handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=30)
        await ws.prepare(request)
        sockets.add(ws)
        try:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    await ws.send_str('{"type": "subscribed", "topics": ["users"]}')
        finally:
            sockets.discard(ws)
        return ws

    async def publish(request: web.Request) -> web.Response:
        text = json.dumps({"type": "event", "event": "user.updated", "topic": "users", "data": {"ts": time.time()}})
        await asyncio.gather(*(ws.send_str(text) for ws in list(sockets)), return_exceptions=True)
        return web.Response(status=204)

    from daemon.cli import _use_uvloop

    app = web.Application()
    app.router.add_get("/ws", ws_handler)
    app.router.add_post("/publish", publish)
    app.router.add_get("/healthz", lambda request: web.json_response({"status": "ok"}))
    _use_uvloop()
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


# --- the clients process --------------------------------------------------------------------------


async def run_clients(url: str, token: str | None, count: int) -> None:
    """Connects `count` subscribers, prints READY, records until stdin says STOP, prints the results."""
    latencies: list[float] = []
    closed = 0
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        async def one() -> None:
            nonlocal closed
            ws = await http.ws_connect(url, headers=headers, heartbeat=None, max_msg_size=0)
            await ws.send_str('{"type": "subscribe", "topics": ["users"]}')
            first = await ws.receive_json(timeout=30)
            assert first["type"] == "subscribed", first
            connected.append(ws)
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                now = time.time()
                event = json.loads(msg.data)
                if event.get("type") != "event":
                    continue
                sent = event["data"]["ts"] if "ts" in event["data"] else datetime.fromisoformat(
                    event["at"].replace("Z", "+00:00")).timestamp()
                latencies.append(now - sent)
            closed += 1

        connected: list = []
        # Connect in batches, so the server is not asked for hundreds of handshakes in one instant.
        tasks = []
        for start_at in range(0, count, 50):
            batch = [asyncio.create_task(one()) for _ in range(start_at, min(count, start_at + 50))]
            tasks += batch
            while len(connected) < min(count, start_at + 50):
                failed = [t for t in batch if t.done() and t.exception()]
                if failed:
                    raise failed[0].exception()
                await asyncio.sleep(0.01)
        print("READY", flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.readline)  # STOP
        received, closed_early = len(latencies), closed
        for ws in connected:
            await ws.close()
        for task in tasks:
            task.cancel()
    print(json.dumps({"received": received, "latencies": latencies[:received], "closed_early": closed_early}), flush=True)


# --- the harness ------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _request(method: str, url: str, body: dict | None = None, token: str | None = None) -> dict:
    request = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body is not None else None)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read()
    return json.loads(text) if text else {}


def measure(ws_url: str, publish, token: str | None, clients: int, rate: float, duration: float) -> dict:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.ws_fanout", "--clients-only", ws_url, token or "-", str(clients)],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        line = proc.stdout.readline()
        if line.strip() != "READY":
            raise RuntimeError(f"the clients did not connect: {line!r}")
        interval = 1.0 / rate
        started = time.monotonic()
        sent = 0
        while time.monotonic() - started < duration:
            publish(sent)
            sent += 1
            # A steady schedule: each event at its slot, not after the previous one plus a gap.
            delay = started + sent * interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        elapsed = time.monotonic() - started
        time.sleep(DRAIN_S)
        proc.stdin.write("STOP\n")
        proc.stdin.flush()
        result = json.loads(proc.stdout.readline())
    finally:
        proc.wait(30)
    latencies = result["latencies"]
    return {
        "published": sent,
        "events_per_s": len(latencies) / elapsed,
        "ideal_per_s": sent * clients / elapsed,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "dropped": result["closed_early"],
    }


def bare(workdir: Path, args) -> dict:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "bench.ws_fanout", "--serve-bare", str(port)], cwd=ROOT)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        return measure(f"ws://127.0.0.1:{port}/ws", lambda n: _request("POST", base + "/publish"), None,
                       args.clients, args.rate, args.duration)
    finally:
        server.terminate()
        server.wait(20)


def bastion(mode: str, workdir: Path, args) -> dict:
    settings = {"BASTION_RATE_LIMIT_PER_MINUTE": "10000000", "BASTION_WS_SEND_BUFFER": "4096"}
    prefix = None
    if mode == "redis":
        prefix = f"bench-ws-{os.getpid()}:"
        settings |= {"BASTION_REDIS_URL": REDIS_URL, "BASTION_REDIS_PREFIX": prefix}
    daemon = start(workdir / mode, **settings)
    try:
        daemon.create_admin()
        token = daemon.admin_token()
        ws_url = daemon.url.replace("http://", "ws://") + "/api/v1/ws"
        return measure(
            ws_url,
            lambda n: _request("PATCH", daemon.url + "/api/v1/users/me", {"display_name": f"bench {n}"}, token),
            token, args.clients, args.rate, args.duration,
        )
    finally:
        daemon.stop()
        if prefix:
            import redis

            with redis.Redis.from_url(REDIS_URL) as client:
                keys = list(client.scan_iter(match=f"{prefix}*"))
                if keys:
                    client.delete(*keys)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ws_fanout", description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--rate", type=float, default=20.0, help="events published per second")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of publishing")
    parser.add_argument("--modes", default="bare,in-process,redis")
    parser.add_argument("--clients-only", nargs=3, metavar=("URL", "TOKEN", "COUNT"), help=argparse.SUPPRESS)
    parser.add_argument("--serve-bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_bare:
        serve_bare(args.serve_bare)
        return 0
    if args.clients_only:
        url, token, count = args.clients_only
        from daemon.cli import _use_uvloop

        _use_uvloop()
        asyncio.run(run_clients(url, None if token == "-" else token, int(count)))
        return 0

    print(f"WebSocket fan-out: {args.clients} clients in one process, {args.rate:g} events/s for {args.duration:g} s "
          f"(ideal delivery {args.clients * args.rate:,.0f} events/s); {os.cpu_count()} CPUs, shared")
    print(f"{'mode':<12} {'published':>9} {'delivered/s':>12} {'ideal/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'dropped':>8}")
    with tempfile.TemporaryDirectory(prefix="bench-ws-") as tmp:
        for mode in args.modes.split(","):
            result = bare(Path(tmp), args) if mode == "bare" else bastion(mode, Path(tmp), args)
            print(f"{mode:<12} {result['published']:>9} {result['events_per_s']:>12,.0f} {result['ideal_per_s']:>9,.0f} "
                  f"{result['p50_ms']:>8.1f} {result['p99_ms']:>8.1f} {result['dropped']:>8}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
