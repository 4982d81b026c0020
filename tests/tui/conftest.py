"""Fixtures of the console's tests: one real daemon per test session, a real keyring, private config dirs."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REQUIRE
from tests import daemon_process
from tests.daemon_process import Daemon
from tests.tui.proxy import Proxy


@pytest.fixture(scope="session")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    with daemon_process.with_admin(tmp_path_factory.mktemp("bastiond")) as running:
        yield running


@pytest.fixture
def proxy(daemon: Daemon) -> Iterator[Proxy]:
    """A relay to the daemon that the test can cut and restore (tests/tui/proxy.py)."""
    relay = Proxy(daemon.url)
    try:
        yield relay
    finally:
        relay.close()


@pytest.fixture
def keyring_ready() -> None:
    """The real Secret Service (.ci/run runs pytest under dbus-run-session with gnome-keyring unlocked)."""
    from tui import credentials

    try:
        credentials.check()
    except credentials.NoKeyring as exc:
        if REQUIRE:
            pytest.fail(f"a Secret Service is required (BASTION_TEST_REQUIRE_SERVICES=1): {exc}")
        pytest.skip("no Secret Service here: run under dbus-run-session with gnome-keyring-daemon --unlock")


@pytest.fixture(autouse=True)
def private_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Config and state files of this test's own, never the developer's."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return tmp_path


@pytest.fixture
def unique() -> str:
    return secrets.token_hex(4)
