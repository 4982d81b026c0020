"""SQLite: the embedded default.

Statements run right here on the event loop, on plain sqlite3 connections, one for reads and one for
writes; WAL mode lets the reader run beside the writer. An indexed read from SQLite's page cache takes
microseconds, and so does a commit in WAL mode with `synchronous=NORMAL`: it appends to the WAL file
without waiting for the disk, yet keeps every committed transaction across a process crash (kill -9;
only a power loss can drop the last ones). Handing a statement to a thread and back costs far more:
under load the thread waits for the GIL until the loop lets go of it. Measured on a 2-core machine:
/users/me went from about 3,400 to 5,300 requests per second when reads moved to the loop; when writes
did, the benchmark's mixed run (an eighth of it profile writes) went from 4,700-5,200 to 5,200-5,900
requests per second and its p99 from 105-121 ms to 32-36 ms, in A/B runs taken in turns.

What does wait for the disk stays off the loop, on one aiosqlite connection (its own thread):
- checkpoints, which copy the WAL into the database file and fsync it: the loop's writer never runs
  one itself (`wal_autocheckpoint=0`), and a passive one runs in the thread every CHECKPOINT_EVERY
  commits;
- a write while another process holds SQLite's write lock (a `bastiond` command run beside the
  daemon): the loop's writer does not wait for it (`busy_timeout=0`); that transaction goes to the
  thread, which waits up to five seconds;
- bulk writes (`transaction(bulk=True)`: vectors), which take milliseconds to seconds: writing 1,000
  vectors of 384 dimensions takes 7-10 ms, deleting 5,000 about 26 ms.
One transaction at a time, in arrival order, under an asyncio lock: SQLite allows one writer anyway.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from daemon.stores.errors import Unavailable, UniqueViolation
from daemon.stores.sql import Batch, Row

CHECKPOINT_EVERY = 500  # commits; SQLite's own default is at 1,000 pages of WAL


def _translate(exc: sqlite3.Error) -> Exception:
    if isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" in str(exc):
        return UniqueViolation(str(exc))
    if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
        return Unavailable("database", "database is locked")
    return exc


class _OnLoop:
    """Statements on a plain sqlite3 connection, run on the event loop (see the module's docstring)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    async def fetch_all(self, sql: str, *params: Any) -> list[Row]:
        try:
            return [dict(row) for row in self._conn.execute(sql, params).fetchall()]
        except sqlite3.Error as exc:
            raise _translate(exc) from exc

    async def fetch_one(self, sql: str, *params: Any) -> Row | None:
        try:
            row = self._conn.execute(sql, params).fetchone()
        except sqlite3.Error as exc:
            raise _translate(exc) from exc
        return dict(row) if row is not None else None

    async def execute(self, sql: str, *params: Any) -> int:
        try:
            return self._conn.execute(sql, params).rowcount
        except sqlite3.Error as exc:
            raise _translate(exc) from exc

    async def execute_many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        try:
            self._conn.executemany(sql, rows)
        except sqlite3.Error as exc:
            raise _translate(exc) from exc


class _InThread:
    """Statements on the aiosqlite connection, run in its thread."""

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
        return cursor.rowcount  # not closed: that would be a second trip to the thread

    async def execute_many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        try:
            await self._conn.executemany(sql, rows)
        except sqlite3.Error as exc:
            raise _translate(exc) from exc


_PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA foreign_keys=ON")
_WAIT_FOR_LOCK = "PRAGMA busy_timeout=5000"  # for another process's write, up to five seconds


def _connect(path: Path, *pragmas: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)  # autocommit; transactions are explicit
    conn.row_factory = sqlite3.Row
    for pragma in pragmas:
        conn.execute(pragma)
    return conn


class SqliteDatabase:
    dialect = "sqlite"
    replicated = False

    def __init__(self, path: Path, thread: aiosqlite.Connection) -> None:
        self._thread = thread
        self._in_thread = _InThread(thread)
        writer = _connect(path, *_PRAGMAS, "PRAGMA busy_timeout=0", "PRAGMA wal_autocheckpoint=0")
        reader = _connect(path, *_PRAGMAS[2:], _WAIT_FOR_LOCK)
        self._on_loop = (writer, reader)
        self._writer, self._reader = _OnLoop(writer), _OnLoop(reader)
        self._write_lock = asyncio.Lock()
        self._commits = 0  # since the last checkpoint
        self._checkpoint: asyncio.Task | None = None

    @classmethod
    async def open(cls, path: Path) -> SqliteDatabase:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Made 0600 before SQLite opens it: SQLite gives its -wal and -shm files the database's mode.
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        # First: it switches the file to WAL, waiting up to five seconds for another process to let go.
        thread = await aiosqlite.connect(path, isolation_level=None)
        thread.row_factory = sqlite3.Row
        for pragma in (*_PRAGMAS, _WAIT_FOR_LOCK):
            await thread.execute(pragma)
        return cls(path, thread)

    async def fetch_all(self, sql: str, *params: Any) -> list[Row]:
        return await self._reader.fetch_all(sql, *params)

    async def fetch_one(self, sql: str, *params: Any) -> Row | None:
        return await self._reader.fetch_one(sql, *params)

    async def execute(self, sql: str, *params: Any) -> int:
        async with self.transaction() as tx:
            return await tx.execute(sql, *params)

    async def execute_many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        async with self.transaction() as tx:
            await tx.execute_many(sql, rows)

    @asynccontextmanager
    async def transaction(self, bulk: bool = False) -> AsyncIterator[_OnLoop | _InThread]:
        async with self._write_lock:
            tx = await self._begin(bulk)
            try:
                yield tx
            except BaseException:
                await tx.execute("ROLLBACK")
                raise
            await tx.execute("COMMIT")
            self._committed()

    async def _begin(self, bulk: bool) -> _OnLoop | _InThread:
        if not bulk:
            try:
                await self._writer.execute("BEGIN IMMEDIATE")
                return self._writer
            except Unavailable:  # another process writes: wait for it in the thread, not on the loop
                pass
        await self._in_thread.execute("BEGIN IMMEDIATE")
        return self._in_thread

    def _committed(self) -> None:
        self._commits += 1
        if self._commits >= CHECKPOINT_EVERY and self._checkpoint is None:
            self._commits = 0
            self._checkpoint = asyncio.create_task(self._run_checkpoint())

    async def _run_checkpoint(self) -> None:
        try:
            # PASSIVE: copies what no reader still needs, and neither waits for nor blocks the writer.
            await self._thread.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error:
            pass  # the next one copies what this one did not
        finally:
            self._checkpoint = None

    @asynccontextmanager
    async def batch(self) -> AsyncIterator[Batch]:
        batch = Batch()
        yield batch
        async with self.transaction() as tx:
            for sql, params in batch.statements[:-1] if batch.returns else batch.statements:
                await tx.execute(sql, *params)
            if batch.returns:
                sql, params = batch.statements[-1]
                batch.row = await tx.fetch_one(sql, *params)

    async def ping(self) -> None:
        await self.fetch_one("SELECT 1 AS ok")

    def pool_stats(self) -> dict[str, int]:
        return {"size": len(self._on_loop) + 1, "in_use": int(self._write_lock.locked())}  # + the thread's

    async def close(self) -> None:
        if self._checkpoint is not None:
            await self._checkpoint
        for conn in self._on_loop:
            conn.close()
        await self._thread.close()  # the last connection: SQLite checkpoints and removes the WAL
