"""PostgreSQL via aiopg (psycopg2 underneath): the backend for many replicas.

aiopg is autocommit-only, so a transaction is an explicit BEGIN/COMMIT on one pooled connection.
Connection failures of any kind become `Unavailable("postgresql")`, which the API answers with 503.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiopg
import psycopg2
import psycopg2.errorcodes

from daemon.stores.errors import Unavailable, UniqueViolation
from daemon.stores.sql import Row

ACQUIRE_TIMEOUT_S = 10


def _to_pyformat(sql: str) -> str:
    # Our queries use '?' placeholders; psycopg2 wants %s, and a literal % must be doubled.
    return sql.replace("%", "%%").replace("?", "%s")


def _translate(exc: BaseException) -> Exception:
    if isinstance(exc, psycopg2.IntegrityError) and exc.pgcode == psycopg2.errorcodes.UNIQUE_VIOLATION:
        return UniqueViolation(exc.pgerror or "unique violation")
    if isinstance(exc, (psycopg2.OperationalError, psycopg2.InterfaceError, OSError, asyncio.TimeoutError)):
        return Unavailable("postgresql", type(exc).__name__)
    if isinstance(exc, psycopg2.Error) and (exc.pgcode or "").startswith(("08", "57")):
        return Unavailable("postgresql", exc.pgcode or "")
    return exc  # type: ignore[return-value]


class _Conn:
    def __init__(self, cursor: aiopg.Cursor) -> None:
        self._cur = cursor

    async def fetch_all(self, sql: str, *params: Any) -> list[Row]:
        try:
            await self._cur.execute(_to_pyformat(sql), params)
            rows = await self._cur.fetchall()
        except (psycopg2.Error, OSError, asyncio.TimeoutError) as exc:
            raise _translate(exc) from exc
        names = [d.name for d in self._cur.description]
        return [dict(zip(names, row)) for row in rows]

    async def fetch_one(self, sql: str, *params: Any) -> Row | None:
        rows = await self.fetch_all(sql, *params)
        return rows[0] if rows else None

    async def execute(self, sql: str, *params: Any) -> int:
        try:
            await self._cur.execute(_to_pyformat(sql), params)
        except (psycopg2.Error, OSError, asyncio.TimeoutError) as exc:
            raise _translate(exc) from exc
        return self._cur.rowcount

    async def execute_many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        for row in rows:  # aiopg has no executemany; this runs inside the caller's transaction
            await self.execute(sql, *row)


class PostgresDatabase:
    dialect = "postgresql"

    def __init__(self, pool: aiopg.Pool) -> None:
        self._pool = pool

    @classmethod
    async def open(cls, url: str, pool_size: int = 10, read_url: str | None = None) -> PostgresDatabase:
        try:
            pool = await aiopg.create_pool(url, minsize=1, maxsize=pool_size, timeout=ACQUIRE_TIMEOUT_S)
        except (psycopg2.Error, OSError, asyncio.TimeoutError) as exc:
            raise _translate(exc) from exc
        return cls(pool)

    @asynccontextmanager
    async def _cursor(self) -> AsyncIterator[_Conn]:
        try:
            conn = await asyncio.wait_for(self._pool.acquire(), ACQUIRE_TIMEOUT_S)
        except (psycopg2.Error, OSError, asyncio.TimeoutError) as exc:
            raise _translate(exc) from exc
        try:
            async with conn.cursor() as cur:
                yield _Conn(cur)
        finally:
            await self._pool.release(conn)

    async def fetch_all(self, sql: str, *params: Any) -> list[Row]:
        async with self._cursor() as c:
            return await c.fetch_all(sql, *params)

    async def fetch_one(self, sql: str, *params: Any) -> Row | None:
        async with self._cursor() as c:
            return await c.fetch_one(sql, *params)

    async def execute(self, sql: str, *params: Any) -> int:
        async with self._cursor() as c:
            return await c.execute(sql, *params)

    async def execute_many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        async with self.transaction() as tx:
            await tx.execute_many(sql, rows)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_Conn]:
        async with self._cursor() as c:
            await c.execute("BEGIN")
            try:
                yield c
            except BaseException:
                try:
                    await c.execute("ROLLBACK")
                except Exception:
                    pass  # the connection is gone; the server rolls back on its own
                raise
            await c.execute("COMMIT")

    async def ping(self) -> None:
        await self.fetch_one("SELECT 1 AS ok")

    def pool_stats(self) -> dict[str, int]:
        return {"size": self._pool.size, "in_use": self._pool.size - self._pool.freesize}

    async def close(self) -> None:
        self._pool.close()
        await self._pool.wait_closed()
