"""`python -m bench.vector_exact`: a daemon's exact vector search over HTTP against numpy's brute force in the
client, in turns, and the ingest rate of each values form: the focused A/B probe of issue 16's two figures
"queries never slower than brute force while a graph builds" and "ingest >= 10,000 vectors/s".

    .venv/bin/python -m bench.vector_exact                                 # 100,000 x 384, this checkout
    .venv/bin/python -m bench.vector_exact --daemon old=/tmp/old --daemon this=.   # two checkouts in turns
    .venv/bin/python -m bench.vector_exact --daemon one=.:OPENBLAS_NUM_THREADS=1 --daemon this=.

Each `--daemon LABEL=CHECKOUT[:KEY=VALUE,...]` is a real `bastiond` of that checkout's code (its own data dir,
SQLite, the settings after the colon added to its environment), holding the same N vectors of issue 16's
mixture in one namespace that stays exact (BASTION_VECTOR_EXACT_MAX 10,000,000: no graph, so the figure is
the exact path's alone). Then, for --rounds rounds, each system answers --turn of the same held-out queries
in turn, the order rotating each round: every daemon over HTTP (one keep-alive connection), a bare aiohttp
server on uvloop answering the same JSON (the round trip of a trivial route: bench.vectors's `bare`), and
numpy's brute force in this process (`matrix @ q` over the normalised float32 matrix, then the top 10, as
bench.vectors times it; its BLAS threads sleep once done, as there). Reported: p50/p99 of each, each daemon's p50 over the brute force's, and the
daemon's CPU seconds per query (from /proc), with the load average before and after.

Ingest (--ingest, on by default): each daemon's vectors go in 1,000 a request over one connection, the first
half as JSON numbers and the second as values_b64, the daemons taking turns request by request, so both
forms of every daemon meet the same moments of the machine's load.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")  # before numpy: see bench/vectors.py

import numpy as np  # noqa: E402
import orjson
from threadpoolctl import threadpool_limits

from bench.vectors import DIM, TOP_K, Client, _wait_port, brute_force_query, make_data, make_metadata, normalised, start_bare
from tests.conftest import free_port
from tests.daemon_process import ROOT, Daemon

SETTINGS = {"BASTION_RATE_LIMIT_PER_MINUTE": "0", "BASTION_AUTH_RATE_LIMIT_PER_MINUTE": "0",
            "BASTION_ACCESS_TOKEN_TTL_S": "7200", "BASTION_VECTOR_EXACT_MAX": "10000000",
            "BASTION_LOG_LEVEL": "warning", "BASTION_SHUTDOWN_DRAIN_S": "0"}
QUERY_PATH = "/api/v1/collections/bench/query"
UPSERT_PATH = "/api/v1/collections/bench/upsert"


def start(label: str, checkout: Path, env: dict[str, str], workdir: Path) -> Daemon:
    """A daemon of `checkout`'s code (tests/daemon_process.start runs this checkout's only)."""
    data_dir = workdir / label
    data_dir.mkdir()
    port = free_port()
    log = data_dir / "bastiond.log"
    full = {**os.environ, **SETTINGS, **env, "BASTION_DATA_DIR": str(data_dir), "BASTION_PORT": str(port)}
    full.pop("PYTHONPATH", None)  # the checkout's own packages, from its working directory
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "daemon", "serve"], env=full, cwd=checkout,
                                   stdout=out, stderr=subprocess.STDOUT)
    daemon = Daemon(f"http://127.0.0.1:{port}", data_dir, process, log, {**SETTINGS, **env})
    try:
        _wait_port(port, 60)
    except OSError:
        raise SystemExit(f"{label} did not start: {log.read_text()[-2000:]}") from None
    password = secrets.token_urlsafe(16)
    email = f"probe-{secrets.token_hex(4)}@example.com"
    done = subprocess.run([sys.executable, "-m", "daemon", "create-admin", "--email", email],
                          env={**full, "BASTION_ADMIN_PASSWORD": password}, cwd=checkout, capture_output=True,
                          text=True, timeout=60)
    if done.returncode != 0:
        raise SystemExit(f"create-admin for {label}: {done.stderr[-2000:]}")
    daemon.settings["token"] = daemon.call("POST", "/api/v1/auth/login", {"email": email, "password": password})["access_token"]
    return daemon


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def upsert_body(data: np.ndarray, genre: np.ndarray, year: np.ndarray, start: int, stop: int, packed: bool) -> bytes:
    vectors = []
    for i in range(start, stop):
        values = ({"values_b64": base64.b64encode(data[i].astype("<f4").tobytes()).decode()} if packed
                  else {"values": data[i].tolist()})
        vectors.append({"id": f"v{i}", **values, "metadata": {"genre": f"g{genre[i]}", "year": int(year[i])}})
    return orjson.dumps({"vectors": vectors})


def pct(times: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(times) * 1000, q)) if times else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=100, help="held-out queries, reused round after round")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--turn", type=int, default=20, help="queries each system answers in a row")
    parser.add_argument("--daemon", action="append", metavar="LABEL=CHECKOUT[:KEY=VALUE,...]")
    parser.add_argument("--no-ingest-timing", action="store_true", help="ingest as values_b64 only, untimed")
    args = parser.parse_args()
    specs = []
    for spec in args.daemon or [f"this={ROOT}"]:
        label, rest = spec.split("=", 1)
        checkout, _, extra = rest.partition(":")
        env = dict(item.split("=", 1) for item in extra.split(",") if item)
        specs.append((label, Path(checkout).resolve(), env))
    data, queries = make_data("mixture", args.n, args.queries)
    genre, year = make_metadata(args.n)
    matrix = normalised(data)
    print(f"vector_exact: {args.n:,} x {DIM}, {args.queries} held-out queries, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-vector-exact-") as tmp:
        workdir = Path(tmp)
        daemons: dict[str, tuple[Daemon, Client]] = {}
        bare = None
        try:
            for label, checkout, env in specs:
                daemon = start(label, checkout, env, workdir)
                client = Client(daemon.url, {"Authorization": f"Bearer {daemon.settings['token']}"})
                status = client.call("POST", "/api/v1/collections",
                                     orjson.dumps({"name": "bench", "dimension": DIM, "metric": "cosine"}))[1]
                assert status == 201, status
                daemons[label] = (daemon, client)
            # Ingest: request by request in turns; the first half as JSON numbers, the second values_b64.
            took = {(label, form): 0.0 for label in daemons for form in ("json", "b64")}
            for s in range(0, args.n, 1000):
                form = "b64" if args.no_ingest_timing or s >= args.n // 2 else "json"
                body = upsert_body(data, genre, year, s, min(args.n, s + 1000), form == "b64")
                for label, (_, client) in daemons.items():
                    seconds, status, answer = client.call("POST", UPSERT_PATH, body)
                    if status != 200:
                        raise SystemExit(f"{label}: upsert answered {status}: {answer[:300]!r}")
                    took[label, form] += seconds
            if not args.no_ingest_timing:
                for label in daemons:
                    half = args.n // 2
                    print(f"ingest {label}: JSON numbers {half / took[label, 'json']:,.0f} /s, "
                          f"values_b64 {(args.n - half) / took[label, 'b64']:,.0f} /s", flush=True)
            # The bare round trip, as bench.vectors serves it.
            bodies = [orjson.dumps({"vector": q.tolist(), "top_k": TOP_K}) for q in queries]
            first = next(iter(daemons.values()))[1]
            bare, baseline = start_bare(workdir, first.call("POST", QUERY_PATH, bodies[0])[2])
            for _, client in daemons.values():  # warm-up, and the answers must be the brute force's
                for body, q in list(zip(bodies, queries))[:10]:
                    seconds, status, answer = client.call("POST", QUERY_PATH, body)
                    got = [int(m["id"][1:]) for m in orjson.loads(answer)["matches"]]
                    assert status == 200 and set(got) == set(brute_force_query(matrix, q).tolist()), (status, answer[:200])
            times: dict[str, list[float]] = {label: [] for label in [*daemons, "bare", "brute", "brute, 1 thread"]}
            cpu = {label: 0.0 for label in daemons}
            systems = list(times)
            i = 0
            for round_ in range(args.rounds):
                order = systems[round_ % len(systems):] + systems[: round_ % len(systems)]
                picked = [(bodies[(i + j) % len(bodies)], queries[(i + j) % len(bodies)]) for j in range(args.turn)]
                i += args.turn
                for label in order:
                    if label.startswith("brute"):
                        with threadpool_limits(limits=1 if "1 thread" in label else None, user_api="blas"):
                            for _, q in picked:
                                t = time.perf_counter()
                                brute_force_query(matrix, q)
                                times[label].append(time.perf_counter() - t)
                    elif label == "bare":
                        times[label] += [baseline.call("POST", "/query", body)[0] for body, _ in picked]
                    else:
                        daemon, client = daemons[label]
                        before = cpu_s(daemon.process.pid)
                        times[label] += [client.call("POST", QUERY_PATH, body)[0] for body, _ in picked]
                        cpu[label] += cpu_s(daemon.process.pid) - before
            brute = pct(times["brute"], 50)
            print(f"queries in turns of {args.turn}, {args.rounds} rounds; load average after {os.getloadavg()}")
            print("| system | p50 ms | p99 ms | p50 / brute force p50 | CPU ms a query |")
            print("| --- | ---: | ---: | ---: | ---: |")
            for label, found in times.items():
                used = f"{1000 * cpu[label] / len(found):.2f}" if label in cpu else ""
                print(f"| {label} | {pct(found, 50):.2f} | {pct(found, 99):.2f} | {pct(found, 50) / brute:.2f} | {used} |")
            baseline.close()
        finally:
            if bare is not None:
                bare.terminate()
                bare.wait(timeout=20)
            for daemon, client in daemons.values():
                client.close()
                daemon.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
