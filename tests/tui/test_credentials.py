"""Where the tokens go: the real Secret Service (gnome-keyring on a private D-Bus) when one runs unlocked, the
Linux kernel's persistent keyring without one (a server over SSH), and a one-line refusal when neither will do."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import keyring
import pytest
from keyring.backends import fail

from shared.client import Tokens
from tests.conftest import installed
from tests.daemon_process import ROOT
from tui import credentials


def secret_tool(*args: str) -> str:
    return subprocess.run(["secret-tool", *args], capture_output=True, text=True, timeout=10).stdout


def kernel_keys() -> str:
    """The keys this user may see, as the kernel lists them (descriptions only, never a payload)."""
    with open("/proc/keys") as listing:
        return listing.read()


def without_d_bus() -> dict[str, str]:
    """The environment of an SSH login to a server: no D-Bus session, so no Secret Service."""
    return {k: v for k, v in os.environ.items() if k != "DBUS_SESSION_BUS_ADDRESS"}


def python(program: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", program], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=60)


@pytest.mark.usefixtures("secret_service")
def test_tokens_round_trip_through_the_secret_service(unique: str) -> None:
    server, account = f"http://keyring-{unique}.test:8420", f"ops-{unique}@example.com"
    tokens = Tokens("access-" + unique, "refresh-" + unique, 2e9, 2e9 - 60)
    assert credentials.store_name() == "SecretService Keyring"
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


@pytest.mark.usefixtures("keyring_ready")
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


@pytest.mark.usefixtures("keyring_ready")
def test_forgetting_an_entry_that_is_not_there_is_quiet(unique: str) -> None:
    credentials.forget(f"http://none-{unique}.test", "nobody@example.com")


@pytest.mark.usefixtures("kernel_keyring")
def test_without_a_d_bus_session_the_tokens_go_to_the_kernel_keyring_and_outlive_the_process(unique: str) -> None:
    server, account = f"http://kernel-{unique}.test", f"ops-{unique}@example.com"
    entry = f"bastion:{credentials.entry(server, account)}"
    saved = python(f"""
from shared.client import Tokens
from tui import credentials
credentials.save({server!r}, {account!r}, Tokens("access-{unique}", "refresh-{unique}", 2e9, 2e9))
print(credentials.store_name())
""", without_d_bus())
    try:
        assert saved.returncode == 0, saved.stderr
        assert saved.stdout.strip() == "kernel keyring KernelKeyring"
        assert saved.stderr == ""
        assert entry in kernel_keys()
        # Another process (the next `bastion` of the same user) reads it back.
        loaded = python(f"from tui import credentials; print(credentials.load({server!r}, {account!r}).refresh_token)",
                        without_d_bus())
        assert loaded.stdout.strip() == f"refresh-{unique}", loaded.stderr
    finally:
        python(f"from tui import credentials; credentials.forget({server!r}, {account!r})", without_d_bus())
    gone = python(f"from tui import credentials; print(credentials.load({server!r}, {account!r}))", without_d_bus())
    assert gone.stdout.strip() == "None", gone.stderr
    # An invalidated key is unreadable at once (above) but leaves /proc/keys only when the kernel's garbage
    # collector, a work item of its own, has run: a CI run saw it still listed right after.
    deadline = time.monotonic() + 10
    while entry in kernel_keys() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert entry not in kernel_keys()


@pytest.mark.usefixtures("kernel_keyring")
@pytest.mark.parametrize("lock", [True, False], ids=["locked", "unlocked (the control)"])
def test_a_locked_secret_service_is_left_alone_and_the_kernel_keyring_used_without_a_word(lock: bool, tmp_path) -> None:
    """gnome-keyring running with its login keyring locked: asking it to unlock would start gcr-prompter, which
    cannot be answered over SSH and writes its warnings on the screen. Nothing of that: the kernel keyring."""
    installed("dbus-run-session", "dbus (Debian package)")
    installed("gnome-keyring-daemon", "gnome-keyring (Debian package)")
    program = f"""
import secretstorage
with secretstorage.dbus_init() as bus:
    if {lock}:
        secretstorage.get_default_collection(bus).lock()
from tui import credentials
print(credentials.store_name())
"""
    script = ('echo -n bastion-ci | gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&1; '
              f'exec {sys.executable} -c "$0"')
    done = subprocess.run(["dbus-run-session", "--", "env", f"XDG_DATA_HOME={tmp_path}", "sh", "-c", script,
                           program], cwd=ROOT, capture_output=True, text=True, timeout=60, env=without_d_bus())
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ("kernel keyring KernelKeyring" if lock else "SecretService Keyring")
    assert "gcr" not in done.stderr and "prompt" not in done.stderr.lower()


def test_without_a_usable_keyring_it_refuses_in_one_line(unique: str) -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        with pytest.raises(credentials.NoKeyring) as refused:
            credentials.check()
        assert "\n" not in str(refused.value) and "BASTION_API_KEY" in str(refused.value)
        with pytest.raises(credentials.NoKeyring, match="no keyring to keep the login in"):
            credentials.save(f"http://{unique}.test", "x@example.com", Tokens("a", "r", 2e9, 2e9))
    finally:
        keyring.set_keyring(previous)


@pytest.mark.parametrize("argv", [[], ["up"]], ids=["bastion", "bastion up"])
def test_the_console_with_no_keyring_exits_1_with_one_line_before_any_screen(argv: list[str], tmp_path) -> None:
    env = {**without_d_bus(), "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
           "BASTION_DATA_DIR": str(tmp_path / "data"), "TERM": "xterm-256color"}
    done = subprocess.run([sys.executable, "-m", "tui", *argv], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 1
    assert done.stdout == ""  # no screen was drawn: not one escape sequence
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("bastion: no keyring to keep the login in"), done.stderr
    assert not (tmp_path / "data").exists()  # `up` started no daemon
