"""Tokens in the real Secret Service (gnome-keyring on a private D-Bus), and a plain refusal without one."""

from __future__ import annotations

import subprocess

import keyring
import pytest
from keyring.backends import fail

from shared.client import Tokens
from tui import credentials

pytestmark = pytest.mark.usefixtures("keyring_ready")


def secret_tool(*args: str) -> str:
    return subprocess.run(["secret-tool", *args], capture_output=True, text=True, timeout=10).stdout


def test_tokens_round_trip_through_the_secret_service(unique: str) -> None:
    server, account = f"http://keyring-{unique}.test:8420", f"ops-{unique}@example.com"
    tokens = Tokens("access-" + unique, "refresh-" + unique, 2e9, 2e9 - 60)
    credentials.save(server, account, tokens)
    try:
        loaded = credentials.load(server, account)
        assert loaded is not None and loaded.to_json() == tokens.to_json()
        # Really in the keyring: the stock Secret Service tool finds the entry by its service and name.
        found = secret_tool("lookup", "service", "bastion", "username", credentials.entry(server, account))
        assert "refresh-" + unique in found
    finally:
        credentials.forget(server, account)
    assert credentials.load(server, account) is None
    assert secret_tool("lookup", "service", "bastion", "username", credentials.entry(server, account)) == ""


def test_each_server_and_account_has_its_own_entry(unique: str) -> None:
    pairs = [(f"http://a-{unique}.test", "x@example.com"), (f"http://b-{unique}.test", "x@example.com"),
             (f"http://a-{unique}.test", "y@example.com")]
    for i, (server, account) in enumerate(pairs):
        credentials.save(server, account, Tokens(f"a{i}", f"r{i}", 2e9, 2e9))
    try:
        assert [credentials.load(s, a).refresh_token for s, a in pairs] == ["r0", "r1", "r2"]  # type: ignore[union-attr]
    finally:
        for server, account in pairs:
            credentials.forget(server, account)


def test_forgetting_an_entry_that_is_not_there_is_quiet(unique: str) -> None:
    credentials.forget(f"http://none-{unique}.test", "nobody@example.com")


def test_without_a_keyring_backend_it_refuses_and_says_how_to_get_one(unique: str) -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        with pytest.raises(credentials.NoKeyring, match="gnome-keyring"):
            credentials.check()
        with pytest.raises(credentials.NoKeyring, match="no keyring is available"):
            credentials.save(f"http://{unique}.test", "x@example.com", Tokens("a", "r", 2e9, 2e9))
    finally:
        keyring.set_keyring(previous)
