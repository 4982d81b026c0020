"""`bastiond`'s file and network commands given what a person mistypes: one line on stderr, never a traceback,
and nothing left behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.daemon_process import ROOT

PASSPHRASE = "a passphrase long enough"


def _bastiond(*args: str, data_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "BASTION_DATA_DIR": str(data_dir), "BASTION_BACKUP_PASSPHRASE": PASSPHRASE,
           "BASTION_TOKEN": "bst_not_needed_before_a_connection", "BASTION_LOG_LEVEL": "warning"}
    env.pop("BASTION_DATABASE_URL", None)
    return subprocess.run([sys.executable, "-m", "daemon", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def _one_line(done: subprocess.CompletedProcess, code: int, text: str) -> None:
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == code, done.stderr
    assert done.stderr.startswith("bastiond: ") and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert text in done.stderr


@pytest.mark.parametrize("command", [("backup", "--to"), ("export", "users", "--to")])
def test_writing_into_a_directory_that_does_not_exist_is_one_line(tmp_path: Path, command: tuple[str, ...]) -> None:
    missing = tmp_path / "no-such-dir"
    done = _bastiond(*command, str(missing / "out"), data_dir=tmp_path / "data")
    _one_line(done, 2 if command[0] == "backup" else 1, str(missing))
    assert not missing.exists()


def test_a_daemon_that_does_not_answer_is_one_line_and_leaves_no_file(tmp_path: Path) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    users = tmp_path / "users.jsonl"
    users.write_text('{"id": "usr_1", "email": "a@example.com", "password_hash": "x"}\n')

    _one_line(_bastiond("import", "--server", nobody, str(users), data_dir=tmp_path / "data"), 1,
              f"cannot reach {nobody}")
    _one_line(_bastiond("import", "--server", "localhost-8420", str(users), data_dir=tmp_path / "data"), 1,
              "not a URL")
    export = tmp_path / "docs.jsonl"
    _one_line(_bastiond("export", "collection", "docs", "--server", nobody, "--to", str(export),
                        data_dir=tmp_path / "data"), 1, f"cannot reach {nobody}")
    # No empty file: the same command, once the daemon is up, must not be told that the file exists.
    assert not export.exists()
