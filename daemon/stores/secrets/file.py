"""Secrets as files in the data directory: one JSON file per name, mode 0600, in a directory of mode 0700.

Each write goes to a private temporary file (0600 from its first byte) that is then renamed over the
old file (put) or linked into place, which fails if the name exists (create): a reader never sees
half a secret, and two processes creating the same name at once end up agreeing on one.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import secrets
from pathlib import Path

from daemon.stores.secrets import Blob, DatabaseCredentials, SecretsError, check_name, decode_blob

DIR_MODE = 0o700
FILE_MODE = 0o600


class FileSecrets:
    name = "file"

    def __init__(self, directory: Path) -> None:
        self._dir = Path(directory)

    @classmethod
    async def open(cls, directory: Path) -> FileSecrets:
        store = cls(directory)
        await asyncio.to_thread(store._prepare)
        return store

    def _prepare(self) -> None:
        try:
            self._dir.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            # A directory made earlier, or by hand, with looser permissions is tightened, not trusted.
            os.chmod(self._dir, DIR_MODE)
        except OSError as exc:
            raise SecretsError(f"cannot keep secrets in {self._dir}: {exc.strerror or exc}") from None

    def _path(self, name: str) -> Path:
        return self._dir / f"{check_name(name)}.json"

    async def get(self, name: str) -> Blob | None:
        return await asyncio.to_thread(self._read, self._path(name))

    @staticmethod
    def _read(path: Path) -> Blob | None:
        try:
            text = path.read_text()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SecretsError(f"cannot read {path}: {exc.strerror or exc}") from None
        return decode_blob(text, str(path))

    async def put(self, name: str, value: Blob) -> None:
        await asyncio.to_thread(self._write, self._path(name), value, False)

    async def create(self, name: str, value: Blob) -> bool:
        return await asyncio.to_thread(self._write, self._path(name), value, True)

    async def replace(self, name: str, expected: Blob | None, value: Blob) -> bool:
        return await asyncio.to_thread(self._replace, self._path(name), expected, value)

    def _replace(self, path: Path, expected: Blob | None, value: Blob) -> bool:
        """Under an exclusive lock on the name's lock file, which every replace of it takes: the processes
        sharing the data directory (the daemon, `bastiond rotate-signing-key`) compare and write one at a time."""
        lock = path.with_name(f".{path.name}.lock")
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, FILE_MODE)
        except OSError as exc:
            raise SecretsError(f"cannot lock {path}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if self._read(path) != expected:
                return False
            return self._write(path, value, exclusive=expected is None)
        finally:
            os.close(fd)  # and the lock with it

    def _write(self, path: Path, value: Blob, exclusive: bool) -> bool:
        text = json.dumps(value)
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
            with os.fdopen(fd, "w") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            if not exclusive:
                os.replace(temporary, path)
                return True
            try:
                os.link(temporary, path)
            except FileExistsError:
                return False
            return True
        except OSError as exc:
            raise SecretsError(f"cannot write {path}: {exc.strerror or exc}") from None
        finally:
            temporary.unlink(missing_ok=True)

    async def names(self) -> list[str]:
        return await asyncio.to_thread(lambda: sorted(p.stem for p in self._dir.glob("*.json")))

    async def database_credentials(self) -> DatabaseCredentials | None:
        return None  # the embedded setup takes them from BASTION_DATABASE_URL itself

    async def ping(self) -> None:
        if not await asyncio.to_thread(os.access, self._dir, os.R_OK | os.W_OK | os.X_OK):
            raise SecretsError(f"{self._dir} is not readable and writable")

    async def close(self) -> None:
        pass
