"""WebSocket fan-out: 500 subscribers, events published at a steady rate and then as fast as they are
delivered, measured from outside the server.

    .venv/bin/python -m bench.ws_fanout                  # 500 clients, 100 events/s: 50,000 deliveries/s
    .venv/bin/python -m bench.ws_fanout --json           # the same rows as a JSON list (for `python -m bench`)
    .venv/bin/python -m bench.ws_fanout --modes bare,redis --rounds 2 --duration 5 --profile /tmp/prof

A default run takes about 2.5 minutes. `--json` prints one object per row with the keys scenario, mode,
connections, rps (delivered/s), p50_ms, p99_ms, errors (sockets dropped), ratio and note; the line
describing the machine goes to stderr. `--profile DIR` records each server during each phase with py-spy
(`py-spy record -f raw`, installed in the venv) into DIR/<mode>-<phase>.txt.

Three servers, one after the other in one run, each a process of its own:
  bare        a bare aiohttp WebSocket broadcast: `POST /publish` builds one message shaped like Bastion's
              events and awaits send_str on every socket in turn (no auth, no bus, no per-client queues;
              cheaper than asyncio.gather, which makes a task per socket)
  in-process  a real `bastiond` (SQLite, in-process event bus)
  redis       the same with BASTION_REDIS_URL: every event goes through the Redis stream and its reader
The layout is the same for all three: the clients (`--clients`, 500, subscribed to `users`) are spread over
`--procs` processes (4), each a uvloop loop reading raw WebSocket frames and parsing only the `"at"` field;
the publisher is one more process. For Bastion an event is `PATCH /api/v1/users/me` by an admin, which
raises `user.updated` on `users`; for bare it is `POST /publish`. Everything runs on this one machine.

Two phases per server, on the same connections:
  steady      `--rate` events/s (100) for `--duration` s: offered deliveries/s = rate x clients (50,000)
  saturated   publishing as fast as the server delivers: at most `--window` events published and not yet
              received by the publisher's own subscriber (a 501st socket), so the server is kept busy but
              never asked to queue without bound; its delivered/s is the server's capacity in this layout

Figures, per server and phase:
  events/s    events published per second: offered by the publisher, and taken (answered) by the server;
              a server that falls behind answers more slowly than the schedule, which `at` does not show
  rps         deliveries per second: events received by all clients together, from the first publish to the
              last receive (ideal: events/s x clients)
  p50, p99    publish-to-receive latency over every delivery: from the event's `at`, stamped by the server
              when it publishes, to the moment the client read the frame (time.time() in both: same clock).
              In Bastion `at` is stamped as the event is handed to the bus: with Redis that is before the
              stream's round trip and the reader, so those are included
  dropped     sockets the server closed during the phase (a client too slow is dropped with 1008)
  missing     deliveries that never arrived (published x clients - received)
  ratio       rps over the bare broadcast's rps in the same round and phase
  CPU         in the note: the server's and the clients' CPU time over the phase (100% = one core busy),
              and the server's CPU time per delivery (publishing included): steadier than the rates when
              other work on the machine takes the cores away
  requests    in the note: the publishing requests' own time, sent to answered (p50, p99). `at` is stamped
              when the server publishes, so the time a request waits before that (say, for a WebSocket
              round to end) is not in p50 and p99 above; it is here
The machine is shared: server, clients, publisher and Redis share its cores (the output says how many),
so compare each figure only with the bare baseline of the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from array import array
from datetime import UTC, datetime
from pathlib import Path
from statistics import median

from tests.conftest import REDIS_URL, free_port
from tests.daemon_process import ROOT, start

DRAIN_S = 2.0
CONNECT_BATCH = 50
SUBSCRIBE = b'{"type":"subscribe","topics":["users"]}'
EVENT_PREFIX = b'{"type":"event"'
AT = b'"at":"'
AT_LEN = len("2026-01-01T00:00:00.000000Z")


def use_uvloop() -> None:
    from daemon.cli import _use_uvloop

    _use_uvloop()


# --- the bare baseline server -------------------------------------------------------------------


def serve_bare(port: int) -> None:
    from aiohttp import WSMsgType, web

    sockets: set[web.WebSocketResponse] = set()
    count = 0

    async def ws_handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=30)
        await ws.prepare(request)
        sockets.add(ws)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await ws.send_str('{"type":"subscribed","topics":["users"]}')
        finally:
            sockets.discard(ws)
        return ws

    async def publish(request: web.Request) -> web.Response:
        nonlocal count
        count += 1
        at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        text = json.dumps({"type": "event", "id": f"{count:012d}", "topic": "users", "event": "user.updated",
                           "at": at, "data": {"id": "u", "display_name": f"bench {count}"}}, separators=(",", ":"))
        # One socket after another: send_str returns without suspending unless a socket's buffer is
        # full, so this costs no task per socket (asyncio.gather would make one each, and be slower).
        for ws in list(sockets):
            try:
                await ws.send_str(text)
            except ConnectionError:
                pass
        return web.Response(status=204)

    app = web.Application()
    app.router.add_get("/ws", ws_handler)
    app.router.add_post("/publish", publish)
    app.router.add_get("/healthz", lambda request: web.json_response({"status": "ok"}))
    use_uvloop()
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


# --- a lean WebSocket subscriber ----------------------------------------------------------------------


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A masked frame (clients must mask), for the few small frames a subscriber sends."""
    assert len(payload) < 126
    mask = os.urandom(4)
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class Stats:
    """What one process's subscribers received since the last report."""

    def __init__(self) -> None:
        self.reset()
        self.parsed: dict[bytes, float] = {}  # `at` -> seconds: every client gets the same event, parse it once

    def reset(self) -> None:
        self.latencies = array("d")
        self.first = self.last = 0.0
        self.dropped = 0

    def event(self, at: bytes, now: float) -> None:
        sent = self.parsed.get(at)
        if sent is None:
            sent = self.parsed[at] = datetime.fromisoformat(at.decode().replace("Z", "+00:00")).timestamp()
        self.latencies.append(now - sent)
        if not self.first:
            self.first = now
        self.last = now


class Subscriber(asyncio.Protocol):
    """The handshake, then frames parsed by hand: only an event's `at` is read, never the whole JSON."""

    def __init__(self, handshake: bytes, stats: Stats, on_event=None) -> None:
        self.handshake = handshake
        self.stats = stats
        self.on_event = on_event
        self.buf = bytearray()
        self.upgraded = False
        self.subscribed = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.stopping = False

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(self.handshake)

    def connection_lost(self, exc) -> None:
        if not self.subscribed.done():
            self.subscribed.set_exception(ConnectionError(f"closed before subscribing: {exc}"))
        elif not self.stopping:
            self.stats.dropped += 1

    def data_received(self, data: bytes) -> None:
        now = time.time()  # every frame in this chunk arrived together
        buf = self.buf
        buf += data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buf.startswith(b"HTTP/1.1 101"):
                self.subscribed.set_exception(ConnectionError(bytes(buf[:200]).decode(errors="replace")))
                self.transport.close()
                return
            del buf[: end + 4]
            self.upgraded = True
            self.transport.write(client_frame(0x1, SUBSCRIBE))
        pos, size = 0, len(buf)
        while size - pos >= 2:
            length, head = buf[pos + 1] & 0x7F, 2
            if length == 126:
                if size - pos < 4:
                    break
                length, head = int.from_bytes(buf[pos + 2 : pos + 4], "big"), 4
            elif length == 127:
                if size - pos < 10:
                    break
                length, head = int.from_bytes(buf[pos + 2 : pos + 10], "big"), 10
            start, end = pos + head, pos + head + length
            if end > size:
                break
            opcode = buf[pos] & 0x0F
            if opcode == 0x1:
                if buf.startswith(EVENT_PREFIX, start):
                    i = buf.find(AT, start, end) + len(AT)
                    self.stats.event(bytes(buf[i : i + AT_LEN]), now)
                    if self.on_event is not None:
                        self.on_event()
                elif not self.subscribed.done():
                    if b'"subscribed"' in buf[start:end]:
                        self.subscribed.set_result(None)
                    else:
                        self.subscribed.set_exception(ConnectionError(bytes(buf[start:end]).decode()))
            elif opcode == 0x9:  # ping: answer, or the server's heartbeat closes us
                self.transport.write(client_frame(0xA, bytes(buf[start:end])))
            elif opcode == 0x8:
                self.transport.close()
            pos = end
        if pos:
            del buf[:pos]


def handshake(host: str, port: int, path: str, token: str | None) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{auth}\r\n").encode()


async def subscribe(host: str, port: int, path: str, token: str | None, stats: Stats, on_event=None) -> Subscriber:
    loop = asyncio.get_running_loop()
    _, sub = await loop.create_connection(lambda: Subscriber(handshake(host, port, path, token), stats, on_event),
                                          host, port)
    await asyncio.wait_for(sub.subscribed, 30)
    return sub


def clients_process(pipe, host: str, port: int, path: str, token: str | None, count: int) -> None:
    """Connects `count` subscribers, says "ready", then answers "report" (and resets) until "stop"."""

    async def main() -> None:
        stats = Stats()
        subs: list[Subscriber] = []
        for begin in range(0, count, CONNECT_BATCH):
            subs += await asyncio.gather(*(subscribe(host, port, path, token, stats)
                                           for _ in range(begin, min(count, begin + CONNECT_BATCH))))
        pipe.send("ready")
        loop = asyncio.get_running_loop()
        while await loop.run_in_executor(None, pipe.recv) == "report":  # anything else means stop
            pipe.send({"latencies": stats.latencies.tobytes(), "first": stats.first, "last": stats.last,
                       "dropped": stats.dropped})
            stats.reset()
            if len(stats.parsed) > 100_000:
                stats.parsed.clear()
        for sub in subs:
            sub.stopping = True
            sub.transport.close()

    use_uvloop()
    asyncio.run(main())


# --- the publisher -------------------------------------------------------------------------------------


def publisher_process(pipe, mode: str, host: str, port: int, ws_path: str, token: str | None, window: int) -> None:
    """Answers ("steady", rate, seconds) and ("saturated", seconds) with what it published."""
    import aiohttp

    async def main() -> None:
        loop = asyncio.get_running_loop()
        base = f"http://{host}:{port}"
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        received = 0
        arrived = asyncio.Event()

        def on_event() -> None:
            nonlocal received
            received += 1
            arrived.set()

        probe = await subscribe(host, port, ws_path, token, Stats(), on_event)
        errors = 0
        answered = [0.0]  # when the latest answer came
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=max(16, window))) as http:
            async def publish(n: int) -> None:
                nonlocal errors
                sent = time.perf_counter()  # uvloop's loop.time() counts whole milliseconds
                try:
                    if mode == "bare":
                        response = await http.post(base + "/publish")
                    else:
                        response = await http.patch(base + "/api/v1/users/me", json={"display_name": f"bench {n}"},
                                                    headers=headers)
                    async with response:
                        await response.read()
                        errors += response.status >= 400
                except aiohttp.ClientError:
                    errors += 1
                answered[0] = loop.time()
                request_times.append(time.perf_counter() - sent)

            pipe.send("ready")
            while (command := await loop.run_in_executor(None, pipe.recv)) != "stop":
                errors, tasks, published = 0, set(), 0
                request_times = []
                began = loop.time()
                started_at = time.time()
                if command[0] == "steady":
                    _, rate, seconds = command
                    # A steady schedule: each event at its slot, never waiting for an earlier answer.
                    while published < rate * seconds:
                        delay = began + published / rate - loop.time()
                        if delay > 0:
                            await asyncio.sleep(delay)
                        tasks.add(asyncio.create_task(publish(published)))
                        published += 1
                else:
                    _, seconds = command
                    base_received = received
                    while loop.time() - began < seconds:
                        while published - (received - base_received) >= window:
                            arrived.clear()
                            try:
                                await asyncio.wait_for(arrived.wait(), 5)
                            except TimeoutError:
                                base_received -= 1  # the probe lost one; don't stall the run on it
                        tasks.add(asyncio.create_task(publish(published)))
                        published += 1
                elapsed = loop.time() - began
                if command[0] == "steady":  # the last event goes out at its slot, one interval before the end
                    elapsed = max(elapsed, published / command[1])
                await asyncio.gather(*tasks)
                # The server may take the requests more slowly than they were sent: its own rate is the
                # events over the time until the last answer.
                accepted = published / (answered[0] - began)
                request_times.sort()
                pipe.send({"published": published, "seconds": elapsed, "start": started_at, "errors": errors,
                           "accepted": accepted, "request_p50_ms": percentile(request_times, 0.50) * 1000,
                           "request_p99_ms": percentile(request_times, 0.99) * 1000})
        probe.stopping = True
        probe.transport.close()

    use_uvloop()
    asyncio.run(main())


# --- the harness ------------------------------------------------------------------------------------


def percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def wait_healthy(base: str) -> None:
    for _ in range(300):
        try:
            urllib.request.urlopen(base + "/healthz", timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{base} did not answer")


def machine_busy(seconds: float = 1.0) -> float:
    """The share of all cores busy right now (other work on the machine), from /proc/stat."""
    def sample() -> tuple[int, int]:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(values), values[3] + values[4]  # total, idle + iowait

    total, idle = sample()
    time.sleep(seconds)
    total2, idle2 = sample()
    return 1 - (idle2 - idle) / max(1, total2 - total)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes have used so far (Linux /proc)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def profile(pid: int | None, directory: Path | None, name: str, seconds: float) -> subprocess.Popen | None:
    if directory is None or pid is None:
        return None
    directory.mkdir(parents=True, exist_ok=True)
    spy = Path(sys.executable).with_name("py-spy")
    return subprocess.Popen([str(spy), "record", "-p", str(pid), "-d", str(max(1, int(seconds))), "-f", "raw",
                             "-o", str(directory / f"{name}.txt")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def measure(mode: str, port: int, ws_path: str, token: str | None, args, pid: int | None) -> list[dict]:
    """Both phases against one running server; one result per phase."""
    ctx = mp.get_context("fork")
    shares = [args.clients // args.procs + (i < args.clients % args.procs) for i in range(args.procs)]
    pipes, procs = [], []
    try:
        for share in shares:
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=clients_process, args=(child, "127.0.0.1", port, ws_path, token, share), daemon=True)
            proc.start()
            pipes.append(parent)
            procs.append(proc)
        for pipe in pipes:
            if not pipe.poll(120) or pipe.recv() != "ready":
                raise RuntimeError("the clients did not connect")
        parent, child = ctx.Pipe()
        publisher = ctx.Process(target=publisher_process,
                                args=(child, mode, "127.0.0.1", port, ws_path, token, args.window), daemon=True)
        publisher.start()
        procs.append(publisher)
        if not parent.poll(60) or parent.recv() != "ready":
            raise RuntimeError("the publisher did not start")

        def phase(command: tuple, name: str) -> dict:
            spy = profile(pid, args.profile, f"{mode}-{name}", args.duration)
            client_pids = [proc.pid for proc in procs[:-1]]
            cpu_before = cpu_seconds([pid]), cpu_seconds(client_pids), time.monotonic()
            parent.send(command)
            published = parent.recv()
            wall = time.monotonic() - cpu_before[2]
            cpu = cpu_seconds([pid]) - cpu_before[0], cpu_seconds(client_pids) - cpu_before[1]
            time.sleep(DRAIN_S)
            if spy is not None:
                spy.wait()
            for pipe in pipes:
                pipe.send("report")
            reports = [pipe.recv() for pipe in pipes]
            latencies = array("d")
            for report in reports:
                latencies.frombytes(report["latencies"])
            ordered = sorted(latencies)
            last = max((r["last"] for r in reports), default=0.0)
            span = max(last - published["start"], published["seconds"])
            return {
                "phase": name,
                "events_per_s": published["published"] / published["seconds"],
                "accepted_per_s": published["accepted"],
                "rps": len(ordered) / span,
                "p50_ms": percentile(ordered, 0.50) * 1000,
                "p99_ms": percentile(ordered, 0.99) * 1000,
                "dropped": sum(r["dropped"] for r in reports),
                "missing": published["published"] * args.clients - len(ordered),
                "publish_errors": published["errors"],
                "request_p50_ms": published["request_p50_ms"],
                "request_p99_ms": published["request_p99_ms"],
                "server_cpu": cpu[0] / wall,
                "server_us": cpu[0] / max(1, len(ordered)) * 1e6,
                "clients_cpu": cpu[1] / wall,
            }

        phase(("steady", args.rate, 1.0), "warm-up")
        results = [phase(("steady", args.rate, args.duration), "steady")]
        if not args.no_saturated:
            results.append(phase(("saturated", args.duration), "saturated"))
        parent.send("stop")
        for pipe in pipes:
            pipe.send("stop")
        for proc in procs:
            proc.join(10)
        return results
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()


def run_bare(args) -> list[dict]:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "bench.ws_fanout", "--serve-bare", str(port)], cwd=ROOT)
    try:
        wait_healthy(f"http://127.0.0.1:{port}")
        return measure("bare", port, "/ws", None, args, server.pid)
    finally:
        server.terminate()
        server.wait(20)


def run_bastion(mode: str, workdir: Path, args) -> list[dict]:
    settings = {"BASTION_RATE_LIMIT_PER_MINUTE": "10000000"}
    prefix = None
    if mode == "redis":
        prefix = f"bench-ws-{os.getpid()}-{time.time_ns()}:"
        settings |= {"BASTION_REDIS_URL": REDIS_URL, "BASTION_REDIS_PREFIX": prefix}
    daemon = start(workdir / f"{mode}-{time.time_ns()}", **settings)
    try:
        daemon.create_admin()
        token = daemon.admin_token()
        port = int(daemon.url.rsplit(":", 1)[1])
        return measure(mode, port, "/api/v1/ws", token, args, daemon.process.pid)
    finally:
        daemon.stop()
        if prefix:
            import redis

            with redis.Redis.from_url(REDIS_URL) as client:
                keys = list(client.scan_iter(match=f"{prefix}*"))
                if keys:
                    client.delete(*keys)


def rows(results: list[tuple[int, str, dict]], args) -> list[dict]:
    bare = {(r, res["phase"]): res["rps"] for r, mode, res in results if mode == "bare"}
    out = []
    for round_, mode, res in results:
        base = bare.get((round_, res["phase"]))
        if res["phase"] == "steady":
            offered = f"{res['events_per_s']:,.0f} events/s offered, {res['accepted_per_s']:,.0f} taken"
        else:
            offered = f"{res['accepted_per_s']:,.0f} events/s, window {args.window}"
        note = (f"{offered}; server CPU {res['server_cpu']:.0%} ({res['server_us']:.0f} us/delivery), "
                f"clients {res['clients_cpu']:.0%}; missing {res['missing']:,}")
        note += f"; publishing requests p50 {res['request_p50_ms']:.1f} ms, p99 {res['request_p99_ms']:.1f}"
        if res["publish_errors"]:
            note += f"; {res['publish_errors']} publish errors"
        if args.rounds > 1:
            note += f"; round {round_ + 1}"
        out.append({
            "scenario": f"ws fan-out, {res['phase']}",
            "mode": mode,
            "connections": args.clients,
            "rps": round(res["rps"], 1),
            "p50_ms": round(res["p50_ms"], 2),
            "p99_ms": round(res["p99_ms"], 2),
            "errors": res["dropped"],
            "ratio": f"{res['rps'] / base:.2f}x bare" if base and mode != "bare" else "",
            "note": note,
        })
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ws_fanout", description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--procs", type=int, default=4, help="processes the clients are spread over")
    parser.add_argument("--rate", type=float, default=100.0, help="events published per second in the steady phase")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of each phase")
    parser.add_argument("--window", type=int, default=10, help="saturated phase: events in flight at most")
    parser.add_argument("--modes", default="bare,in-process,redis")
    parser.add_argument("--rounds", type=int, default=1, help="run every mode this many times, interleaved")
    parser.add_argument("--no-saturated", action="store_true", help="the steady phase only")
    parser.add_argument("--profile", type=Path, help="py-spy each server's phases into this directory (raw)")
    parser.add_argument("--json", action="store_true", help="print the rows as a JSON list")
    parser.add_argument("--serve-bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_bare:
        serve_bare(args.serve_bare)
        return 0

    modes = args.modes.split(",")
    busy = machine_busy()
    results: list[tuple[int, str, dict]] = []
    with tempfile.TemporaryDirectory(prefix="bench-ws-") as tmp:
        for round_ in range(args.rounds):
            for mode in modes:
                for res in run_bare(args) if mode == "bare" else run_bastion(mode, Path(tmp), args):
                    results.append((round_, mode, res))
    table = rows(results, args)
    header = (f"WebSocket fan-out: {args.clients} clients in {args.procs} processes, steady {args.rate:g} events/s "
          f"({args.clients * args.rate:,.0f} deliveries/s offered) and saturated, {args.duration:g} s each; "
          f"{os.cpu_count()} CPUs shared by server, clients, publisher and Redis, and {busy:.0%} busy with other "
          f"work before the run")
    if args.json:
        print(header, file=sys.stderr)  # the rows stand alone on stdout
        print(json.dumps(table, indent=1))
        return 0
    print(header)
    print(f"{'scenario':<22} {'mode':<11} {'delivered/s':>11} {'p50 ms':>8} {'p99 ms':>8} {'dropped':>7} "
          f"{'ratio':>10}  note")
    for row in table:
        print(f"{row['scenario']:<22} {row['mode']:<11} {row['rps']:>11,.0f} {row['p50_ms']:>8.1f} "
              f"{row['p99_ms']:>8.1f} {row['errors']:>7} {row['ratio']:>10}  {row['note']}")
    if args.rounds > 1:
        for mode in modes:
            for phase in ("steady", "saturated"):
                rps = [r["rps"] for r in table if r["mode"] == mode and r["scenario"].endswith(phase)]
                if rps:
                    print(f"median {phase} {mode}: {median(rps):,.0f} delivered/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
