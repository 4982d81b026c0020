"""`bastion` in a real terminal (tmux): log in on the connect screen, then watch a user created through
the REST API by someone else appear on the Users screen without a key press."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import daemon_process
from tests.daemon_process import ADMIN_EMAIL, ADMIN_PASSWORD, ROOT, Daemon
from tests.tui.terminal import Terminal, terminal  # noqa: F401 (the fixture)

@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    with daemon_process.with_admin(tmp_path / "bastiond") as running:
        yield running


def test_a_user_created_through_the_api_appears_on_screen(terminal: Terminal, daemon: Daemon, tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_STATE_HOME": str(tmp_path / "state"),
           "TERM": "xterm-256color"}
    command = f"cd {ROOT} && {sys.executable} -m tui --server {daemon.url}"
    subprocess.run(["tmux", "-L", terminal.socket, "-f", "/dev/null", "new-session", "-d", "-s", "console",
                    "-x", "100", "-y", "30", command], env=env, check=True, timeout=10)
    try:
        terminal.wait_for("Password")
        terminal.type_into_field(ADMIN_EMAIL)
        terminal.type("Enter")  # on to the password
        terminal.type("-l", ADMIN_PASSWORD)
        terminal.wait_for("•" * len(ADMIN_PASSWORD))
        terminal.type("Enter")
        terminal.wait_for("dashboard")
        terminal.wait_for("● live")
        terminal.type("u")
        terminal.wait_for("● live  users")
        email = f"seen-{secrets.token_hex(3)}@example.com"
        daemon.call("POST", "/api/v1/users", {"email": email, "password": ADMIN_PASSWORD, "role": "user"},
                    daemon.admin_token())
        screen = terminal.wait_for(email)
        assert "users" in screen
        assert ADMIN_PASSWORD not in screen
    finally:
        terminal.tmux("kill-server")
