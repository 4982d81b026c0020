"""`bastion login` with a second factor, `bastion mfa` and `bastion users mfa-reset`: real processes, a real
daemon (with MFA compulsory for admins) and the real keyring."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pyotp
import pytest

from tests import daemon_process
from tests.daemon_process import ADMIN_EMAIL, ADMIN_PASSWORD, ROOT, Daemon
from tests.tui.test_cli import bastion
from tui import credentials

pytestmark = pytest.mark.usefixtures("keyring_ready")


@contextmanager
def daemon_and_cli_home(tmp_path_factory: pytest.TempPathFactory, name: str, **settings: str) -> Iterator[Daemon]:
    """A daemon of the module's own, and a CLI state of its own (the tests' logins stay out of the others')."""
    with pytest.MonkeyPatch.context() as patch:
        home = tmp_path_factory.mktemp(f"{name}-home")
        patch.setenv("XDG_CONFIG_HOME", str(home / "config"))
        patch.setenv("XDG_STATE_HOME", str(home / "state"))
        with daemon_process.with_admin(tmp_path_factory.mktemp(name), **settings) as running:
            yield running


@pytest.fixture(scope="module")
def strict_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    with daemon_and_cli_home(tmp_path_factory, "bastiond-mfa", BASTION_MFA_REQUIRED_ROLES="admin") as running:
        yield running


def code(secret: str, steps_ahead: int = 0) -> str:
    totp = pyotp.TOTP(secret)
    return totp.generate_otp(totp.timecode(time.time()) + steps_ahead)


def enrol_interactively(*args: str, password: str = ADMIN_PASSWORD) -> tuple[str, subprocess.CompletedProcess]:
    """Run a command that shows a TOTP secret and then asks for its code, answering as a person would:
    read the key it prints, then type the code. Returns the secret and the finished process."""
    process = subprocess.Popen([sys.executable, "-m", "tui", *args, "--password-stdin", "--code-stdin"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               cwd=ROOT, env=dict(os.environ))
    assert process.stdin and process.stderr
    process.stdin.write(password + "\n")
    process.stdin.flush()
    shown = ""
    while (match := re.search(r"enter the key ([A-Z2-7]+)", shown)) is None:
        line = process.stderr.readline()
        assert line, f"the command ended without showing a key: {shown}"
        shown += line
    secret = match[1]
    assert "█" in shown  # the QR code, drawn before the key
    out, err = process.communicate(code(secret, -1) + "\n", timeout=60)
    return secret, subprocess.CompletedProcess(process.args, process.returncode, out, shown + err)


def test_an_admin_is_led_through_enrolment_then_asked_for_a_code_at_each_login(strict_daemon: Daemon) -> None:
    secret, first = enrol_interactively("login", "--server", strict_daemon.url, "--email", ADMIN_EMAIL, "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["mfa_enabled"] is True
    codes = re.findall(r"[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}", first.stderr)
    assert len(codes) == 10
    assert credentials.load(strict_daemon.url, ADMIN_EMAIL) is not None

    without = bastion("login", "--server", strict_daemon.url, "--email", ADMIN_EMAIL, "--password-stdin",
                      stdin=ADMIN_PASSWORD + "\n")
    assert without.returncode == 2 and "--code-stdin" in without.stderr
    wrong = bastion("login", "--server", strict_daemon.url, "--email", ADMIN_EMAIL, "--password-stdin",
                    "--code-stdin", stdin=f"{ADMIN_PASSWORD}\n000000\n")
    assert wrong.returncode == 1 and "code" in wrong.stderr
    again = bastion("login", "--server", strict_daemon.url, "--email", ADMIN_EMAIL, "--password-stdin",
                    "--code-stdin", stdin=f"{ADMIN_PASSWORD}\n{codes[0]}\n")
    assert again.returncode == 0, again.stderr

    # Another user sets TOTP up from the command line; the admin removes it again.
    email = "operator@example.com"
    made = bastion("users", "create", "--email", email, "--password-stdin", "--json", stdin=ADMIN_PASSWORD)
    assert made.returncode == 0, made.stderr
    in_as_operator = bastion("login", "--server", strict_daemon.url, "--email", email, "--password-stdin",
                             stdin=ADMIN_PASSWORD + "\n")
    assert in_as_operator.returncode == 0, in_as_operator.stderr
    _, enrolled = enrol_interactively("mfa", "enrol", "--json")
    assert enrolled.returncode == 0, enrolled.stderr
    assert len(json.loads(enrolled.stdout)["recovery_codes"]) == 10

    back = bastion("login", "--server", strict_daemon.url, "--email", ADMIN_EMAIL, "--password-stdin",
                   "--code-stdin", stdin=f"{ADMIN_PASSWORD}\n{codes[1]}\n")
    assert back.returncode == 0, back.stderr
    reset = bastion("users", "mfa-reset", email, "--json")
    assert reset.returncode == 0, reset.stderr
    plain = bastion("login", "--server", strict_daemon.url, "--email", email, "--password-stdin", "--json",
                    stdin=ADMIN_PASSWORD + "\n")
    assert plain.returncode == 0 and json.loads(plain.stdout)["mfa_enabled"] is False
