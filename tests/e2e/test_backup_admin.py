"""`bastion admin backups run|list`, the operator's commands, against a real daemon that writes its backups
into BASTION_BACKUP_DIR; the archive it wrote restores."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.daemon_process import ROOT, start, with_admin

PASSPHRASE = "operator's backup passphrase"
WAIT_S = 120


def _bastion(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tui", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=60, env={**os.environ, **env})


def test_an_operator_runs_and_lists_backups_and_the_archive_restores(tmp_path: Path) -> None:
    backups = tmp_path / "backups"
    settings = {"BASTION_BACKUP_PASSPHRASE": PASSPHRASE, "BASTION_BACKUP_DIR": str(backups)}
    with with_admin(tmp_path / "data", **settings) as daemon:
        key = daemon.call("POST", "/api/v1/auth/api-keys", {"name": "ops", "scopes": ["read", "write", "admin"]},
                          token=daemon.admin_token())["key"]
        env = {"BASTION_API_KEY": key, "XDG_CONFIG_HOME": str(tmp_path / "config")}
        run = _bastion("admin", "backups", "run", "--server", daemon.url, "--json", env=env)
        assert run.returncode == 0, run.stderr
        name = json.loads(run.stdout)["name"]

        deadline = time.monotonic() + WAIT_S
        while (listing := json.loads(_bastion("admin", "backups", "list", "--server", daemon.url, "--json",
                                              env=env).stdout))["last_run"]["state"] == "running":
            assert time.monotonic() < deadline, "the backup did not finish"
            time.sleep(0.5)
        assert listing["last_run"]["state"] == "done"
        assert [f["name"] for f in listing["items"]] == [name]
        table = _bastion("admin", "backups", "list", "--server", daemon.url, env=env).stdout
        assert table.splitlines()[0].split() == ["NAME", "SIZE_BYTES", "CREATED_AT"]
        assert f"latest run: {name} done" in table

    target = tmp_path / "restored"
    done = subprocess.run([sys.executable, "-m", "daemon", "restore", str(backups / name)], cwd=ROOT, text=True,
                          capture_output=True, timeout=120,
                          env={**os.environ, "BASTION_DATA_DIR": str(target), "BASTION_BACKUP_PASSPHRASE": PASSPHRASE})
    assert done.returncode == 0, done.stderr
    restored = start(target)
    try:
        assert restored.admin_token()
    finally:
        restored.stop()
