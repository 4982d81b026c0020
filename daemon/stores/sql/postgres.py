"""PostgreSQL via aiopg (psycopg2 underneath): the backend for many replicas.

aiopg is autocommit-only, so a transaction is an explicit BEGIN/COMMIT on one pooled connection.
Connection failures of any kind become `Unavailable("postgresql")`, which the API answers with 503.

With a read replica (BASTION_DATABASE_READ_URL), `fetch_one`/`fetch_all` outside a transaction go to
the replica, everything else to the primary. Streaming replication lags a little, so a caller that
has just written reads from the primary for `read_your_writes_s` (read-your-writes). The window is
kept per read scope (`reads_scoped_to` in daemon.stores.sql; the authentication stage runs each
request under its principal's id, so one user's writes do not pull every other user's reads to the
primary); work with no scope set sees every write of the process, so it is never less consistent.
The windows live in this process only: a user whose next request lands on another daemon replica
may, for that window, read from the replica. A replica that does not answer is skipped and the read
goes to the primary.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiopg
import psycopg2
import psycopg2.errorcodes

from daemon.stores.errors import Unavailable, UniqueViolation
from daemon.stores.sql import Batch, Row, read_scope

ACQUIRE_TIMEOUT_S = 10
log = logging.getLogger("bastion.db")


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

    async def execute_batch(self, statements: list[tuple[str, tuple[Any, ...]]]) -> Row | None:
        """All of them in one transaction and one round trip; returns the last one's first row, if any.

        The values are bound by psycopg2 (mogrify), and the joined text is sent without parameters, so
        nothing in it is read as a placeholder. It goes as one simple query, which PostgreSQL runs as one
        implicit transaction (all or nothing, rolled back by the server if a statement fails), and whose
        answer is the last statement's: with BEGIN and COMMIT around it, that would be COMMIT's."""
        if not statements:
            return None
        script = b";".join(self._cur.mogrify(_to_pyformat(sql), params) for sql, params in statements)
        try:
            await self._cur.execute(script.decode())
            if self._cur.description is None:
                return None
            row = await self._cur.fetchone()
        except (psycopg2.Error, OSError, asyncio.TimeoutError) as exc:
            raise _translate(exc) from exc
        return None if row is None else dict(zip([d.name for d in self._cur.description], row))


class _RecentWrites:
    """When each read scope last wrote, to keep its reads on the primary for a short window.

    A scope also honours writes made with no scope (a login, a registration: the caller is not known
    yet), so a user's first requests after them read what they wrote.
    """

    PRUNE_AT = 10_000

    def __init__(self, window_s: float, clock: Callable[[], float]) -> None:
        self.window_s = window_s
        self._clock = clock
        self._last: dict[str | None, float] = {}
        self._any = float("-inf")  # the latest write of any scope

    def wrote(self) -> None:
        now = self._clock()
        self._any = now
        self._last[read_scope.get()] = now
        if len(self._last) > self.PRUNE_AT:
            self._last = {k: t for k, t in self._last.items() if now - t < self.window_s}

    def recent(self) -> bool:
        now = self._clock()
        scope = read_scope.get()
        if scope is None:  # unscoped work sees every write of this process
            return now - self._any < self.window_s
        last = max(self._last.get(scope, float("-inf")), self._last.get(None, float("-inf")))
        return now - last < self.window_s


async def _create_pool(url: str, size: int) -> aiopg.Pool:
    try:
        return await aiopg.create_pool(url, minsize=1, maxsize=size, timeout=ACQUIRE_TIMEOUT_S)
    except (psycopg2.Error, OSError, asyncio.TimeoutError) as exc:
        raise _translate(exc) from exc


class PostgresDatabase:
    dialect = "postgresql"

    def __init__(
        self,
        pool: aiopg.Pool,
        replica: aiopg.Pool | None = None,
        read_your_writes_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pool = pool
        self._replica = replica
        self.replicated = replica is not None
        self._writes = _RecentWrites(read_your_writes_s, clock)
        # One cursor per pooled connection, kept: making an aiopg cursor for every statement cost about
        # a third of a primary-key read's CPU (measured: ~125 -> ~90 us per read with 20 readers).
        self._cursors: weakref.WeakKeyDictionary[aiopg.Connection, aiopg.Cursor] = weakref.WeakKeyDictionary()
        # Waiting for a connection in arrival order: aiopg's pool lets a newcomer take a connection that
        # was just released before the callers already waiting wake up, so under a burst some callers
        # waited for seconds (p99 1.5 s against a p50 of 0.19 s at 256 connections).
        self._gates = {p: asyncio.Semaphore(p.maxsize) for p in (pool, replica) if p is not None}

    @classmethod
    async def open(
        cls, url: str, pool_size: int = 10, read_url: str | None = None, read_your_writes_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> PostgresDatabase:
        pool = await _create_pool(url, pool_size)
        replica = None
        if read_url:
            try:
                replica = await _create_pool(read_url, pool_size)
            except BaseException:
                pool.close()
                await pool.wait_closed()
                raise
        return cls(pool, replica, read_your_writes_s, clock)

    @asynccontextmanager
    async def _cursor(self, pool: aiopg.Pool | None = None) -> AsyncIterator[_Conn]:
        pool = pool or self._pool
        gate = self._gates[pool]
        try:
            async with asyncio.timeout(ACQUIRE_TIMEOUT_S):  # not wait_for: that wraps every acquire in a task
                await gate.acquire()
                try:
                    conn = await pool.acquire()
                except BaseException:
                    gate.release()
                    raise
        except (psycopg2.Error, OSError, asyncio.TimeoutError) as exc:
            raise _translate(exc) from exc
        except RuntimeError as exc:
            # While the server is down, uvloop may refuse the socket of a new connection whose file
            # descriptor number was just freed by a dead one ("the handler is closed"): no connection.
            raise Unavailable("postgresql", "RuntimeError") from exc
        try:
            cursor = self._cursors.get(conn)
            if cursor is None or cursor.closed:
                try:
                    cursor = self._cursors[conn] = await conn.cursor()
                except (psycopg2.Error, OSError) as exc:
                    raise _translate(exc) from exc
            yield _Conn(cursor)
        except Unavailable:
            self._cursors.pop(conn, None)
            conn.close()  # a broken connection must not go back to the pool for the next caller
            raise
        finally:
            try:
                await pool.release(conn)
            finally:
                gate.release()

    async def _read(self, sql: str, params: tuple[Any, ...]) -> list[Row]:
        if self._replica is not None and not self._writes.recent():
            try:
                async with self._cursor(self._replica) as c:
                    return await c.fetch_all(sql, *params)
            except Unavailable as exc:
                log.warning("read replica unavailable; reading from the primary", extra={"reason": str(exc)})
        async with self._cursor() as c:
            return await c.fetch_all(sql, *params)

    async def fetch_all(self, sql: str, *params: Any) -> list[Row]:
        return await self._read(sql, params)

    async def fetch_one(self, sql: str, *params: Any) -> Row | None:
        rows = await self._read(sql, params)
        return rows[0] if rows else None

    async def execute(self, sql: str, *params: Any) -> int:
        try:
            async with self._cursor() as c:
                return await c.execute(sql, *params)
        finally:
            self._writes.wrote()

    async def execute_many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        async with self.transaction() as tx:
            await tx.execute_many(sql, rows)

    @asynccontextmanager
    async def transaction(self, bulk: bool = False) -> AsyncIterator[_Conn]:
        try:
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
        finally:
            # Marked after COMMIT (or a failure that may have committed): reads that follow see it.
            self._writes.wrote()

    @asynccontextmanager
    async def batch(self) -> AsyncIterator[Batch]:
        batch = Batch()
        yield batch
        try:
            async with self._cursor() as c:
                batch.row = await c.execute_batch(batch.statements)  # None unless the last one returns
        finally:
            self._writes.wrote()

    async def ping(self) -> None:
        async with self._cursor() as c:
            await c.fetch_one("SELECT 1 AS ok")

    def pool_stats(self) -> dict[str, int]:
        stats = {"size": self._pool.size, "in_use": self._pool.size - self._pool.freesize}
        if self._replica is not None:
            stats["replica_size"] = self._replica.size
            stats["replica_in_use"] = self._replica.size - self._replica.freesize
        return stats

    async def close(self) -> None:
        for pool in (self._pool, self._replica):
            if pool is not None:
                pool.close()
                await pool.wait_closed()
