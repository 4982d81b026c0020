"""The data directory is private: the directory and every directory in it 0700, every file 0600.

It holds password hashes, emails, the audit trail and (without Vault) the signing keys. The files in it
were made by whoever first needed them, under the process's umask: the secrets store made the directory
0755 before the database's 0700 could apply, and SQLite made `bastion.sqlite3`, `-wal` and `-shm` 0644
(issue 21). Two parts close that class of bug:
- `PRIVATE_UMASK` is the umask of every bastiond command (daemon/cli.py), so whatever it creates later
  (a new database, an index, an export) is private from its first byte;
- `make_private` runs at every start (daemon/app.py): it creates the directory 0700 if it is missing and
  tightens anything in it that group or others may use, naming each path it fixed (or could not: one
  owned by someone else), so a directory made by an older version, or by hand, is not trusted as it is.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import NamedTuple

PRIVATE_UMASK = 0o077
DIR_MODE = 0o700
FILE_MODE = 0o600
_OPEN_TO_OTHERS = stat.S_IRWXG | stat.S_IRWXO


class Privacy(NamedTuple):
    fixed: list[Path]  # open to others, now private
    not_ours: list[Path]  # open to others, and not ours to change (e.g. a volume's root owned by root)


def make_private(data_dir: Path) -> Privacy:
    """Create the data directory (0700), or tighten it and everything in it; what was open to others."""
    found = Privacy([], [])
    if not data_dir.exists():
        missing = [data_dir, *[parent for parent in data_dir.parents if not parent.exists()]]
        for directory in reversed(missing):
            directory.mkdir(mode=DIR_MODE)
            os.chmod(directory, DIR_MODE)  # mkdir's mode passes through the umask
        return found
    for root, dirs, files in os.walk(data_dir):
        _tighten(Path(root), DIR_MODE, found)
        for name in files:
            _tighten(Path(root) / name, FILE_MODE, found)
        dirs[:] = [name for name in dirs if not (Path(root) / name).is_symlink()]
    return found


def _tighten(path: Path, mode: int, found: Privacy) -> None:
    current = path.lstat()
    if stat.S_ISLNK(current.st_mode) or not current.st_mode & _OPEN_TO_OTHERS:
        return  # a link's own mode means nothing; its target is not ours to change
    try:
        os.chmod(path, mode)
    except PermissionError:
        # Kubernetes mounts an emptyDir owned by root, group-writable for the pod's fsGroup: refusing to
        # start there would help nobody. Said at start, and what bastiond creates inside is private.
        found.not_ours.append(path)
    else:
        found.fixed.append(path)
