"""Secrets as files in the data directory: the directory mode 0700, each file 0600, written atomically."""

from __future__ import annotations

import os
import re
from pathlib import Path

_NAME = re.compile(r"[a-z0-9_]{1,64}")


class FileSecrets:
    name = "file"

    def __init__(self, directory: Path) -> None:
        self._dir = Path(directory)

    def _path(self, name: str) -> Path:
        if not _NAME.fullmatch(name):
            raise ValueError(f"not a secret name: {name!r}")
        return self._dir / name

    async def get(self, name: str) -> str | None:
        try:
            return self._path(name).read_text()
        except FileNotFoundError:
            return None

    async def put(self, name: str, value: str) -> None:
        self._dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self._dir, 0o700)
        target = self._path(name)
        temporary = target.with_suffix(".tmp")
        # Created 0600 from the first byte, then renamed over the old file: never a moment where the
        # secret is readable by others or half-written.
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(value)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
