"""The data directory is private however it came to be: a real bastiond started under a permissive
umask makes it 0700 and every file in it 0600 (the database with its -wal and -shm, the secrets), and a
directory left open by an older version, or by hand, is tightened at the next start.

The finding of issue 21: the directory was 0755 and bastion.sqlite3, -wal and -shm 0644 (password
hashes, emails, the audit trail), readable by every user of the machine.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.daemon_process import start


@contextmanager
def umask(mask: int) -> Iterator[None]:
    """The umask a daemon started meanwhile inherits (an operator's shell has 0022)."""
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def modes(data_dir: Path) -> dict[str, int]:
    """Every path under the data dir (itself included) and its permission bits."""
    found = {".": stat.S_IMODE(data_dir.stat().st_mode)}
    for path in data_dir.rglob("*"):
        found[str(path.relative_to(data_dir))] = stat.S_IMODE(path.lstat().st_mode)
    return found


def open_to_others(data_dir: Path) -> dict[str, str]:
    return {name: oct(mode) for name, mode in modes(data_dir).items() if mode & 0o077}


def test_a_fresh_data_dir_is_private_under_a_permissive_umask(tmp_path: Path) -> None:
    data_dir = tmp_path / "state" / "data"
    with umask(0o022):
        daemon = start(data_dir)
    try:
        daemon.create_admin()  # writes: the database and its WAL are in use
        daemon.admin_token()
        found = modes(data_dir)
        assert {"bastion.sqlite3", "bastion.sqlite3-wal", "bastion.sqlite3-shm"} <= found.keys(), found
        assert any(name.startswith("secrets/") for name in found), found
        assert open_to_others(data_dir) == {}
        assert found["."] == 0o700
    finally:
        daemon.stop()


def test_a_data_dir_left_open_is_tightened_at_start(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with umask(0o022):
        start(data_dir).stop()
    for path in [data_dir, *data_dir.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    assert open_to_others(data_dir)
    with umask(0o022):
        daemon = start(data_dir)
    try:
        assert open_to_others(data_dir) == {}
        assert "made private" in daemon.log.read_text()
    finally:
        daemon.stop()
