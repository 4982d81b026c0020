"""The `bastiond` command as an operator meets it: a real process, its exit codes and its output."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time

from tests.conftest import free_port
from tests.daemon_process import ROOT, start


def _bastiond(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "daemon", *args], env={**os.environ, **(env or {})}, cwd=ROOT,
        capture_output=True, text=True, input=stdin, timeout=60,
    )


def test_help_lists_every_setting_and_the_exit_codes():
    done = _bastiond("--help")
    assert done.returncode == 0
    for name in ("BASTION_DATA_DIR", "BASTION_DATABASE_URL", "BASTION_REDIS_URL", "exit codes"):
        assert name in done.stdout


def test_a_bad_setting_stops_the_start_with_one_line(tmp_path):
    done = _bastiond("serve", env={"BASTION_PORT": "eighty", "BASTION_DATA_DIR": str(tmp_path)})
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["bastiond: BASTION_PORT: expected an integer from 0 to 65535"]


def test_migrate_then_create_admin_then_log_in(tmp_path):
    env = {"BASTION_DATA_DIR": str(tmp_path)}
    first = _bastiond("migrate", env=env)
    assert first.returncode == 0 and "applied" in first.stdout
    assert "up to date" in _bastiond("migrate", env=env).stdout
    weak = _bastiond("create-admin", "--email", "root@example.com", env={**env, "BASTION_ADMIN_PASSWORD": "password123"})
    assert weak.returncode == 1 and "Traceback" not in weak.stderr and len(weak.stderr.strip().splitlines()) == 1
    made = _bastiond("create-admin", "--email", "root@example.com", stdin="a long admin passphrase\n", env=env)
    assert made.returncode == 0, made.stderr
    daemon = start(tmp_path)
    try:
        pair = daemon.call("POST", "/api/v1/auth/login", {"email": "root@example.com", "password": "a long admin passphrase"})
        assert pair["user"]["role"] == "admin"
    finally:
        daemon.stop()


def test_a_fresh_start_says_how_to_create_the_first_admin_and_has_no_account(tmp_path):
    daemon = start(tmp_path)
    try:
        users = daemon.call("GET", "/readyz")
        assert users["status"] == "ok"
    finally:
        daemon.stop()
    log = daemon.log.read_text()
    assert log.count("bastiond create-admin") == 1
    assert (tmp_path / "secrets").stat().st_mode & 0o777 == 0o700


def test_sigterm_finishes_the_requests_in_flight_and_exits_zero(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    daemon = start(tmp_path)
    host, port = daemon.url.removeprefix("http://").split(":")

    def login(n: int) -> int:
        # Each login spends an argon2 verify (tens of ms on two threads): twenty are still running
        # when the signal arrives. One account each: a single account is refused (429) after 10 guesses
        # from one address, and this test is about finishing what is in flight, not about guessing.
        body = json.dumps({"email": f"nobody{n}@example.com", "password": "some password here"})
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            connection.request("POST", "/api/v1/auth/login", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            return response.status
        finally:
            connection.close()

    with ThreadPoolExecutor(20) as pool:
        futures = [pool.submit(login, n) for n in range(20)]
        time.sleep(0.15)
        daemon.process.send_signal(signal.SIGTERM)
        statuses = [f.result() for f in futures]
    assert statuses == [401] * 20  # every one answered in full: unknown account
    assert daemon.process.wait(timeout=30) == 0
    probe = http.client.HTTPConnection(host, int(port), timeout=2)
    try:
        probe.request("GET", "/healthz")
        refused = False
    except OSError:
        refused = True
    finally:
        probe.close()
    assert refused, "still accepting connections after SIGTERM"


def test_a_taken_port_is_one_line_and_exit_1(tmp_path):
    import socket

    port = free_port()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        done = _bastiond("serve", "--port", str(port), env={"BASTION_DATA_DIR": str(tmp_path)})
    assert done.returncode == 1
    assert "cannot listen" in done.stderr and "Traceback" not in done.stderr


def test_rotate_signing_key_adds_a_key_and_keeps_the_old_one(tmp_path):
    env = {"BASTION_DATA_DIR": str(tmp_path)}
    assert _bastiond("migrate", env=env).returncode == 0
    for _ in range(2):
        done = _bastiond("rotate-signing-key", env=env)
        assert done.returncode == 0 and "new signing key" in done.stdout
    keys = json.loads((tmp_path / "secrets" / "signing_keys.json").read_text())["keys"]
    # the first rotation found no key and created one; the second kept it and added another
    assert len(keys) == 2 and keys[0]["kid"] != keys[1]["kid"]
    assert (tmp_path / "secrets" / "signing_keys.json").stat().st_mode & 0o777 == 0o600
