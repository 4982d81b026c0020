"""Backup and restore of 100,000 users and 100,000 vectors, and what a backup costs the requests served meanwhile.

    .venv/bin/python -m bench.backup                          # both modes, 100,000 + 100,000 x 384
    .venv/bin/python -m bench.backup --modes embedded --users 20000 --vectors 20000   # a quick look

For each mode (embedded: SQLite; postgres+redis), on a real `bastiond` in a session of its own (as a service
runs: Linux gives each session a scheduling group, "autogroup"):
1. the users are written straight into its database (one argon2id hash for all: hashing 100,000 passwords
   would take an hour and measure nothing here), the vectors through its API (upserts of 1,000);
2. idle: GET /api/v1/users/me from two probes at once for PHASE_S: the fixed-rate one (bench/fixed_rate.py,
   a process and session of its own: RATE requests/s whatever the answers' speed, each latency counted from
   when the request was due) and, as before, PROBES threads of this process, each sending its next request
   PROBE_INTERVAL_S after its last answer (closed loop);
3. during backups: the same probes while `bastiond backup` runs beside the daemon, again and again until
   PHASE_S have passed (with --compare-with, the same with another checkout's `bastiond backup`);
4. the controls: the same probes while a process does nothing but spin one CPU for PHASE_S, once placed as
   the backup places itself (`as_background_work` in daemon/cli.py) and once at nice 10 in this process's
   group (where backups ran before): what any one-core background job costs there;
5. steps 2 to 4 again, in turns (--rounds), so that the machine's other load drifts across all equally;
6. `bastiond restore` into an empty data dir / schema, timed, and a daemon started on it answers a login.
The figure to read is the fixed-rate probe's p99 during backups over its idle p99 (target: under 2): it is
what users who do not wait for each other meet. The closed-loop figure is printed beside it; a closed loop
sends nothing while the daemon stalls, so it counts each stall once, however many requests it held up.
Each phase also records how busy the machine's CPUs were (/proc/stat) and the daemon's own CPU, to show
whether the probes saturate anything.
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
RATE = 400  # requests/s of the fixed-rate probe
PHASE_S = 20  # each phase at least; a backup shorter than that is taken again, back to back
ROUNDS = 3
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
def fixed_rate(url: str, token: str):
    """The fixed-rate probe's latencies (ms), extended when the block ends."""
    latencies: list[float] = []
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        prober = subprocess.Popen([sys.executable, "-m", "bench.fixed_rate", url + "/api/v1/users/me",
                                   "--rate", str(RATE), "--out", out.name],
                                  env={**os.environ, "BENCH_TOKEN": token}, cwd=ROOT, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, start_new_session=True)
        try:
            if prober.stdout.readline().strip() != "ready":
                raise RuntimeError("bench.fixed_rate did not start")
            yield latencies
        finally:
            prober.stdin.close()  # its signal to stop
            prober.stdout.close()
            prober.wait()
        result = json.loads(Path(out.name).read_text())
    latencies += result["latencies_ms"]
    latencies += [float("inf")] * (result["due"] - len(result["latencies_ms"]))


def cpu_times(pid: int) -> tuple[int, int, int]:
    """The machine's busy and total CPU time so far, and process `pid`'s, in ticks."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:8]]
    own = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(fields) - fields[3] - fields[4], sum(fields), int(own[11]) + int(own[12])  # less idle, iowait


@contextmanager
def probing(running, token: str):
    """(fixed-rate latencies, closed-loop latencies, [(machine's CPUs busy %, daemon's CPU % of one core)]) for
    as long as the block runs."""
    stop, closed, cpu = threading.Event(), [], []
    threads = [threading.Thread(target=probe, args=(running.url, token, stop, closed)) for _ in range(PROBES)]
    with fixed_rate(running.url, token) as opened:
        before, started = cpu_times(running.process.pid), time.monotonic()
        for thread in threads:
            thread.start()
        try:
            yield opened, closed, cpu
        finally:
            stop.set()
            for thread in threads:
                thread.join()
            after, ticks = cpu_times(running.process.pid), os.sysconf("SC_CLK_TCK") * (time.monotonic() - started)
            cpu.append((round(100 * (after[0] - before[0]) / max(1, after[1] - before[1])),
                        round(100 * (after[2] - before[2]) / ticks)))


def bastiond(*args: str, env: dict[str, str], checkout: Path = ROOT) -> float:
    """Runs one command (of another checkout's code, with `checkout`); its wall time in seconds."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "daemon", *args], env=env, cwd=checkout, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"bastiond {args[0]} failed: {done.stderr[-2000:]}")
    return time.perf_counter() - started


SPIN = "import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end: pass"
CONTROLS = {  # a process doing nothing but spinning one CPU, as a background job may
    "spin_as_backup": "from daemon.cli import as_background_work\nas_background_work()\n",  # the backup's place
    "spin_nice_10": "import os\nos.nice(10)\n",  # where backups ran before: nice 10, in the harness's group
}


def spin(control: str, seconds: float) -> None:
    """A control: what a one-core background job costs the probes at that priority, for as long as a backup."""
    subprocess.run([sys.executable, "-c", CONTROLS[control] + SPIN.format(seconds=seconds)], cwd=ROOT, check=True)


def summary(latencies: list[float]) -> dict:
    return {"requests": len(latencies), "p50_ms": round(percentile(latencies, 50), 2),
            "p99_ms": round(percentile(latencies, 99), 2), "max_ms": round(max(latencies), 1),
            "failed": sum(1 for x in latencies if x == float("inf"))}


PHASES = ("idle", "during_backup", *CONTROLS)


@contextmanager
def empty_target(mode: str, workdir: Path):
    if mode == "embedded":
        yield {"BASTION_DATA_DIR": str(workdir / "restored")}
        return
    with pg_schema() as url:
        yield {"BASTION_DATA_DIR": str(workdir / "restored"), "BASTION_DATABASE_URL": url}


def measure(mode: str, users: int, vectors: int, dimension: int, workdir: Path, rounds: int,
            compare_with: Path | None) -> dict:
    result: dict = {"mode": mode, "users": users, "vectors": vectors, "dimension": dimension}
    with daemon(mode, workdir, command_prefix=("setsid",), **SETTINGS) as running:  # a service: its own session
        token = running.admin_token()
        started = time.perf_counter()
        add_users(running, users)
        add_vectors(running, token, vectors, dimension)
        result["load_s"] = round(time.perf_counter() - started, 1)
        env = {**running.env(), "BASTION_BACKUP_PASSPHRASE": PASSPHRASE}
        archive = workdir / f"{mode}-0.backup"
        result["backup_s"] = [round(bastiond("backup", "--to", str(archive), env=env), 2)]  # also sizes the idle runs
        result["archive_mb"] = round(archive.stat().st_size / 1e6, 1)
        phases = {phase: ([], [], []) for phase in PHASES}  # fixed-rate, closed-loop latencies; CPU busy %
        if compare_with:
            phases["during_backup_of_" + compare_with.name] = ([], [], [])
            result["backup_of_" + compare_with.name + "_s"] = []

        def phase(name: str, work) -> None:
            with probing(running, token) as (opened, closed, busy):
                work()
            for into, taken in zip(phases[name], (opened, closed, busy)):
                into += taken

        def backups(times: list[float], checkout: Path = ROOT) -> None:
            started = time.monotonic()
            while time.monotonic() - started < PHASE_S:
                path = workdir / f"{mode}-{len(times)}-{checkout.name}.backup"
                times.append(round(bastiond("backup", "--to", str(path), env=env, checkout=checkout), 2))
                path.unlink()

        for _ in range(rounds):
            phase("idle", lambda: time.sleep(PHASE_S))
            phase("during_backup", lambda: backups(result["backup_s"]))
            if compare_with:
                phase("during_backup_of_" + compare_with.name,
                      lambda: backups(result["backup_of_" + compare_with.name + "_s"], compare_with))
            for control in CONTROLS:
                phase(control, lambda: spin(control, PHASE_S))  # noqa: B023 (run at once)
        for name, (opened, closed, busy) in phases.items():
            result[name] = {"fixed_rate": summary(opened), "closed_loop": summary(closed),
                            "cpu_busy_pct": [b for b, _ in busy],
                            "daemon_cpu_pct": [d for _, d in busy]}
        for name in list(phases)[1:]:
            result[f"{name}_p99_ratio"] = {
                probe: round(result[name][probe]["p99_ms"] / result["idle"][probe]["p99_ms"], 2)
                for probe in ("fixed_rate", "closed_loop")
            }
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
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="turns of the phases (default %(default)s)")
    parser.add_argument("--compare-with", type=Path, metavar="CHECKOUT",
                        help="also, in the same turns, backups by another checkout's code (a git worktree)")
    parser.add_argument("--json", action="store_true", help="one JSON object per mode instead of a table")
    args = parser.parse_args(argv)
    for mode in args.modes.split(","):
        with tempfile.TemporaryDirectory(prefix="bastion-bench-backup-") as workdir:
            result = measure(mode, args.users, args.vectors, args.dimension, Path(workdir), args.rounds,
                             args.compare_with and args.compare_with.resolve())
        if args.json:
            print(json.dumps(result), flush=True)
            continue
        print(f"{mode}: {result['users']:,} users + {result['vectors']:,} x {result['dimension']} vectors "
              f"(loaded in {result['load_s']} s); archive {result['archive_mb']} MB", flush=True)
        print(f"  backup {result['backup_s']} s; restore {result['restore_s']} s "
              f"(restored collection: {result['restored_vectors']:,} vectors)")
        phases = [p for p in result if isinstance(result[p], dict) and "cpu_busy_pct" in result[p]]
        for phase in phases:
            print(f"  GET /users/me {phase:<16} fixed-rate {result[phase]['fixed_rate']}; closed-loop "
                  f"{result[phase]['closed_loop']}; CPUs busy {result[phase]['cpu_busy_pct']}%, the daemon "
                  f"{result[phase]['daemon_cpu_pct']}% of one")
        for phase in phases[1:]:
            ratio = result[f"{phase}_p99_ratio"]
            print(f"  p99 {phase} / idle: fixed-rate {ratio['fixed_rate']}"
                  f"{' (target: under 2)' if phase == 'during_backup' else ''}, closed-loop {ratio['closed_loop']}")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
