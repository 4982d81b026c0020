"""Fixtures of the console's tests: one real daemon per test session, a real keyring, private config dirs."""

from __future__ import annotations

import secrets
import sys
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
    """A real keyring: the Secret Service under .ci/run (dbus-run-session with gnome-keyring unlocked), the
    kernel keyring elsewhere on Linux."""
    from tui import credentials

    try:
        credentials.check()
    except credentials.NoKeyring as exc:
        _missing(f"a keyring is required: {exc}")


@pytest.fixture
def secret_service() -> None:
    """The real Secret Service that .ci/run starts (gnome-keyring, unlocked, on a private D-Bus)."""
    from tui import credentials

    try:
        name = credentials.store_name()
    except credentials.NoKeyring as exc:
        name = str(exc)
    if name != "SecretService Keyring":
        _missing(f"an unlocked Secret Service is required, found: {name} "
                 "(run under dbus-run-session with gnome-keyring-daemon --unlock, as .ci/run does)")


@pytest.fixture
def kernel_keyring() -> None:
    """The Linux kernel's persistent keyring (a container's seccomp filter may forbid it)."""
    from tui import credentials

    problem = credentials._kernel_keyring_problem() if sys.platform.startswith("linux") else "not Linux"
    if problem:
        _missing(f"the kernel keyring is required: {problem}")


def _missing(what: str) -> None:
    if REQUIRE:
        pytest.fail(f"{what} (BASTION_TEST_REQUIRE_SERVICES=1)")
    pytest.skip(what)


@pytest.fixture(autouse=True)
def private_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Config and state files of this test's own, never the developer's."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return tmp_path


@pytest.fixture
def unique() -> str:
    return secrets.token_hex(4)
