"""A fixed-rate (open-loop) prober: GET one path at RATE requests per second, whatever the answers' speed.

    BENCH_TOKEN=... python -m bench.fixed_rate http://127.0.0.1:8080/api/v1/users/me --rate 400 --out FILE

It prints `ready` once its connections are open, sends until its stdin is closed, then writes one JSON
object to FILE: the latency of every request in ms (inf for a failed one) and how many were due.

Each latency is counted from the moment the request was due (start + n / RATE), not from when it went out.
A closed-loop client (send, wait for the answer, send the next) sends nothing while the server stalls, so a
100 ms stall costs it one slow sample where real users, who do not wait for each other, meet it in 40 at
this rate (coordinated omission). Here a request whose turn comes while every connection is waiting waits
for one, and that wait is in its latency, as is any moment this process itself was late to send.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

CONNECTIONS = 32  # in flight at most; at 400 requests/s, all busy means an 80 ms stall


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> bool:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return head.startswith(b"HTTP/1.1 200 ")


async def probe(url: str, token: str, rate: float, stop: asyncio.Event, ready: asyncio.Event) -> dict:
    parts = urlsplit(url)
    request = (f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nAuthorization: Bearer {token}\r\n\r\n").encode()
    idle: asyncio.Queue = asyncio.Queue()
    for _ in range(CONNECTIONS):
        idle.put_nowait(await asyncio.open_connection(parts.hostname, parts.port))
    clock = time.perf_counter  # not loop.time(): uvloop's counts whole milliseconds
    latencies: list[float] = []

    async def one(due: float) -> None:
        reader, writer = await idle.get()
        try:
            ok = await _exchange(reader, writer, request)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            ok = False
            writer.close()
            reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        latencies.append((clock() - due) * 1000 if ok else float("inf"))
        idle.put_nowait((reader, writer))

    ready.set()
    tasks: set[asyncio.Task] = set()
    start, sent = clock(), 0
    while not stop.is_set():
        due = start + sent / rate
        if due > clock():
            await asyncio.sleep(due - clock())
        task = asyncio.create_task(one(due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        sent += 1
    await asyncio.gather(*tasks)
    while not idle.empty():
        _, writer = idle.get_nowait()
        writer.close()
    return {"due": sent, "latencies_ms": latencies}


async def main_async(args: argparse.Namespace) -> dict:
    loop = asyncio.get_running_loop()
    stop, ready = asyncio.Event(), asyncio.Event()
    # Stopped by its stdin closing: the harness needs no signal handling and a dead harness stops it too.
    threading.Thread(target=lambda: (sys.stdin.read(), loop.call_soon_threadsafe(stop.set)), daemon=True).start()
    running = asyncio.create_task(probe(args.url, os.environ.get("BENCH_TOKEN", ""), args.rate, stop, ready))
    await ready.wait()
    print("ready", flush=True)
    return await running


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fixed_rate", description=__doc__.split("\n")[0])
    parser.add_argument("url")
    parser.add_argument("--rate", type=float, default=400)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(main_async(args))
    else:
        result = uvloop.run(main_async(args))
    args.out.write_text(json.dumps(result))  # a file: read back from a pipe, a large one once came out cut
    return 0


if __name__ == "__main__":
    sys.exit(main())
