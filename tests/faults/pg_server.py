"""A PostgreSQL server of the test's own on a free port, which the test may stop and start at will.

The machine's shared server must never be stopped by a test, so fault tests run their own: initdb
into a temporary directory of its own under /tmp (owned by the postgres user when the tests run as
root, since PostgreSQL refuses to run as root, and pytest's tmp_path is closed to other users), trust
authentication on 127.0.0.1 only.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.conftest import free_port

# Debian's layout; the newest installed major version.
BIN = max(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), default=Path("/nonexistent"))
START_WAIT_S = 60


def available() -> bool:
    return (BIN / "initdb").exists()


class PgServer:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="bastion-pg-"))
        self.dir = self.root / "pgdata"
        self.port = free_port()
        self._user = "postgres" if os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", self._user, "--"] if self._user else []
        done = subprocess.run([*prefix, *command], capture_output=True, text=True, timeout=START_WAIT_S)
        assert done.returncode == 0, f"{command[0]} failed: {done.stdout}{done.stderr}"

    def init(self) -> PgServer:
        self.dir.mkdir(parents=True)
        if self._user:
            entry = pwd.getpwnam(self._user)
            for path in (self.root, self.dir):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self._run(str(BIN / "initdb"), "-D", str(self.dir), "-U", "postgres", "--auth=trust", "--no-sync",
                  "-E", "UTF8")
        return self

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='{self.dir}' -c fsync=off"
        self._run(str(BIN / "pg_ctl"), "-D", str(self.dir), "-o", options, "-l", str(self.dir / "log"), "-w",
                  "-t", str(START_WAIT_S), "start")

    def stop(self) -> None:
        self._run(str(BIN / "pg_ctl"), "-D", str(self.dir), "-m", "fast", "-w", "stop")

    def destroy(self) -> None:
        if (self.dir / "postmaster.pid").exists():
            self._run(str(BIN / "pg_ctl"), "-D", str(self.dir), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)
