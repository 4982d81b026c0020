"""`bastiond backup` of a real daemon under a steady write load, and `bastiond restore` into a new data
directory (SQLite) or an empty schema (PostgreSQL): every write acknowledged before the backup began is
in it, and the restored daemon answers logins and vector queries as the original did. Then the
refusals: a wrong passphrase, a damaged archive, a target that holds data."""

from __future__ import annotations

import contextlib
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import _fresh_schema
from tests.daemon_process import ADMIN_EMAIL, ROOT, Refused, start, with_admin

PASSPHRASE = "a passphrase for the tests' archives"
DIM = 16
USER_PASSWORD = "a user's long password"


@contextmanager
def _target(sql_backend: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Settings of an empty place to restore into: a new data dir, and a new schema on PostgreSQL."""
    if not sql_backend:
        yield {"BASTION_DATA_DIR": str(tmp_path / "restored")}
        return
    with _fresh_schema("bastion_restore") as url:
        yield {"BASTION_DATA_DIR": str(tmp_path / "restored"), "BASTION_DATABASE_URL": url}


def _bastiond(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "daemon", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def _emails(daemon, token: str) -> set[str]:
    emails, cursor = set(), None
    while True:
        page = daemon.call("GET", "/api/v1/users?limit=200" + (f"&cursor={cursor}" if cursor else ""), token=token)
        emails |= {u["email"] for u in page["items"]}
        if not (cursor := page["next_cursor"]):
            return emails


def _query(daemon, token: str, vector: list[float]) -> list[tuple[str, float]]:
    answer = daemon.call("POST", "/api/v1/collections/docs/query",
                         {"vector": vector, "top_k": 10, "include_metadata": True}, token=token)
    return [(m["id"], round(m["score"], 5), m["metadata"]["n"]) for m in answer["matches"]]


def test_a_backup_under_write_load_restores_every_acknowledged_write(tmp_path: Path, sql_backend: str) -> None:
    settings = {"BASTION_RATE_LIMIT_PER_MINUTE": "0", "BASTION_AUTH_RATE_LIMIT_PER_MINUTE": "100000"}
    if sql_backend:
        settings["BASTION_DATABASE_URL"] = sql_backend
    rng = random.Random(19)
    with with_admin(tmp_path / "data", **settings) as daemon:
        token = daemon.admin_token()
        daemon.call("POST", "/api/v1/collections", {"name": "docs", "dimension": DIM}, token=token)
        vectors = [{"id": f"v{i}", "values": [rng.uniform(-1, 1) for _ in range(DIM)], "metadata": {"n": i}}
                   for i in range(300)]
        daemon.call("POST", "/api/v1/collections/docs/upsert", {"vectors": vectors}, token=token)

        acknowledged: list[str] = []
        stop, started = threading.Event(), threading.Event()

        def write() -> None:  # the steady load: one user created after another, each one acknowledged
            n = 0
            while not stop.is_set():
                email = f"load{n}@example.com"
                daemon.call("POST", "/api/v1/users", {"email": email, "password": USER_PASSWORD, "role": "user"},
                            token=token)
                acknowledged.append(email)
                n += 1
                if n == 20:
                    started.set()

        writer = threading.Thread(target=write)
        writer.start()
        try:
            assert started.wait(60)
            before = list(acknowledged)
            archive = tmp_path / "bastion.backup"
            done = _bastiond("backup", "--to", str(archive), env={**daemon.env(), "BASTION_BACKUP_PASSPHRASE": PASSPHRASE})
            after = len(acknowledged)
        finally:
            stop.set()
            writer.join(60)
        assert done.returncode == 0, done.stderr
        assert after > len(before)  # writes went on while the backup ran
        probe = [rng.uniform(-1, 1) for _ in range(DIM)]
        expected = _query(daemon, token, probe)
        assert len(expected) == 10

    with _target(sql_backend, tmp_path) as target:
        done = _bastiond("restore", str(archive), env={**target, "BASTION_BACKUP_PASSPHRASE": PASSPHRASE,
                                                        "BASTION_LOG_LEVEL": "warning"})
        assert done.returncode == 0, done.stderr
        assert "restored" in done.stdout
        restored = start(Path(target["BASTION_DATA_DIR"]), **{**settings, **target})
        try:
            token = restored.admin_token()  # the administrator's password hash came along
            emails = _emails(restored, token)
            assert set(before) <= emails
            assert emails <= {ADMIN_EMAIL, *acknowledged}
            assert _query(restored, token, probe) == expected
            # A user's own login works too, and the tokens the original signed verify here: same keys.
            login = restored.call("POST", "/api/v1/auth/login", {"email": before[0], "password": USER_PASSWORD})
            assert restored.call("GET", "/api/v1/users/me", token=login["access_token"])["email"] == before[0]
        finally:
            restored.stop()


def test_a_restore_refuses_a_wrong_passphrase_a_damaged_archive_and_a_target_with_data(
    tmp_path: Path, sql_backend: str
) -> None:
    settings = {"BASTION_DATABASE_URL": sql_backend} if sql_backend else {}
    with with_admin(tmp_path / "data", **settings) as daemon:
        archive = tmp_path / "bastion.backup"
        env = {**daemon.env(), "BASTION_BACKUP_PASSPHRASE": PASSPHRASE}
        assert _bastiond("backup", "--to", str(archive), env=env).returncode == 0
        again = _bastiond("backup", "--to", str(archive), env=env)
        assert again.returncode == 2 and "exists" in again.stderr

        # Into the daemon's own database, which holds data: refused, nothing changed.
        refused = _bastiond("restore", str(archive), env=env)
        assert refused.returncode == 1
        assert refused.stderr.strip().splitlines() == [
            "bastiond: the target is not empty (users, audit_events hold rows): restore into a new data directory "
            "or an empty database"]
        assert daemon.call("GET", "/api/v1/users", token=daemon.admin_token())["items"][0]["email"] == ADMIN_EMAIL

    with _target(sql_backend, tmp_path) as target:
        env = {**target, "BASTION_LOG_LEVEL": "warning"}
        wrong = _bastiond("restore", str(archive), env={**env, "BASTION_BACKUP_PASSPHRASE": "not the passphrase"})
        assert (wrong.returncode, wrong.stderr) == (1, "bastiond: wrong passphrase (BASTION_BACKUP_PASSPHRASE) for this archive\n")
        missing = _bastiond("restore", str(archive), env=env)
        assert (missing.returncode, missing.stderr) == (2, "bastiond: set BASTION_BACKUP_PASSPHRASE: archives are always encrypted\n")

        damaged = tmp_path / "damaged.backup"
        data = bytearray(archive.read_bytes())
        data[len(data) // 2] ^= 0x01
        damaged.write_bytes(bytes(data))
        broken = _bastiond("restore", str(damaged), env={**env, "BASTION_BACKUP_PASSPHRASE": PASSPHRASE})
        assert (broken.returncode, broken.stderr) == (
            1, f"bastiond: {damaged} is damaged: its checksum does not match its contents\n")
        cut = tmp_path / "cut.backup"
        cut.write_bytes(archive.read_bytes()[:-100])
        broken = _bastiond("restore", str(cut), env={**env, "BASTION_BACKUP_PASSPHRASE": PASSPHRASE})
        assert broken.returncode == 1 and "is damaged" in broken.stderr
        assert not Path(target["BASTION_DATA_DIR"]).exists()  # refused before anything was created

        # The target is still empty: the right archive restores into it.
        ok = _bastiond("restore", str(archive), env={**env, "BASTION_BACKUP_PASSPHRASE": PASSPHRASE})
        assert ok.returncode == 0, ok.stderr
        restored = start(Path(target["BASTION_DATA_DIR"]), **target)
        try:
            with pytest.raises(Refused) as refusal:
                restored.call("POST", "/api/v1/auth/login", {"email": ADMIN_EMAIL, "password": "wrong password!"})
            assert refusal.value.status == 401
            assert restored.admin_token()
        finally:
            restored.stop()


def test_a_backup_leaves_the_daemons_scheduling_group_at_the_lowest_weight(tmp_path: Path) -> None:
    # `bastiond backup` beside a live daemon (often its child) takes a session of its own, which Linux makes a
    # scheduling group of its own (autogroup), at nice 19 both as a process and as a group; before, it ran at
    # nice 10 in the group of whoever started it. Read from the running process, as `ps` shows it.
    with with_admin(tmp_path / "data") as daemon:
        child = subprocess.Popen([sys.executable, "-m", "daemon", "backup", "--to", str(tmp_path / "b.backup")],
                                 env={**daemon.env(), "BASTION_BACKUP_PASSPHRASE": PASSPHRASE}, cwd=ROOT,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        seen = set()
        try:
            while child.poll() is None:
                with contextlib.suppress(OSError):  # it may have ended since poll()
                    group = Path(f"/proc/{child.pid}/autogroup")
                    sample = (os.getsid(child.pid), os.getpriority(os.PRIO_PROCESS, child.pid))
                    fields = group.read_text().split() if group.exists() else []
                    seen.add((*sample, fields[-1] if fields else None))  # empty where no autogroup applies
                time.sleep(0.005)
        finally:
            _, stderr = child.communicate(timeout=300)
        assert child.returncode == 0, stderr
    # A kernel built with autogroups gives every new session one, so the child's file names it at nice 19. The test's
    # own group says nothing: a process in the root group (a CI runner under a container's init) reads it empty.
    # A kernel without them has neither the file nor the switch: nothing to read there.
    autogroup = "19" if Path("/proc/sys/kernel/sched_autogroup_enabled").exists() else None
    assert (child.pid, 19, autogroup) in seen, seen
