"""Numbered SQL migrations (daemon/migrations/NNNN_name.sql), applied in order, each in a transaction.

The files are written once in the dialect both backends share; the few type names that differ are
mapped here. On PostgreSQL an advisory lock keeps replicas that start together from racing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

from daemon.clock import iso_now
from daemon.stores.sql import Database

_PG_TYPES = {r"\bBLOB\b": "BYTEA", r"\bDOUBLE\b": "DOUBLE PRECISION"}
_LOCK_ID = 8420_0001


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def available() -> list[Migration]:
    found = []
    for entry in resources.files("daemon.migrations").iterdir():
        match = re.fullmatch(r"(\d{4})_(\w+)\.sql", entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text()))
    return sorted(found, key=lambda m: m.version)


def _statements(sql: str, dialect: str) -> list[str]:
    if dialect == "postgresql":
        for pattern, replacement in _PG_TYPES.items():
            sql = re.sub(pattern, replacement, sql)
    body = "\n".join(line for line in sql.splitlines() if not line.strip().startswith("--"))
    return [s.strip() for s in body.split(";") if s.strip()]


async def migrate(db: Database) -> list[Migration]:
    """Apply what is missing; returns the migrations applied now."""
    await db.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    applied = []
    for migration in available():
        async with db.transaction() as tx:
            if db.dialect == "postgresql":
                await tx.execute("SELECT pg_advisory_xact_lock(?)", _LOCK_ID)
            if await tx.fetch_one("SELECT version FROM schema_migrations WHERE version = ?", migration.version):
                continue
            for statement in _statements(migration.sql, db.dialect):
                await tx.execute(statement)
            await tx.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                migration.version,
                migration.name,
                iso_now(),
            )
            applied.append(migration)
    return applied


async def pending(db: Database) -> list[Migration]:
    await db.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    done = {r["version"] for r in await db.fetch_all("SELECT version FROM schema_migrations")}
    return [m for m in available() if m.version not in done]
