"""`python -m bench.instructions`: the instructions one request costs, Bastion beside bare aiohttp.

Requests per second on a shared machine move by a quarter within the hour (bench/README.md); the number
of instructions a request executes hardly moves at all. valgrind's callgrind counts them, whatever else
the machine is doing, so this is the steady complement of `python -m bench`'s throughput ratios, and the
measure to compare two commits with.

Each server runs under callgrind with counting off. The harness sends WARM_UP requests one at a time
over one keep-alive connection (they warm the interpreter's specialisation and every cache), switches
counting on, sends `--requests` more, switches it off and reads the total. What is counted is the
server's process only: not the kernel's share of each socket call, nor PostgreSQL's or Redis' work. One
request at a time also counts a turn of the event loop per request, which a loaded server shares
between many, so the ratio is a little kinder to Bastion than a loaded one would be.
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from bench.run import daemon, baseline, get_json

WARM_UP = 300
REQUESTS = 2000


def callgrind(out: Path) -> tuple[str, ...]:
    return ("valgrind", "-q", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}")


def requester(url: str, path: str, token: str | None) -> Callable[[], None]:
    where = urlsplit(url)
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=120)
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    def send() -> None:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {path} answered {response.status}")

    return send


def per_request(pid: int, out: Path, send: Callable[[], None], requests: int) -> float:
    """Instructions per request of `send`, in the process `pid` running under callgrind(out)."""
    for _ in range(WARM_UP):
        send()
    control = ["callgrind_control"]
    subprocess.run([*control, "--instr=on", str(pid)], check=True, capture_output=True)
    for _ in range(requests):
        send()
    subprocess.run([*control, "--instr=off", str(pid)], check=True, capture_output=True)
    subprocess.run([*control, "--dump", str(pid)], check=True, capture_output=True)
    # The dump zeroes the counters: each dump file holds its own part, and the total is their sum.
    total = 0
    for dump in out.parent.glob(out.name + "*"):
        for line in dump.read_text(errors="replace").splitlines():
            if line.startswith("totals:"):
                total += int(line.split()[1])
        dump.unlink()
    return total / requests


def measure(modes: list[str], requests: int, work: Path) -> list[dict]:
    rows = []
    body = b""
    for mode in modes:
        out = work / f"{mode.replace('+', '-')}.callgrind"
        with daemon(mode, work, command_prefix=callgrind(out)) as running:
            token = running.admin_token()
            body = body or get_json(running.url + "/api/v1/users/me", token)
            for path in ("/api/v1/users/me", "/healthz"):
                print(f"counting {path}, {mode} ...", file=sys.stderr)
                count = per_request(running.process.pid, out, requester(running.url, path, token), requests)
                rows.append({"path": path, "mode": mode, "instructions": count})
    out = work / "bare.callgrind"
    with baseline(body, work, command_prefix=callgrind(out)) as (url, process):
        print("counting bare aiohttp ...", file=sys.stderr)
        bare = per_request(process.pid, out, requester(url, "/api/v1/users/me", None), requests)
    for row in rows:
        row["bare"] = bare
    return rows


def json_rows(rows: list[dict], requests: int) -> list[dict]:
    """Rows for `python -m bench`'s table (its Row fields). The ratio is bare's count over Bastion's: the
    share of bare aiohttp's rate that Bastion would reach if instructions were all a request cost."""
    bare = rows[0]["bare"]
    table = [{"scenario": "bare aiohttp, same JSON: instructions per request", "mode": "uvloop, under callgrind",
              "connections": 1, "rps": "", "p50_ms": "", "p99_ms": "", "errors": 0, "ratio": "100%",
              "note": f"{bare / 1000:,.0f}k instructions (callgrind, {requests} requests one at a time)"}]
    for row in rows:
        table.append({
            "scenario": f"GET {row['path']}: instructions per request", "mode": f"{row['mode']}, under callgrind",
            "connections": 1, "rps": "", "p50_ms": "", "p99_ms": "", "errors": 0,
            "ratio": f"{bare / row['instructions']:.0%} of bare",
            "note": f"{row['instructions'] / 1000:,.0f}k instructions in the daemon's process",
        })
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=REQUESTS, help=f"requests counted per server (default {REQUESTS})")
    parser.add_argument("--modes", default="embedded,postgres+redis", help="comma-separated modes to run")
    parser.add_argument("--json", action="store_true", help="print rows for python -m bench's table")
    args = parser.parse_args(argv)
    if args.requests < 1:
        parser.error("--requests must be at least 1")
    if not (shutil.which("valgrind") and shutil.which("callgrind_control")):
        print("python -m bench.instructions needs valgrind: apt-get install valgrind", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bastion-instructions-") as tmp:
        rows = measure(args.modes.split(","), args.requests, Path(tmp))
    if args.json:
        print(json.dumps(json_rows(rows, args.requests)))
    else:
        print(f"{'bare aiohttp':<40} {rows[0]['bare']:>12,.0f} instructions per request")
        for row in rows:
            print(f"{row['mode'] + ' ' + row['path']:<40} {row['instructions']:>12,.0f} "
                  f"instructions per request ({row['bare'] / row['instructions']:.0%} of bare's rate)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
