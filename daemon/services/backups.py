"""Backups the daemon takes itself: on a schedule (BASTION_BACKUP_EVERY) and when an admin asks
(POST /api/v1/admin/backups), into BASTION_BACKUP_DIR, keeping the newest BASTION_BACKUP_KEEP.

Each runs `bastiond backup` as a child process with the daemon's own settings: the archive is written by
the same code an operator runs by hand, and its work (encoding rows, compressing, encrypting) happens on
another CPU, not between this process's requests. One at a time. With several replicas, set the schedule
on one of them: each writes into its own directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from datetime import UTC, datetime

from daemon.clock import now
from daemon.services.audit import Audit
from daemon.services.principal import Principal
from daemon.settings import Settings
from shared.errors import ApiError, Code
from shared.models.backups import BackupFile, BackupList, BackupRun

log = logging.getLogger("bastion.backups")
PREFIX, SUFFIX = "bastion-", ".backup"


class Backups:
    def __init__(self, settings: Settings, audit: Audit) -> None:
        self._settings = settings
        self._dir = settings.backups_path
        self._audit = audit
        self._last: BackupRun | None = None
        self._task: asyncio.Task | None = None

    def list(self) -> BackupList:
        return BackupList(items=self._files(), last_run=self._last, every_s=self._settings.backup_every_s,
                          keep=self._settings.backup_keep)

    def _files(self) -> list[BackupFile]:
        if not self._dir.is_dir():
            return []
        found = []
        for path in self._dir.glob(f"{PREFIX}*{SUFFIX}"):
            stat = path.stat()
            found.append(BackupFile(name=path.name, size_bytes=stat.st_size,
                                    created_at=datetime.fromtimestamp(stat.st_mtime, UTC)))
        return sorted(found, key=lambda f: f.name, reverse=True)  # the names sort by time

    async def run(self, actor: Principal | None, ip: str | None = None) -> BackupRun:
        """Start one; answers at once with it running (GET shows when it is done)."""
        if not self._settings.backup_passphrase:
            raise ApiError(Code.CONFLICT, "set BASTION_BACKUP_PASSPHRASE on the daemon to take backups")
        if self._last is not None and self._last.state == "running":
            raise ApiError(Code.CONFLICT, f"a backup is being written ({self._last.name}); wait for it to finish")
        started = now()
        self._last = BackupRun(name=f"{PREFIX}{started:%Y%m%dT%H%M%S%fZ}{SUFFIX}", started_at=started, state="running")
        await self._audit.record("backup.started", actor_id=actor.user_id if actor else None, ip=ip, name=self._last.name)
        self._task = asyncio.create_task(self._write(self._last), name="backup")
        return self._last

    async def _write(self, run: BackupRun) -> None:
        self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        env = {**self._settings.to_env(), "BASTION_LOG_LEVEL": "warning"}
        env.pop("BASTION_BACKUP_EVERY", None)  # the child takes one backup; the schedule is this process's
        try:
            child = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "daemon", "backup", "--to", str(self._dir / run.name),
                env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            )
            try:
                _, stderr = await child.communicate()
            except asyncio.CancelledError:
                # The daemon is stopping: the backup stops with it, and its half-written archive goes.
                # Waiting for the child here closes its pipe and transport, which a child left running
                # would hold open past the event loop.
                child.kill()
                await child.wait()
                (self._dir / run.name).unlink(missing_ok=True)
                run.state, run.error = "failed", "the daemon stopped while it was written"
                raise
        except OSError as exc:
            run.state, run.error = "failed", f"cannot start bastiond backup: {exc.strerror or exc}"
        else:
            if child.returncode == 0:
                run.state = "done"
                self._prune()
            else:
                lines = stderr.decode(errors="replace").strip().splitlines()
                run.state, run.error = "failed", (lines[-1] if lines else f"exit code {child.returncode}")
        if run.state == "failed":
            log.error("backup failed", extra={"backup": run.name, "reason": run.error})
        else:
            log.info("backup written", extra={"backup": run.name})

    def _prune(self) -> None:
        for old in self._files()[self._settings.backup_keep:]:
            (self._dir / old.name).unlink(missing_ok=True)

    async def every(self, interval_s: int) -> None:
        """The schedule: a task of the app's for as long as it runs."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.run(None)
                await self.wait()
            except ApiError as exc:  # one still running (an admin's): the next turn will do
                log.warning("scheduled backup skipped", extra={"reason": exc.detail})

    async def wait(self) -> None:
        if self._task is not None:
            await asyncio.shield(self._task)

    async def close(self) -> None:
        """At shutdown: a backup being written is stopped and its partial archive removed (the next one is
        whole); the schedule, or an operator, takes it again after the restart."""
        if self._task is not None and not self._task.done():
            log.warning("shutting down while a backup is written; it is stopped")
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

