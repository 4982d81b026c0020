"""Backup and restore of 100,000 users and 100,000 vectors, and what a backup costs the requests served meanwhile.

    .venv/bin/python -m bench.backup                          # both modes, 100,000 + 100,000 x 384
    .venv/bin/python -m bench.backup --modes embedded --users 20000 --vectors 20000   # a quick look

For each mode (embedded: SQLite; postgres+redis), on a real `bastiond`:
1. the users are written straight into its database (one argon2id hash for all: hashing 100,000 passwords
   would take an hour and measure nothing here), the vectors through its API (upserts of 1,000);
2. idle: GET /api/v1/users/me from PROBES threads, each one request every PROBE_INTERVAL_S on a keep-alive
   connection of its own, for as long as the backup will take (the backup is timed once beforehand);
3. during a backup: the same probes while `bastiond backup` runs beside the daemon;
4. the control: the same probes while a process spins one CPU at the backup's priority (nice 10);
5. steps 2 to 4 again, in turns, so that the machine's other load drifts across all equally;
6. `bastiond restore` into an empty data dir / schema, timed, and a daemon started on it answers a login.
The figure to read is the ratio of p99s, during a backup over idle (target: under 2); the probes run at a
fixed, modest rate, so a p99 shows the stalls a backup causes rather than a saturated queue.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from bench.run import daemon, percentile, pg_schema
from tests import daemon_process
from tests.daemon_process import ADMIN_PASSWORD, ROOT, start

PASSPHRASE = "the benchmark's backup passphrase"
PROBES = 4
PROBE_INTERVAL_S = 0.01
ROUNDS = 2
BATCH = 1000
SETTINGS = {"BASTION_VECTOR_EXACT_MAX": "10000000"}  # no index build in the background to disturb the figures


def add_users(running, count: int) -> None:
    from argon2 import PasswordHasher, Type

    from daemon.clock import iso_now
    from daemon.ids import new_id

    hashed = PasswordHasher(type=Type.ID).hash(ADMIN_PASSWORD)
    stamp = iso_now()
    rows = [(new_id("usr"), f"bench{i}@example.com", "", "user", False, hashed, stamp, stamp) for i in range(count)]
    sql = "INSERT INTO users (id, email, display_name, role, disabled, password_hash, created_at, updated_at) VALUES "
    url = running.settings.get("BASTION_DATABASE_URL")
    if url:
        import psycopg2
        from psycopg2.extras import execute_values

        with psycopg2.connect(url) as conn, conn.cursor() as cur:
            execute_values(cur, sql + "%s", rows, page_size=5000)
        conn.close()
    else:
        import sqlite3

        conn = sqlite3.connect(running.data_dir / "bastion.sqlite3", timeout=30)
        with conn:
            conn.executemany(sql + "(?, ?, ?, ?, ?, ?, ?, ?)", rows)
        conn.close()


def add_vectors(running, token: str, count: int, dimension: int) -> None:
    running.call("POST", "/api/v1/collections", {"name": "bench", "dimension": dimension}, token=token)
    rng = np.random.default_rng(19)
    for start_at in range(0, count, BATCH):
        block = rng.standard_normal((min(BATCH, count - start_at), dimension), dtype=np.float32)
        vectors = [{"id": f"v{start_at + i}", "values_b64": base64.b64encode(row.astype("<f4").tobytes()).decode(),
                    "metadata": {"n": start_at + i}} for i, row in enumerate(block)]
        running.call("POST", "/api/v1/collections/bench/upsert", {"vectors": vectors}, token=token)


def probe(url: str, token: str, stop: threading.Event, latencies: list[float]) -> None:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    headers = {"Authorization": f"Bearer {token}"}
    while not stop.is_set():
        started = time.perf_counter()
        conn.request("GET", "/api/v1/users/me", headers=headers)
        response = conn.getresponse()
        response.read()
        latencies.append((time.perf_counter() - started) * 1000 if response.status == 200 else float("inf"))
        stop.wait(PROBE_INTERVAL_S)
    conn.close()


@contextmanager
def probing(url: str, token: str):
    """Latencies (ms) of the probes for as long as the block runs."""
    stop, latencies = threading.Event(), []
    threads = [threading.Thread(target=probe, args=(url, token, stop, latencies)) for _ in range(PROBES)]
    for thread in threads:
        thread.start()
    try:
        yield latencies
    finally:
        stop.set()
        for thread in threads:
            thread.join()


def bastiond(*args: str, env: dict[str, str]) -> float:
    """Runs one command; its wall time in seconds."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "daemon", *args], env=env, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"bastiond {args[0]} failed: {done.stderr[-2000:]}")
    return time.perf_counter() - started


def burn(seconds: float) -> None:
    """The control: a process doing nothing but spinning one CPU, at the backup's priority (nice 10), for as
    long as a backup takes. What it costs the probes is what any one-core background job costs here."""
    subprocess.run(["nice", "-n", "10", sys.executable, "-c",
                    f"import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end: pass"], check=True)


def summary(latencies: list[float]) -> dict:
    return {"requests": len(latencies), "p50_ms": round(percentile(latencies, 50), 2),
            "p99_ms": round(percentile(latencies, 99), 2), "failed": sum(1 for x in latencies if x == float("inf"))}


@contextmanager
def empty_target(mode: str, workdir: Path):
    if mode == "embedded":
        yield {"BASTION_DATA_DIR": str(workdir / "restored")}
        return
    with pg_schema() as url:
        yield {"BASTION_DATA_DIR": str(workdir / "restored"), "BASTION_DATABASE_URL": url}


def measure(mode: str, users: int, vectors: int, dimension: int, workdir: Path) -> dict:
    result: dict = {"mode": mode, "users": users, "vectors": vectors, "dimension": dimension}
    with daemon(mode, workdir, **SETTINGS) as running:
        token = running.admin_token()
        started = time.perf_counter()
        add_users(running, users)
        add_vectors(running, token, vectors, dimension)
        result["load_s"] = round(time.perf_counter() - started, 1)
        env = {**running.env(), "BASTION_BACKUP_PASSPHRASE": PASSPHRASE}
        archive = workdir / f"{mode}-0.backup"
        result["backup_s"] = [round(bastiond("backup", "--to", str(archive), env=env), 2)]  # also sizes the idle runs
        result["archive_mb"] = round(archive.stat().st_size / 1e6, 1)
        idle: list[float] = []
        during: list[float] = []
        busy: list[float] = []
        for turn in range(1, ROUNDS + 1):
            with probing(running.url, token) as latencies:
                time.sleep(result["backup_s"][0])
            idle += latencies
            with probing(running.url, token) as latencies:
                result["backup_s"].append(round(bastiond("backup", "--to", str(workdir / f"{mode}-{turn}.backup"), env=env), 2))
            during += latencies
            with probing(running.url, token) as latencies:
                burn(result["backup_s"][0])
            busy += latencies
        result["idle"], result["during_backup"], result["during_busy_loop"] = summary(idle), summary(during), summary(busy)
        result["p99_ratio"] = round(result["during_backup"]["p99_ms"] / result["idle"]["p99_ms"], 2)
        result["busy_loop_p99_ratio"] = round(result["during_busy_loop"]["p99_ms"] / result["idle"]["p99_ms"], 2)
    with empty_target(mode, workdir) as target:
        restore_env = {**os.environ, **target, "BASTION_BACKUP_PASSPHRASE": PASSPHRASE, "BASTION_LOG_LEVEL": "warning"}
        result["restore_s"] = round(bastiond("restore", str(archive), env=restore_env), 2)
        # Its start reads 100,000 vectors into memory: longer than tests wait for an empty daemon.
        daemon_process.START_WAIT_S = 180
        restored = start(Path(target["BASTION_DATA_DIR"]), **{**SETTINGS, **target})
        try:
            restored.call("POST", "/api/v1/auth/login", {"email": "bench0@example.com", "password": ADMIN_PASSWORD})
            result["restored_vectors"] = restored.call("GET", "/api/v1/collections/bench", token=restored.admin_token())["count"]
        finally:
            restored.stop()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.backup", description=__doc__.split("\n")[0])
    parser.add_argument("--modes", default="embedded,postgres+redis")
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--vectors", type=int, default=100_000)
    parser.add_argument("--dimension", type=int, default=384)
    parser.add_argument("--json", action="store_true", help="one JSON object per mode instead of a table")
    args = parser.parse_args(argv)
    for mode in args.modes.split(","):
        with tempfile.TemporaryDirectory(prefix="bastion-bench-backup-") as workdir:
            result = measure(mode, args.users, args.vectors, args.dimension, Path(workdir))
        if args.json:
            print(json.dumps(result), flush=True)
            continue
        print(f"{mode}: {result['users']:,} users + {result['vectors']:,} x {result['dimension']} vectors "
              f"(loaded in {result['load_s']} s); archive {result['archive_mb']} MB", flush=True)
        print(f"  backup {result['backup_s']} s; restore {result['restore_s']} s "
              f"(restored collection: {result['restored_vectors']:,} vectors)")
        for phase in ("idle", "during_backup", "during_busy_loop"):
            print(f"  GET /users/me {phase:<16} {result[phase]}")
        print(f"  p99 during a backup / idle: {result['p99_ratio']} (target: under 2); during a spinning process at "
              f"nice 10 / idle: {result['busy_loop_p99_ratio']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
