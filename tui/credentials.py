"""Tokens in the OS keyring: service `bastion`, one entry per server and account.

Where they go, the first of these that works:
- the keyring `keyring` finds: macOS Keychain, Windows Credential Locker, KWallet, or a Secret Service that is
  running with its default collection unlocked. A Secret Service is never started or unlocked from here: that
  opens a prompt (gcr-prompter) that nobody can answer over SSH, and its warnings land on the screen;
- the Linux kernel's persistent keyring (tui/kernel_keyring.py), which needs no desktop: operators on servers.
Never a plain file (keyrings.alt's backends are refused). With none usable, NoKeyring says why in one line.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from keyring.backend import KeyringBackend

    from shared.client import Tokens

SERVICE = "bastion"


class NoKeyring(Exception):
    """No usable OS keyring; the message says why, in one line."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"no keyring to keep the login in: {reason}. Scripts can use an API key instead "
                         "(BASTION_API_KEY)")


def _keyring() -> ModuleType:
    """keyring, imported on first use: it takes a tenth of a second the TUI's first screen need not wait for."""
    import keyring
    import keyring.errors

    if sys.platform.startswith("linux"):
        import tui.kernel_keyring  # noqa: F401  (defining the class is what offers it to keyring's choice)
    return keyring


def _backend() -> KeyringBackend:
    """The first secure, usable backend of keyring's choice (a chain holds every viable one, best first)."""
    chosen = _keyring().get_keyring()
    offered = getattr(chosen, "backends", None) or [chosen]
    why_not = []
    for backend in offered:
        if not _secure(backend):
            continue
        problem = _secret_service_problem() if _is_secret_service(backend) else None
        if problem is None:
            return backend
        why_not.append(problem)
    if sys.platform.startswith("linux"):
        from tui.kernel_keyring import KernelKeyring

        if not any(isinstance(b, KernelKeyring) for b in offered):
            why_not.append(_kernel_keyring_problem() or f"keyring is configured to use {_name(chosen)} "
                           "(PYTHON_KEYRING_BACKEND or keyringrc.cfg)")
    raise NoKeyring("; ".join(why_not) or f"{_name(chosen)} stores nothing")


def _secure(backend: KeyringBackend) -> bool:
    module = type(backend).__module__
    return not (module.startswith("keyring.backends.fail") or module.startswith("keyring.backends.null")
                or module.startswith("keyrings.alt") or module.startswith("keyring.backends.chainer"))


def _is_secret_service(backend: KeyringBackend) -> bool:
    return type(backend).__module__ == "keyring.backends.SecretService"


def _secret_service_problem() -> str | None:
    """None when a Secret Service is running with its default collection unlocked; else what is wrong. Asks
    without activating the service or creating a collection (either can open a prompt)."""
    import secretstorage
    from jeepney.bus_messages import message_bus
    from jeepney.io.blocking import Proxy
    from secretstorage.exceptions import ItemNotFoundException, SecretStorageException
    from secretstorage.util import BUS_NAME

    try:
        with secretstorage.dbus_init() as bus:
            if Proxy(message_bus, bus).NameHasOwner(BUS_NAME)[0] != 1:
                return "no Secret Service is running on this D-Bus session"
            if secretstorage.Collection(bus).is_locked():  # the default collection
                return "the Secret Service's default keyring is locked (unlock it, e.g. by logging in to the desktop)"
    except ItemNotFoundException:
        return "the Secret Service has no default keyring"
    except SecretStorageException as exc:
        return f"the Secret Service did not answer ({exc})"
    return None


def _kernel_keyring_problem() -> str | None:
    from tui.kernel_keyring import KernelKeyring

    try:
        KernelKeyring.priority  # noqa: B018  (raises with the reason)
    except RuntimeError as exc:
        return str(exc)
    return None


def _name(backend: KeyringBackend) -> str:
    return f"{type(backend).__module__}.{type(backend).__name__}"


def store_name() -> str:
    """Which keyring holds the tokens, for people: "SecretService Keyring", "kernel keyring KernelKeyring"..."""
    return _backend().name


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
