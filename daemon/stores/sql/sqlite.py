"""SQLite via aiosqlite: the embedded default.

WAL mode lets readers run beside the single writer, so reads go to a small pool of reader connections
(aiosqlite gives each connection its own thread) and every write goes through one writer connection
under a lock: SQLite allows one writer at a time anyway, and queuing here beats SQLITE_BUSY retries.
`synchronous=NORMAL` in WAL mode keeps every committed transaction across a process crash (kill -9);
only a power loss can drop the last ones.
"""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from daemon.stores.errors import Unavailable, UniqueViolation
from daemon.stores.sql import Row

READERS = 2


def _translate(exc: sqlite3.Error) -> Exception:
    if isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" in str(exc):
        return UniqueViolation(str(exc))
    if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
        return Unavailable("database", "database is locked")
    return exc


class _Conn:
    """Statements on one aiosqlite connection."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def fetch_all(self, sql: str, *params: Any) -> list[Row]:
        try:
            rows = await self._conn.execute_fetchall(sql, params)
        except sqlite3.Error as exc:
            raise _translate(exc) from exc
        return [dict(row) for row in rows]

    async def fetch_one(self, sql: str, *params: Any) -> Row | None:
        rows = await self.fetch_all(sql, *params)
        return rows[0] if rows else None

    async def execute(self, sql: str, *params: Any) -> int:
        try:
            cursor = await self._conn.execute(sql, params)
        except sqlite3.Error as exc:
            raise _translate(exc) from exc
        count = cursor.rowcount
        await cursor.close()
        return count

    async def execute_many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        try:
            await self._conn.executemany(sql, rows)
        except sqlite3.Error as exc:
            raise _translate(exc) from exc


async def _connect(path: Path) -> aiosqlite.Connection:
    conn = await aiosqlite.connect(path, isolation_level=None)  # autocommit; transactions are explicit
    conn.row_factory = sqlite3.Row
    await conn.execute("PRAGMA journal_mode=WAL")
    await conn.execute("PRAGMA synchronous=NORMAL")
    await conn.execute("PRAGMA foreign_keys=ON")
    await conn.execute("PRAGMA busy_timeout=5000")
    return conn


class SqliteDatabase:
    dialect = "sqlite"

    def __init__(self, writer: aiosqlite.Connection, readers: list[aiosqlite.Connection]) -> None:
        self._writer = _Conn(writer)
        self._raw = [writer, *readers]
        self._readers = itertools.cycle([_Conn(r) for r in readers])
        self._write_lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path) -> SqliteDatabase:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        writer = await _connect(path)
        readers = [await _connect(path) for _ in range(READERS)]
        return cls(writer, readers)

    async def fetch_all(self, sql: str, *params: Any) -> list[Row]:
        return await next(self._readers).fetch_all(sql, *params)

    async def fetch_one(self, sql: str, *params: Any) -> Row | None:
        return await next(self._readers).fetch_one(sql, *params)

    async def execute(self, sql: str, *params: Any) -> int:
        async with self._write_lock:
            return await self._writer.execute(sql, *params)

    async def execute_many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        async with self.transaction() as tx:
            await tx.execute_many(sql, rows)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_Conn]:
        async with self._write_lock:
            await self._writer.execute("BEGIN IMMEDIATE")
            try:
                yield self._writer
            except BaseException:
                await self._writer.execute("ROLLBACK")
                raise
            await self._writer.execute("COMMIT")

    async def ping(self) -> None:
        await self.fetch_one("SELECT 1 AS ok")

    def pool_stats(self) -> dict[str, int]:
        return {"size": len(self._raw), "in_use": int(self._write_lock.locked())}

    async def close(self) -> None:
        for conn in self._raw:
            await conn.close()
