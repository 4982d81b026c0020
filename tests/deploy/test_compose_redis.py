"""compose.yaml's Redis services, run for real from Debian's redis-server on spare ports: the replica
with the compose file's own arguments, and Sentinel with deploy/redis/sentinel.conf. Only the compose
network's host names and ports are swapped for 127.0.0.1 and spare ports."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import yaml

from tests.conftest import free_port
from tests.servers import redis_server, spawn, stop_all

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
WAIT_S = 30.0


def _until(check, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            if check():
                return
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen]]:
    started: list[subprocess.Popen] = []
    yield started
    stop_all(started)


def test_the_compose_redis_replica_and_sentinel_run_with_their_own_config(tmp_path: Path, processes):
    server = redis_server()
    services = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]
    primary_port, replica_port, sentinel_port = free_port(), free_port(), free_port()
    names = {"redis-primary": "127.0.0.1", "redis-replica": "127.0.0.1"}

    def run(args: list[str], port: int, name: str) -> None:
        (tmp_path / name).mkdir()
        args = [names.get(a, a) for a in args]
        args = [str(primary_port) if a == "6379" else a for a in args]  # the primary's port in --replicaof
        processes.append(spawn(
            [server, *args[1:], "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path / name)],
            tmp_path / f"{name}.log",
        ))

    run(services["redis-primary"]["command"], primary_port, "primary")
    run(services["redis-replica"]["command"], replica_port, "replica")
    replica = redis.Redis(port=replica_port, decode_responses=True)
    _until(lambda: replica.info("replication").get("master_link_status") == "up", "the replica to sync")
    replica.close()

    conf = (DEPLOY / "redis" / "sentinel.conf").read_text()
    conf = conf.replace("port 26379", f"port {sentinel_port}").replace("redis-primary 6379", f"127.0.0.1 {primary_port}")
    (tmp_path / "sentinel.conf").write_text(conf + f"bind 127.0.0.1\ndir {tmp_path}\n")
    processes.append(spawn([server, str(tmp_path / "sentinel.conf"), "--sentinel"], tmp_path / "sentinel.log"))
    sentinel = redis.Redis(port=sentinel_port, decode_responses=True)
    _until(lambda: sentinel.execute_command("SENTINEL", "REPLICAS", "bastion"), "Sentinel to find the replica")
    master = sentinel.execute_command("SENTINEL", "MASTER", "bastion")
    sentinel.close()
    assert (master["port"], master["quorum"], master["down-after-milliseconds"]) == (str(primary_port), "1", "5000")
    assert master["flags"] == "master"
