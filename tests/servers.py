"""Servers a test runs of its own (Redis, Sentinel, HAProxy, Prometheus) on spare ports, stopped cleanly."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import installed


def redis_server() -> str:
    return installed("redis-server")


def spawn(args: list[str], log: Path) -> subprocess.Popen:
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)


def stop_all(processes: list[subprocess.Popen]) -> None:
    """Stop in reverse start order (for Redis: replicas before their primary, since a Redis 7 primary
    told to shut down first waits up to 10 s for its replicas to catch up), and always reap."""
    for proc in reversed(processes):
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
