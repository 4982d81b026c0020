"""`bastion up`, the first run: a local daemon on embedded defaults, the first admin made by a person."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.tui.terminal import Terminal, terminal  # noqa: F401 (the fixture)
from tests.daemon_process import ADMIN_PASSWORD, ROOT


@pytest.fixture
def first_run(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of a fresh machine: its own data dir and port; stops the daemon `up` leaves running."""
    data = tmp_path / "data"
    env = {**os.environ, "BASTION_DATA_DIR": str(data), "BASTION_PORT": str(free_port()),
           "BASTION_LOG_LEVEL": "warning"}
    yield env
    pid_file = data / "bastiond.pid"
    if pid_file.exists():
        pid = int(pid_file.read_text())
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


def up(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tui", "up", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=90, stdin=subprocess.DEVNULL)


def test_up_starts_a_daemon_then_reuses_it_and_never_invents_an_admin(first_run: dict[str, str]) -> None:
    url = f"http://127.0.0.1:{first_run['BASTION_PORT']}"
    first = up(first_run, "--no-tui")
    assert f"bastiond is running at {url}" in first.stdout
    # No terminal to ask for the first admin: it says how, and creates nobody with a default password.
    assert first.returncode == 2 and "bastiond create-admin" in first.stderr
    created = subprocess.run([sys.executable, "-m", "daemon", "create-admin", "--email", "root@example.com"],
                             env={**first_run, "BASTION_ADMIN_PASSWORD": ADMIN_PASSWORD}, cwd=ROOT,
                             capture_output=True, text=True, timeout=60)
    assert created.returncode == 0, created.stderr
    again = up(first_run, "--no-tui")
    assert again.returncode == 0, again.stderr
    assert f"reusing the bastiond already running at {url}" in again.stdout
    # What `up` writes beside the daemon's data is as private as the rest, so the daemon finds nothing to warn of.
    data = Path(first_run["BASTION_DATA_DIR"])
    for name in ("bastiond.log", "bastiond.pid"):
        assert (data / name).stat().st_mode & 0o777 == 0o600, name
    assert "open to other users" not in (data / "bastiond.log").read_text()


def test_up_guides_the_first_admin_and_opens_the_console_logged_in(
    first_run: dict[str, str], terminal: Terminal, tmp_path: Path  # noqa: F811
) -> None:
    env = {**first_run, "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_STATE_HOME": str(tmp_path / "state"),
           "TERM": "xterm-256color"}
    subprocess.run(["tmux", "-L", terminal.socket, "-f", "/dev/null", "new-session", "-d", "-s", "console",
                    "-x", "100", "-y", "30", f"cd {ROOT} && {sys.executable} -m tui up"], env=env, check=True,
                   timeout=10)
    try:
        terminal.answer_first_admin("first@example.com", ADMIN_PASSWORD)
        # The console opens on the dashboard, already logged in as the new admin.
        screen = terminal.wait_for("dashboard")
        assert "first@example.com (admin)" in screen
        assert ADMIN_PASSWORD not in screen
    finally:
        terminal.tmux("kill-server")
