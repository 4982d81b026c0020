"""compose.yaml's PostgreSQL scripts, run for real against this machine's PostgreSQL binaries.

No Docker engine runs here, but the scripts are plain sh: primary-init.sh runs against a real primary
(tests/faults/pg_server.py), then replica-entrypoint.sh clones it with pg_basebackup and the clone is
started as a standby. Only the postgres image's own `docker-entrypoint.sh`, which the script hands
over to at the end, is a stand-in: a script that records its arguments.
"""

from __future__ import annotations

import os
import pwd
import subprocess
import time
from pathlib import Path

import psycopg2
import pytest

from tests.conftest import REQUIRE
from tests.faults.pg_server import BIN, PgServer, available

SCRIPTS = Path(__file__).resolve().parents[2] / "deploy" / "postgres"
WAIT_S = 30.0


def _as_postgres(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    if os.geteuid() == 0:
        # runuser keeps only what --whitelist-environment names; env(1) sets the rest explicitly.
        command = ["runuser", "-u", "postgres", "--", "env", *(f"{k}={v}" for k, v in env.items()), *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=120)
    return subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True, timeout=120)


def _query(port: int, sql: str) -> list[tuple]:
    conn = psycopg2.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres")
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()
    finally:
        conn.close()


def test_the_compose_scripts_make_a_streaming_replica():
    if not available():
        if REQUIRE:
            pytest.fail("PostgreSQL server binaries are required (BASTION_TEST_REQUIRE_SERVICES=1) but not installed")
        pytest.skip("PostgreSQL server binaries are not installed")
    primary, replica = PgServer().init(), PgServer()
    stub_dir = replica.root / "bin"  # the postgres user must reach it: pytest's tmp_path is private
    try:
        primary.start()
        done = _as_postgres(
            ["sh", str(SCRIPTS / "primary-init.sh")],
            {"PGDATA": str(primary.dir), "POSTGRES_USER": "postgres", "POSTGRES_DB": "postgres",
             "REPLICATION_PASSWORD": "it's secret", "PGHOST": "127.0.0.1", "PGPORT": str(primary.port),
             "PATH": f"{BIN}:/usr/bin:/bin"},
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert _query(primary.port, "SELECT rolreplication, rolcanlogin FROM pg_roles WHERE rolname = 'replicator'") == [
            (True, True)
        ]
        assert "host replication replicator all scram-sha-256" in (primary.dir / "pg_hba.conf").read_text()

        stub_dir.mkdir()
        record = stub_dir / "handed-over"
        stub = stub_dir / "docker-entrypoint.sh"
        stub.write_text(f'#!/bin/sh\necho "$@" > {record}\n')
        stub.chmod(0o755)
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")
            for path in (replica.root, stub_dir):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        done = _as_postgres(
            ["sh", str(SCRIPTS / "replica-entrypoint.sh")],
            {"PGDATA": str(replica.dir), "PRIMARY_HOST": "127.0.0.1", "PRIMARY_PORT": str(primary.port),
             "REPLICATION_PASSWORD": "it's secret", "PATH": f"{stub_dir}:{BIN}:/usr/bin:/bin"},
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert record.read_text().split() == ["postgres", "-c", "hot_standby=on"]
        assert (replica.dir / "standby.signal").exists()
        assert "user=replicator" in (replica.dir / "postgresql.auto.conf").read_text()

        replica.start()
        assert _query(replica.port, "SELECT pg_is_in_recovery()") == [(True,)]
        deadline = time.monotonic() + WAIT_S
        while _query(primary.port, "SELECT usename, state FROM pg_stat_replication") != [("replicator", "streaming")]:
            if time.monotonic() > deadline:
                pytest.fail("the replica made by the compose scripts does not stream from the primary")
            time.sleep(0.05)
    finally:
        replica.destroy()
        primary.destroy()
