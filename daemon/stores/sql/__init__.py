"""The SQL store: one interface, two backends (SQLite for a fresh machine, PostgreSQL at scale).

Queries are written once with `?` placeholders and parameters, never formatted into the text; each
backend adapts the placeholder style. Rows come back as plain dicts.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from contextvars import ContextVar
from typing import Any, Protocol

Row = dict[str, Any]


def marks(count: int) -> str:
    """The placeholders of `count` values: "?, ?, ?" (both backends take ?, stores/sql/postgres.py)."""
    return ", ".join(["?"] * count)

# Whose reads must see whose writes: with a read replica, a scope that has just written reads from the
# primary for a moment (read-your-writes). The authentication stage sets it to the principal's id;
# unset, the window is process-wide.
read_scope: ContextVar[str | None] = ContextVar("read_scope", default=None)


class reads_scoped_to:  # lower case, like contextlib.suppress: it reads as a function
    """Run a block under read scope `key`, restoring the previous scope after it. (aiohttp serves the
    requests of one keep-alive connection in one task, so a scope set without this would leak into the
    connection's next request, perhaps another user's.) A class, not @contextmanager: it wraps every
    request, and a generator costs twice as much to enter and leave."""

    __slots__ = ("_key", "_token")

    def __init__(self, key: str | None) -> None:
        self._key = key

    def __enter__(self) -> None:
        self._token = read_scope.set(self._key)

    def __exit__(self, *exc_info: object) -> None:
        read_scope.reset(self._token)


class Connection(Protocol):
    async def fetch_one(self, sql: str, *params: Any) -> Row | None: ...
    async def fetch_all(self, sql: str, *params: Any) -> list[Row]: ...
    async def execute(self, sql: str, *params: Any) -> int: ...
    async def execute_many(self, sql: str, rows: list[tuple[Any, ...]]) -> None: ...


class Batch:
    """Writes collected to be run in one transaction by `Database.batch()`: with PostgreSQL that is one
    round trip for all of them instead of one each plus BEGIN and COMMIT. What they touched is not read,
    except the one row a last statement given to `returning` brings back."""

    def __init__(self) -> None:
        self.statements: list[tuple[str, tuple[Any, ...]]] = []
        self.returns = False  # whether the last statement's row is wanted (`returning`)
        self.row: Row | None = None  # that row, once the batch has run

    def returning(self, sql: str, *params: Any) -> None:
        """The batch's last statement, with a RETURNING clause: its first row is `row` once the batch has
        run (None if it touched none), which saves the read that would otherwise follow the batch."""
        self._add([(sql, params)])
        self.returns = True

    async def execute(self, sql: str, *params: Any) -> int:
        """Always -1: what a statement touched is not known until the batch runs."""
        self._add([(sql, params)])
        return -1

    async def execute_many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        self._add([(sql, tuple(row)) for row in rows])

    def _add(self, statements: list[tuple[str, tuple[Any, ...]]]) -> None:
        if self.returns:
            raise TypeError("the statement given to `returning` must be the batch's last")
        self.statements += statements

    async def fetch_one(self, sql: str, *params: Any) -> Row | None:
        raise TypeError("a batch only writes; read before it or after it")

    async def fetch_all(self, sql: str, *params: Any) -> list[Row]:
        raise TypeError("a batch only writes; read before it or after it")


class Database(Connection, Protocol):
    dialect: str  # "sqlite" | "postgresql"
    replicated: bool  # reads may go to a replica that lags

    def transaction(self, bulk: bool = False) -> AbstractAsyncContextManager[Connection]:
        """`bulk`: it writes many rows (vectors). SQLite then runs it in its thread, so that the event loop
        keeps serving meanwhile; short ones run on the loop (daemon/stores/sql/sqlite.py)."""
    def batch(self) -> AbstractAsyncContextManager[Batch]:
        """The statements given to the batch run when the block ends, in one transaction: all or none."""
    async def ping(self) -> None: ...
    async def close(self) -> None: ...
    def pool_stats(self) -> dict[str, int]: ...


async def open_database(
    url: str | None, sqlite_path: Any, pool_size: int = 10, read_url: str | None = None, read_your_writes_s: float = 2.0
) -> Database:
    if url and not url.startswith("sqlite://"):
        from daemon.stores.sql.postgres import PostgresDatabase

        return await PostgresDatabase.open(url, pool_size, read_url, read_your_writes_s)
    from daemon.stores.sql.sqlite import SqliteDatabase

    return await SqliteDatabase.open(sqlite_path)

