"""Tokens in the OS keyring: service `bastion`, one entry per server and account.

Only a real keyring backend will do (Secret Service, macOS Keychain, Windows Credential Locker).
When none is available this says so, with how to get one, and stores nothing: a token in a plain file
is a password in a plain file, so there is deliberately no fallback.
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from keyring.backend import KeyringBackend

    from shared.client import Tokens

SERVICE = "bastion"

HOW_TO_GET_ONE = (
    "Bastion keeps its tokens only in the OS keyring, and no keyring is available here. "
    "On Linux install a Secret Service (Debian/Ubuntu: `apt install gnome-keyring`) and run bastion inside "
    "a desktop session, or in a terminal with `dbus-run-session -- sh -c 'gnome-keyring-daemon --unlock; "
    "bastion'`; macOS and Windows have one built in. Scripts can use an API key instead "
    "(BASTION_API_KEY)."
)


class NoKeyring(Exception):
    """No usable OS keyring; the message says how to get one."""

    def __init__(self, reason: str = "") -> None:
        super().__init__(HOW_TO_GET_ONE + (f" ({reason})" if reason else ""))


def _keyring() -> ModuleType:
    """keyring, imported on first use: it takes a tenth of a second the TUI's first screen need not wait for."""
    import keyring
    import keyring.errors

    return keyring


def _backend() -> KeyringBackend:
    backend = _keyring().get_keyring()
    # The fail and null backends store nothing; keyrings.alt's file backends store in plain files.
    module = type(backend).__module__
    chain = getattr(backend, "backends", None)
    if chain is not None:
        usable = [b for b in chain if _secure(b)]
        if not usable:
            raise NoKeyring()
        return usable[0]
    if not _secure(backend):
        raise NoKeyring(f"backend {module}.{type(backend).__name__} is not a secure store")
    return backend


def _secure(backend: KeyringBackend) -> bool:
    module = type(backend).__module__
    return not (module.startswith("keyring.backends.fail") or module.startswith("keyring.backends.null")
                or module.startswith("keyrings.alt") or module.startswith("keyring.backends.chainer"))


def entry(server: str, account: str) -> str:
    """The keyring user name of one server and account."""
    return f"{account}@{server}"


def check() -> None:
    """Raise NoKeyring when tokens cannot be stored; the TUI calls it before asking for a password."""
    backend = _backend()
    try:
        backend.get_password(SERVICE, "bastion-keyring-probe")
    except _keyring().errors.KeyringError as exc:
        raise NoKeyring(type(exc).__name__) from None


def save(server: str, account: str, tokens: Tokens | None) -> None:
    """Store the pair (None deletes the entry)."""
    if tokens is None:
        forget(server, account)
        return
    try:
        _backend().set_password(SERVICE, entry(server, account), tokens.to_json())
    except _keyring().errors.KeyringError as exc:
        raise NoKeyring(type(exc).__name__) from None


def load(server: str, account: str) -> Tokens | None:
    try:
        stored = _backend().get_password(SERVICE, entry(server, account))
    except _keyring().errors.KeyringError as exc:
        raise NoKeyring(type(exc).__name__) from None
    if not stored:
        return None
    from shared.client import Tokens  # here: the TUI's first screen does not wait for aiohttp

    try:
        return Tokens.from_json(stored)
    except (ValueError, KeyError, TypeError):
        return None  # an entry this version cannot read is as good as none: log in again


def forget(server: str, account: str) -> None:
    try:
        _backend().delete_password(SERVICE, entry(server, account))
    except _keyring().errors.PasswordDeleteError:
        pass  # already gone
    except _keyring().errors.KeyringError as exc:
        raise NoKeyring(type(exc).__name__) from None
