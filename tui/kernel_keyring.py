"""The Linux kernel's keyring as a `keyring` backend, for servers with no desktop and so no Secret Service.

The entries go to the user's persistent keyring (keyrings(7), persistent-keyring(7)): kernel memory, never a
file, readable only by processes of this user that possess it, and kept after logout until no process of the
user has asked for it for `/proc/sys/kernel/keys/persistent_keyring_expiry` seconds (three days by default),
so tokens stored over one SSH login are there at the next. keyctl2 makes the system calls (ctypes, no
compiler and no Debian package needed, so `pip install` is all it takes).

Possession: the kernel lets only a possessor read a `user` key. Linking the persistent keyring into this
process's own keyring makes this process one, whatever session keyring SSH, tmux or sudo left it with.
"""

from __future__ import annotations

import errno
import sys

from keyring.backend import KeyringBackend
from keyring.compat import properties
from keyring.errors import KeyringError, PasswordDeleteError

KEY_TYPE = "user"
# An entry that is not there, has expired or was revoked reads as no entry. (Linux's errno names: this module is
# imported on Linux only.)
_ABSENT = frozenset({errno.ENOKEY, errno.EKEYEXPIRED, errno.EKEYREVOKED})


def _persistent_keyring() -> int:
    """The serial of this user's persistent keyring, linked into the process keyring (so possessed)."""
    import keyctl2

    return keyctl2.get_persistent(-1, keyctl2.KeySpec.PROCESS_KEYRING)


class KernelKeyring(KeyringBackend):
    """The user's persistent kernel keyring (Linux)."""

    @properties.classproperty
    def priority(cls) -> float:
        # Below the Secret Service (5), KWallet, macOS and Windows; above keyrings.alt's plain files.
        if not sys.platform.startswith("linux"):
            raise RuntimeError("the kernel keyring is Linux's")
        try:
            _persistent_keyring()
        except (ImportError, OSError) as exc:  # keyctl2 missing; a kernel without keys, or a seccomp filter
            raise RuntimeError(f"the kernel keyring cannot be used: {exc}") from exc
        return 1

    @staticmethod
    def description(service: str, username: str) -> str:
        return f"{service}:{username}"

    def _find(self, service: str, username: str) -> int | None:
        import keyctl2

        try:
            return keyctl2.search(_persistent_keyring(), KEY_TYPE, self.description(service, username))
        except keyctl2.KeyctlError as exc:
            if exc.errno in _ABSENT:
                return None
            raise KeyringError(f"kernel keyring: {exc.strerror}") from exc

    def get_password(self, service: str, username: str) -> str | None:
        import keyctl2

        serial = self._find(service, username)
        if serial is None:
            return None
        try:
            return keyctl2.Key(serial).read().decode()
        except keyctl2.KeyctlError as exc:
            if exc.errno in _ABSENT:  # expired or removed between the search and the read
                return None
            raise KeyringError(f"kernel keyring: {exc.strerror}") from exc

    def set_password(self, service: str, username: str, password: str) -> None:
        import keyctl2

        try:
            # add_key replaces the payload of an entry of the same type and description in that keyring.
            keyctl2.add_key(KEY_TYPE, self.description(service, username), password.encode(), _persistent_keyring())
        except keyctl2.KeyctlError as exc:
            raise KeyringError(f"kernel keyring: {exc.strerror}") from exc

    def delete_password(self, service: str, username: str) -> None:
        import keyctl2

        serial = self._find(service, username)
        if serial is None:
            raise PasswordDeleteError("no such entry")
        try:
            keyctl2.Key(serial).invalidate()  # gone from every keyring at once, not only unlinked from this one
        except keyctl2.KeyctlError as exc:
            if exc.errno not in _ABSENT:
                raise KeyringError(f"kernel keyring: {exc.strerror}") from exc
