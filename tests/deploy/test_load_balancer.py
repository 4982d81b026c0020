"""deploy/haproxy/haproxy.cfg run for real (Debian's haproxy) in front of two real bastiond processes.
Only the compose network's names and ports are swapped for 127.0.0.1 and spare ports."""

from __future__ import annotations

import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import free_port, installed
from tests.daemon_process import Daemon, start
from tests.servers import stop_all

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "haproxy" / "haproxy.cfg"
WAIT_S = 30.0


def _healthz_count(url: str) -> float:
    with urllib.request.urlopen(url + "/metrics", timeout=5) as response:
        text = response.read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "bastion_http_requests_total" and sample.labels.get("route") == "/healthz":
                return sample.value
    return 0.0


@pytest.fixture
def balanced(tmp_path: Path) -> Iterator[tuple[str, list[Daemon]]]:
    """HAProxy's URL, and the two daemons behind it."""
    haproxy = installed("haproxy")
    daemons = [start(tmp_path / name) for name in ("a", "b")]
    port = free_port()
    config = CONFIG.read_text().replace("bind :8080", f"bind 127.0.0.1:{port}")
    for name, daemon in zip(("bastion-a", "bastion-b"), daemons):
        config = config.replace(f"{name}:8420", daemon.url.removeprefix("http://"))
    (tmp_path / "haproxy.cfg").write_text(config)
    with (tmp_path / "haproxy.log").open("wb") as log:
        proc = subprocess.Popen([haproxy, "-db", "-f", str(tmp_path / "haproxy.cfg")], stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + WAIT_S
        while True:
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"haproxy did not serve: {(tmp_path / 'haproxy.log').read_text()[-2000:]}")
            time.sleep(0.1)
        yield url, daemons
    finally:
        stop_all([proc])
        for daemon in daemons:
            daemon.stop()


def test_haproxy_spreads_requests_over_both_daemons(balanced):
    url, daemons = balanced
    before = [_healthz_count(d.url) for d in daemons]
    for _ in range(10):
        with urllib.request.urlopen(url + "/healthz", timeout=5) as response:
            assert response.status == 200
    served = [_healthz_count(d.url) - b for d, b in zip(daemons, before)]
    assert sum(served) == 10
    assert min(served) >= 4, served  # round robin: both daemons take their share


async def test_a_websocket_passes_through_haproxy_both_ways(balanced):
    url, _ = balanced
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url + "/api/v1/ws") as ws:  # the upgrade went through
            await ws.send_json({"type": "auth", "token": "not-a-token"})
            message = await ws.receive(timeout=WAIT_S)  # and the daemon's answer came back
    assert message.type == aiohttp.WSMsgType.CLOSE
    assert message.data == 4401
