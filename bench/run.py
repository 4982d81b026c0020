"""`python -m bench`: Bastion under load, beside baselines measured in the same run on the same machine.

It starts real `bastiond` processes (embedded: SQLite and in-process state; and PostgreSQL + Redis),
drives them with wrk (a separate process, one thread, so the daemon and the load each get one of the
machine's cores) and prints one table. The ratios compare like with like from this run only, each the
median of `--rounds` pairs of runs made in turns (see `in_turns`):
- `GET /users/me` against a bare aiohttp handler returning the same JSON on the same event loop (uvloop);
- `POST /auth/login` against this machine's own argon2id verify rate on two threads, same parameters;
- `/healthz` latency while the login flood runs, from a prober sending one request every 20 ms.
- a vector query over HTTP on 100,000 x 384 and WebSocket fan-out to 500 clients: `bench.vectors` and
  `bench.ws_fanout`, commands of their own with their own baselines (brute force and bare HTTP; a bare
  aiohttp broadcast), whose rows (`--json`) join the same table;
- the instructions a request costs, counted by callgrind beside bare aiohttp's (`bench.instructions`):
  the one figure here that the machine's other load does not move.
Results also go to bench/RESULTS.md (--write).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import PG_URL, REDIS_URL, free_port
from tests.daemon_process import ADMIN_PASSWORD, ROOT, Daemon, with_admin

LOAD_SCRIPT = Path(__file__).parent / "wrk" / "load.lua"
RESULTS = Path(__file__).parent / "RESULTS.md"
# Limits high enough never to refuse the benchmark, but still on: their cost is part of every request.
LOAD_SETTINGS = {
    "BASTION_RATE_LIMIT_PER_MINUTE": "10000000",
    "BASTION_AUTH_RATE_LIMIT_PER_MINUTE": "10000000",
    "BASTION_ACCESS_TOKEN_TTL_S": "7200",
}
# Fewer than the logins one account may have in flight from one address (10: LOGIN in
# daemon/services/guesses.py, which counts each guess before it is checked); more would be answered 429.
LOGIN_CONNECTIONS = 8
SETTLE_S = 3.0
ROUNDS = 3  # pairs of (baseline, Bastion) run in turns for each ratio
LOGIN_EMAIL = "login-flood@example.com"
HEALTH_PROBE_INTERVAL_S = 0.02
# Each with the options the full run uses: the Chroma comparison is the vector benchmark's own business.
OTHER_BENCHMARKS = (("bench.vectors", ("--skip-chroma",)), ("bench.ws_fanout", ()), ("bench.instructions", ()))


@dataclass
class Row:
    scenario: str
    mode: str
    connections: int | str
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    ratio: str = ""
    note: str = ""


def wrk(url: str, connections: int, duration_s: float, **env: str) -> dict:
    """One wrk run; returns the numbers its Lua done() printed.

    Each run starts SETTLE_S after whatever ran before it. Started at once, a 256-connection run also
    measured the previous one's teardown (256 connections reset with requests in flight): some requests
    took up to 0.5 s against bare aiohttp and 1-2% took 0.5-2.5 s against Bastion; after a pause, none."""
    time.sleep(SETTLE_S)
    command = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration_s))}s", "--timeout", "5s",
               "-s", str(LOAD_SCRIPT), url]
    done = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=duration_s + 60)
    for line in done.stdout.splitlines():
        if line.startswith("BENCH "):
            result = json.loads(line[6:])
            result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
            result["errors"] = result["socket_errors"] + result["non2xx"] + result["timeouts"]
            return result
    raise RuntimeError(f"wrk printed no result: {done.stdout}\n{done.stderr}")


def row(scenario: str, mode: str, connections: int | str, result: dict, **extra) -> Row:
    return Row(scenario, mode, connections, result["rps"], result["p50_us"] / 1000, result["p99_us"] / 1000,
               result["errors"], **extra)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def get_json(url: str, token: str) -> bytes:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read()


def wait_for(url: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@contextmanager
def baseline(body: bytes, workdir: Path, command_prefix: Sequence[str] = (), spend_us: float = 0.0):
    """The bare aiohttp server in a process of its own, serving `body` (after `spend_us` of CPU); yields its
    URL and process."""
    body_file = workdir / "baseline-body.json"
    body_file.write_bytes(body)
    port = free_port()
    process = subprocess.Popen([*command_prefix, sys.executable, "-m", "bench.baseline", str(port), str(body_file),
                                str(spend_us)], cwd=ROOT)
    try:
        wait_for(f"http://127.0.0.1:{port}/healthz", timeout_s=120 if command_prefix else 30)
        yield f"http://127.0.0.1:{port}", process
    finally:
        process.terminate()
        process.wait(timeout=20)


@contextmanager
def pg_schema():
    """A PostgreSQL URL on a schema of the benchmark's own, dropped afterwards."""
    import psycopg2

    schema = f"bastion_bench_{secrets.token_hex(4)}"
    conn = psycopg2.connect(PG_URL)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE SCHEMA "{schema}"')
    try:
        sep = "&" if "?" in PG_URL else "?"
        yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with conn.cursor() as cur:
            cur.execute(f'DROP SCHEMA "{schema}" CASCADE')
        conn.close()


@contextmanager
def daemon(mode: str, workdir: Path, command_prefix: Sequence[str] = (), **extra: str):
    settings = {**LOAD_SETTINGS, **extra}
    with pg_schema() if mode == "postgres+redis" else _nothing() as database_url:
        if database_url:
            settings.update(BASTION_DATABASE_URL=database_url, BASTION_REDIS_URL=REDIS_URL)
        with with_admin(workdir / mode.replace("+", "-"), command_prefix=command_prefix, **settings) as running:
            yield running


@contextmanager
def _nothing():
    yield None


def argon2_verify_rate(seconds: float) -> float:
    """Verifies per second on two threads with the daemon's own parameters: the ceiling for logins."""
    from argon2 import PasswordHasher, Type

    from daemon.services.passwords import OWASP

    hasher = PasswordHasher(type=Type.ID, **OWASP)
    stored = hasher.hash(ADMIN_PASSWORD)
    deadline = time.monotonic() + seconds
    counts = [0, 0]

    def work(slot: int) -> None:
        while time.monotonic() < deadline:
            hasher.verify(stored, ADMIN_PASSWORD)
            counts[slot] += 1

    started = time.monotonic()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(work, (0, 1)))
    return sum(counts) / (time.monotonic() - started)


def probe_health(url: str, stop: threading.Event) -> list[float]:
    """Latencies (ms) of /healthz asked every 20 ms, on a connection of its own, until `stop`; from when the
    flood begins, after wrk's pause (SETTLE_S)."""
    import http.client

    if stop.wait(SETTLE_S):
        return []

    host, port = url.removeprefix("http://").split(":")
    latencies: list[float] = []
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    while not stop.is_set():
        started = time.perf_counter()
        conn.request("GET", "/healthz")
        response = conn.getresponse()
        response.read()
        latencies.append((time.perf_counter() - started) * 1000)
        if response.status != 200:
            latencies[-1] = float("inf")
        stop.wait(HEALTH_PROBE_INTERVAL_S)
    conn.close()
    return latencies


def in_turns(baseline: Callable[[], dict], measured: Callable[[], dict], rounds: int) -> tuple[dict, dict, list[float]]:
    """Runs the baseline and the measured load in turns, `rounds` times, and sums each side up.

    The machine is shared: its load from elsewhere moved one 10 s run's figure by up to a quarter within the
    hour (bare aiohttp at 256 connections read 33,600 and 27,000 req/s in two runs of the same hour), so a
    ratio of two runs made minutes apart measured the drift as much as Bastion. Pairs made back to back
    compare like with like, and their median ignores the one pair that drift spoilt. Each side's summary:
    the requests/s of the median pair's run, the median p50, the worst p99, the errors of all runs. Returns
    (baseline, measured, every pair's ratio in order).
    """
    pairs = [(baseline(), measured()) for _ in range(rounds)]
    ratios = [run["rps"] / base["rps"] for base, run in pairs]
    middle = sorted(range(rounds), key=ratios.__getitem__)[rounds // 2]

    def summary(side: int) -> dict:
        runs = [pair[side] for pair in pairs]
        return {"rps": pairs[middle][side]["rps"], "p50_us": statistics.median(r["p50_us"] for r in runs),
                "p99_us": max(r["p99_us"] for r in runs), "errors": sum(r["errors"] for r in runs),
                "p99s_us": [r["p99_us"] for r in runs]}

    return summary(0), summary(1), ratios


def in_turns_note(ratios: list[float], p99s_us: list[float] | None = None) -> str:
    """The ratio column shows the median pair's; this lists them all, in the order they ran, and each run's
    p99 when it was asked for (the column shows the worst)."""
    note = f"median of {len(ratios)} pairs run in turns: " + ", ".join(f"{r:.0%}" for r in ratios)
    return f"{note}; {each_p99(p99s_us)}" if p99s_us else note


def each_p99(p99s_us: list[float]) -> str:
    return "p99 of each run " + ", ".join(f"{p / 1000:.1f}" for p in p99s_us) + " ms"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def users_me(running: Daemon, mode: str, token: str, run_s: float, rounds: int, workdir: Path) -> list[Row]:
    rows = []
    body = get_json(running.url + "/api/v1/users/me", token)  # the baseline serves these very bytes
    with baseline(body, workdir) as (base_url, _):
        for connections in (64, 256):
            bare, result, ratios = in_turns(
                lambda: wrk(base_url + "/api/v1/users/me", connections, run_s),
                lambda: wrk(running.url + "/api/v1/users/me", connections, run_s, BENCH_TOKEN=token),
                rounds,
            )
            rows.append(row("bare aiohttp, same JSON", f"uvloop, in turns with {mode}", connections, bare, ratio="100%",
                            note=each_p99(bare["p99s_us"])))
            rows.append(row("GET /users/me", mode, connections, result,
                            ratio=f"{result['rps'] / bare['rps']:.0%} of bare", note=in_turns_note(ratios, result["p99s_us"])))
            if connections == 64:
                rows.append(at_the_same_rate(body, workdir, bare["rps"], result["rps"], run_s, mode))
    return rows


def at_the_same_rate(body: bytes, workdir: Path, bare_rps: float, rps: float, run_s: float, mode: str) -> Row:
    """The latency a bare aiohttp server has at Bastion's rate: it spends, in each request, the CPU time
    Bastion's requests took beyond bare's (both servers use one core). A p99 is set by the rate and by the
    machine's hiccups as much as by the code: this is the same-run baseline for the p99 target."""
    spend_us = max(0.0, 1e6 / rps - 1e6 / bare_rps)
    with baseline(body, workdir, spend_us=spend_us) as (url, _):
        result = wrk(url + "/api/v1/users/me", 64, run_s)
    return row("bare aiohttp at Bastion's rate", f"uvloop, beside {mode}", 64, result,
               ratio=f"{result['rps'] / rps:.0%} of Bastion's rate",
               note=f"spends {spend_us:.0f} us of CPU in each request: Bastion's cost beyond bare's")


def login_flood(running: Daemon, mode: str, token: str, run_s: float, rounds: int) -> list[Row]:
    # An account of its own, so the sessions the flood opens do not weigh on the admin's later runs.
    running.call("POST", "/api/v1/users", {"email": LOGIN_EMAIL, "password": ADMIN_PASSWORD, "role": "user"}, token)
    body = json.dumps({"email": LOGIN_EMAIL, "password": ADMIN_PASSWORD})
    health: list[float] = []  # /healthz latencies over every flood

    def verify_rate() -> dict:
        return {"rps": argon2_verify_rate(run_s / 2), "p50_us": 0, "p99_us": 0, "errors": 0}

    def flood() -> dict:
        stop = threading.Event()
        with ThreadPoolExecutor(1) as pool:
            probe = pool.submit(probe_health, running.url, stop)
            try:
                return wrk(running.url + "/api/v1/auth/login", LOGIN_CONNECTIONS, run_s,
                           BENCH_METHOD="POST", BENCH_BODY=body)
            finally:
                stop.set()
                health.extend(probe.result())

    ceiling, result, ratios = in_turns(verify_rate, flood, rounds)
    return [
        Row("argon2id verify, 2 threads", f"in-process, in turns with {mode}", "-", ceiling["rps"], 0, 0, 0, "100%"),
        row("POST /auth/login", mode, LOGIN_CONNECTIONS, result, ratio=f"{result['rps'] / ceiling['rps']:.0%} of argon2id",
            note=in_turns_note(ratios)),
        Row("/healthz during login flood", mode, "1 (every 20 ms)", len(health) / (run_s * rounds),
            percentile(health, 50), percentile(health, 99), sum(1 for h in health if h == float("inf"))),
    ]


def mixed(running: Daemon, token: str, duration_s: float, connections: int = 64) -> tuple[dict, float, float]:
    """A mixed run; returns wrk's numbers and the daemon's RSS before and after it."""
    before = rss_mb(running.process.pid)
    result = wrk(running.url + "/", connections, duration_s, BENCH_TOKEN=token, BENCH_MIXED="1")
    return result, before, rss_mb(running.process.pid)


def measure_mode(mode: str, workdir: Path, args, notes: list[str]) -> list[Row]:
    rows: list[Row] = []
    with daemon(mode, workdir) as running:
        idle = rss_mb(running.process.pid)
        token = running.admin_token()
        # Each ratio's load time (--duration) is split over its rounds, so a run takes as long as before.
        run_s = max(1.0, args.duration / args.rounds)
        rows += users_me(running, mode, token, run_s, args.rounds, workdir)
        rows += login_flood(running, mode, token, run_s, args.rounds)
        result, _, _ = mixed(running, token, args.duration)
        rows.append(row("mixed (reads, writes, lists)", mode, 64, result))
        soak, soak_start, soak_end = mixed(running, token, args.soak)
        rows.append(row(f"soak, mixed {args.soak:.0f} s", mode, 64, soak,
                        note=f"RSS {soak_start:.0f} -> {soak_end:.0f} MB ({(soak_end / soak_start - 1):+.0%})"))
        notes.append(f"{mode}: idle RSS after start {idle:.1f} MB; after the load {rss_mb(running.process.pid):.1f} MB")
    return rows


def other_benchmarks(vector_args: list[str]) -> tuple[list[Row], list[str]]:
    """The vector and WebSocket benchmarks are commands of their own; their rows (`--json`) join this
    table. A run that fails is reported below the table with the end of its error output."""
    rows: list[Row] = []
    failures = []
    for module, extra in OTHER_BENCHMARKS:
        print(f"running python -m {module} ...", file=sys.stderr)
        command = [sys.executable, "-m", module, "--json", *extra, *(vector_args if module == "bench.vectors" else [])]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=3600)
        try:
            rows += [Row(**{key: item.get(key, "") for key in Row.__dataclass_fields__})
                     for item in json.loads(done.stdout[done.stdout.index("["):])]
        except ValueError:
            failures.append(f"`{' '.join(command[1:])}` failed (exit {done.returncode}): {done.stderr.strip()[-500:]}")
    return rows, failures


def table(rows: list[Row]) -> str:
    def number(value, spec: str) -> str:
        return format(value, spec) if isinstance(value, (int, float)) else str(value or "")

    head = "| scenario | mode | connections | requests/s | p50 ms | p99 ms | errors | ratio | note |"
    lines = [head, "| --- | --- | --- | ---: | ---: | ---: | ---: | --- | --- |"]
    for r in rows:
        lines.append(f"| {r.scenario} | {r.mode} | {r.connections} | {number(r.rps, ',.0f')} | "
                     f"{number(r.p50_ms, '.2f')} | {number(r.p99_ms, '.2f')} | {r.errors} | {r.ratio} | {r.note} |")
    return "\n".join(lines)


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    memory = int(Path("/proc/meminfo").read_text().split()[1]) // 1024
    return (f"{os.cpu_count()} cores ({cpu}), {memory} MB RAM, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}")


def missing_prerequisites(modes: list[str]) -> list[str]:
    """What this machine lacks for the run asked for, each said as how to get it."""
    import shutil
    from urllib.parse import urlsplit

    from tests.conftest import _reachable

    missing = [] if shutil.which("wrk") else ["wrk, the load generator: apt-get install wrk"]
    if "postgres+redis" in modes:
        for name, url, variable in (("PostgreSQL", PG_URL, "BASTION_TEST_PG_URL"),
                                    ("Redis", REDIS_URL, "BASTION_TEST_REDIS_URL")):
            where = urlsplit(url)
            if not _reachable(where.hostname or "127.0.0.1", where.port or (5432 if name == "PostgreSQL" else 6379)):
                missing.append(f"{name} at {where.hostname}:{where.port} (or set {variable}; `--modes embedded` "
                               f"runs without it)")
    return missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10,
                        help="seconds of load per scenario and side (default 10); split over --rounds for ratios")
    parser.add_argument("--rounds", type=int, default=ROUNDS,
                        help=f"pairs of baseline and Bastion run in turns for each ratio (default {ROUNDS})")
    parser.add_argument("--soak", type=float, default=30, help="seconds of the mixed soak (default 30)")
    parser.add_argument("--long-soak", action="store_const", const=300, dest="soak",
                        help="a 5-minute soak")
    parser.add_argument("--modes", default="embedded,postgres+redis", help="comma-separated modes to run")
    parser.add_argument("--skip-others", action="store_true", help="do not run the vector and WebSocket benchmarks")
    parser.add_argument("--vectors", default="", metavar="ARGS",
                        help="extra arguments for bench.vectors, e.g. '--n 20000 --queries 50' for a quick look")
    parser.add_argument("--write", action="store_true", help="write the results to bench/RESULTS.md")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    modes = args.modes.split(",")
    unknown = set(modes) - {"embedded", "postgres+redis"}
    if unknown:
        parser.error(f"unknown mode {', '.join(sorted(unknown))}: the modes are embedded and postgres+redis")
    missing = missing_prerequisites(modes)
    if missing:
        print("python -m bench needs " + "; ".join(missing), file=sys.stderr)
        return 2

    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    rows: list[Row] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bastion-bench-") as tmp:
        for mode in modes:
            print(f"measuring {mode} ...", file=sys.stderr)
            rows += measure_mode(mode, Path(tmp), args, notes)
    other_rows, failures = ([], []) if args.skip_others else other_benchmarks(args.vectors.split())
    rows += other_rows

    report = "\n\n".join([f"Measured {started} on {machine()}; load from wrk (1 thread), "
                          f"{args.duration:.0f} s of load per scenario and side, each ratio the median of "
                          f"{args.rounds} pairs run in turns.", table(rows), "\n".join(f"- {n}" for n in notes + failures)])
    print(report)
    if args.write:
        RESULTS.write_text(RESULTS.read_text().split("<!-- results -->")[0] + "<!-- results -->\n\n" + report + "\n"
                           if RESULTS.exists() else report + "\n")
    return 0
