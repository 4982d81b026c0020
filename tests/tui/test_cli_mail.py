"""`bastion password forgot|reset` and `bastion email verify`: real processes against a real daemon that mails
through a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests import daemon_process
from tests.conftest import free_port
from tests.daemon_process import Daemon
from tests.smtp_server import Inbox, smtp_server
from tests.tui.test_cli import bastion
from tests.web.test_mail_pages import _wait_for_mail

ALICE, PASSWORD, NEW_PASSWORD = "alice@example.com", "alice's first passphrase", "alice's second passphrase"


@pytest.fixture
def mailing(tmp_path) -> Iterator[tuple[Daemon, Inbox]]:
    with smtp_server() as inbox:
        port = free_port()
        daemon = daemon_process.start(tmp_path / "data", port, BASTION_SMTP_URL=inbox.url,
                                      BASTION_PUBLIC_URL=f"http://127.0.0.1:{port}")
        try:
            daemon.create_admin()
            daemon.call("POST", "/api/v1/users", {"email": ALICE, "password": PASSWORD}, token=daemon.admin_token())
            yield daemon, inbox
        finally:
            daemon.stop()


def test_a_forgotten_password_is_reset_from_the_command_line(mailing):
    daemon, inbox = mailing
    asked = bastion("password", "forgot", ALICE, "--server", daemon.url, "--json")
    assert asked.returncode == 0 and json.loads(asked.stdout) == {"requested": True}, asked.stderr
    unknown = bastion("password", "forgot", "nobody@example.com", "--server", daemon.url, "--json")
    assert unknown.returncode == 0 and unknown.stdout == asked.stdout
    token = inbox.token(_wait_for_mail(inbox, ALICE))

    reset = bastion("password", "reset", "--stdin", "--server", daemon.url, "--json", stdin=f"{token}\n{NEW_PASSWORD}\n")
    assert reset.returncode == 0 and json.loads(reset.stdout) == {"password_reset": True}, reset.stderr
    assert daemon.call("POST", "/api/v1/auth/login", {"email": ALICE, "password": NEW_PASSWORD})["user"]["email"] == ALICE
    again = bastion("password", "reset", "--stdin", "--server", daemon.url, stdin=f"{token}\nyet another passphrase\n")
    assert again.returncode == 1 and "reset token is not valid" in again.stderr
    assert [m["To"] for m in inbox.messages] == [ALICE]


def test_an_email_address_is_verified_from_the_command_line(mailing):
    daemon, inbox = mailing
    session = daemon.call("POST", "/api/v1/auth/login", {"email": ALICE, "password": PASSWORD})
    daemon.call("POST", "/api/v1/auth/verify-email/request", token=session["access_token"])
    token = inbox.token(_wait_for_mail(inbox, ALICE))
    wrong = bastion("email", "verify", "--stdin", "--server", daemon.url, stdin="bev_wrong\n")
    assert wrong.returncode == 1 and "not valid" in wrong.stderr
    done = bastion("email", "verify", "--stdin", "--server", daemon.url, "--json", stdin=token + "\n")
    assert done.returncode == 0 and json.loads(done.stdout) == {"email_verified": True}, done.stderr
    assert daemon.call("GET", "/api/v1/users/me", token=session["access_token"])["email_verified"] is True
