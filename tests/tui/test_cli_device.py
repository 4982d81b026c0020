"""`bastion login --device`: a real CLI process polls a real daemon while an admin approves its code."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.daemon_process import ADMIN_EMAIL, ROOT, Daemon, Refused
from tests.tui.test_cli_mfa import daemon_and_cli_home
from tui import config, credentials

pytestmark = pytest.mark.usefixtures("keyring_ready")


@pytest.fixture(scope="module")
def own_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    with daemon_and_cli_home(tmp_path_factory, "bastiond-device") as running:
        yield running


def device_login(daemon: Daemon, approve: bool) -> subprocess.CompletedProcess:
    """Run `bastion login --device`, read the code it shows, and approve or deny it as the admin."""
    process = subprocess.Popen([sys.executable, "-m", "tui", "login", "--device", "--server", daemon.url, "--json"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                               env=dict(os.environ))
    assert process.stderr
    shown = ""
    while (match := re.search(r"enter the code ([A-Z]{4}-[A-Z]{4})", shown)) is None:
        line = process.stderr.readline()
        assert line, f"the command ended without a code: {shown}"
        shown += line
    assert "█" in shown and "/ui/device" in shown
    daemon.call("POST", "/api/v1/auth/device/approve", {"user_code": match[1], "approve": approve},
                token=daemon.admin_token())
    out, err = process.communicate(timeout=60)
    return subprocess.CompletedProcess(process.args, process.returncode, out, shown + err)


def test_an_approved_device_login_keeps_the_approvers_tokens_in_the_keyring(own_daemon: Daemon) -> None:
    done = device_login(own_daemon, approve=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["email"] == ADMIN_EMAIL
    tokens = credentials.load(own_daemon.url, ADMIN_EMAIL)
    assert tokens is not None
    assert own_daemon.call("GET", "/api/v1/users/me", token=tokens.access_token)["email"] == ADMIN_EMAIL
    assert config.load_state().last == config.Account(own_daemon.url, ADMIN_EMAIL)


def test_a_denied_device_login_fails_with_one_line(own_daemon: Daemon) -> None:
    done = device_login(own_daemon, approve=False)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("bastion: The request was denied")
    with pytest.raises(Refused):
        own_daemon.call("POST", "/api/v1/auth/device/token", {"device_code": "made-up"})
