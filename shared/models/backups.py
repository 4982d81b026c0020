"""/api/v1/admin/backups: the archives a daemon keeps in BASTION_BACKUP_DIR, and the one it is writing."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel


class BackupFile(BaseModel):
    name: str
    size_bytes: int
    created_at: datetime


class BackupRun(BaseModel):
    name: str
    started_at: datetime
    state: Literal["running", "done", "failed"]
    error: str | None = None  # a failed run's reason, one line


class BackupList(BaseModel):
    items: list[BackupFile]  # newest first
    last_run: BackupRun | None  # the latest run this daemon started since it started, running or not
    every_s: int | None  # BASTION_BACKUP_EVERY, in seconds; null: no schedule
    keep: int  # BASTION_BACKUP_KEEP: scheduled and API-started archives beyond the newest N are removed
