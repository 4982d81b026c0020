"""Prometheus config and alerts (checked and unit-tested by promtool, Debian's prometheus package), the
alerts' metrics against what the daemon really exports, and the log shipping config."""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from daemon.settings import Settings
from tests.conftest import free_port, installed
from tests.daemon_process import start
from tests.servers import stop_all

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
PROMETHEUS = DEPLOY / "prometheus"


def _run(*args: str, cwd: Path | None = None) -> None:
    done = subprocess.run(args, capture_output=True, text=True, cwd=cwd)
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_accepts_the_prometheus_config(tmp_path: Path):
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    # The config names the rules where the container mounts them; point it at the repository's copy.
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    config["rule_files"] = [str(PROMETHEUS / "alerts.yml")]
    local = tmp_path / "prometheus.yml"
    local.write_text(yaml.safe_dump(config))
    _run(installed("promtool", "promtool (Debian package prometheus)"), "check", "config", str(local))


def test_the_alerts_are_valid_and_fire_as_their_unit_tests_expect():
    promtool = installed("promtool", "promtool (Debian package prometheus)")
    _run(promtool, "check", "rules", str(PROMETHEUS / "alerts.yml"))
    _run(promtool, "test", "rules", "alerts_test.yml", cwd=PROMETHEUS)


async def test_every_metric_an_alert_uses_is_exported_by_the_daemon(aiohttp_client, settings: Settings):
    from daemon.app import create_app

    client = await aiohttp_client(create_app(settings))
    await client.get("/healthz")  # so the per-request series exist
    exported = set()
    for family in text_string_to_metric_families(await (await client.get("/metrics")).text()):
        exported.update(sample.name for sample in family.samples)

    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    expressions = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    used = {name for expr in expressions for name in re.findall(r"\b(bastion_[a-z_]+)", expr)}
    assert used, "the alerts name no bastion metric"
    assert used <= exported, used - exported


def test_fluent_bit_ships_the_daemon_containers_json_logs_to_elasticsearch():
    config = yaml.safe_load((DEPLOY / "logging" / "fluent-bit.yaml").read_text())
    pipeline = config["pipeline"]
    (tail,) = pipeline["inputs"]
    deployment = yaml.safe_load((DEPLOY / "k8s" / "base" / "deployment.yaml").read_text())
    containers = [c["name"] for c in deployment["spec"]["template"]["spec"]["containers"]]
    # Kubernetes names container logs <pod>_<namespace>_<container>-<id>.log.
    assert tail["name"] == "tail" and tail["path"] == f"/var/log/containers/*_*_{containers[0]}-*.log"
    (kubernetes,) = [f for f in pipeline["filters"] if f["name"] == "kubernetes"]
    assert kubernetes["merge_log"] is True  # the JSON line becomes fields: request_id, route, status...
    assert kubernetes["match"] == tail["tag"]
    (output,) = pipeline["outputs"]
    assert output["name"] == "es" and output["match"] == tail["tag"] and output["logstash_format"] is True


def test_prometheus_scrapes_a_running_daemon_with_the_deploy_config(tmp_path: Path):
    """The real Prometheus server, with deploy/prometheus's config (targets swapped for a local bastiond,
    a 1 s interval instead of 15 s), scrapes the daemon and loads the alerts."""
    prometheus = installed("prometheus", "prometheus (Debian package)")
    daemon = start(tmp_path / "data")
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    config["global"]["scrape_interval"] = "1s"
    config["rule_files"] = [str(PROMETHEUS / "alerts.yml")]
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "bastion"]
    job["static_configs"] = [{"targets": [daemon.url.removeprefix("http://")]}]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    with (tmp_path / "prometheus.log").open("wb") as log:
        proc = subprocess.Popen(
            [prometheus, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        def query(expr: str) -> list:
            url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
            with urllib.request.urlopen(url, timeout=5) as response:
                return json.loads(response.read())["data"]["result"]

        deadline = time.monotonic() + 60
        while True:
            try:
                up = query('up{job="bastion"}')
                database = query('bastion_backend_up{job="bastion", service="database"}')
                if up and up[0]["value"][1] == "1" and database:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"Prometheus did not scrape the daemon: {(tmp_path / 'prometheus.log').read_text()[-2000:]}")
            time.sleep(0.2)
        assert database[0]["value"][1] == "1"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/rules", timeout=5) as response:
            rules = json.loads(response.read())["data"]["groups"]
        assert {r["name"] for g in rules for r in g["rules"]} >= {"BastionInstanceDown", "BastionBackendDown"}
    finally:
        stop_all([proc])
        daemon.stop()
