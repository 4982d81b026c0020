"""Every table of the database read under one snapshot, and written back into an empty one.

Why a logical copy (rows as JSON) instead of SQLite's backup API or pg_dump: one format for both stores
(an embedded daemon's backup restores into PostgreSQL, and back), no server-side tool of the right
version to find, and the archive holds exactly Bastion's tables, which `restore` checks against the
schema it runs. Consistency is the database's own:
- SQLite: one read transaction (WAL mode lets it read a fixed state while the daemon keeps writing);
- PostgreSQL: one REPEATABLE READ, READ ONLY transaction, so every table is read at the same instant,
  through server-side cursors that stream the rows.

This runs on the drivers' own synchronous connections, in a process of its own (`bastiond backup`) or a
thread: rows go to the archive as they come, never all in memory. Tables are listed parents first (by
their foreign keys), so that loading them in that order satisfies every reference.
"""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from daemon.stores.sql import marks

# Not copied as rows: the migrations are recorded as versions, and the secrets are copied through the
# secrets store (decrypted, so that the archive's passphrase alone restores them).
SKIPPED = {"schema_migrations", "secrets"}
BATCH = 2000


@dataclass
class Table:
    name: str
    columns: list[str]
    binary: list[int]  # positions of the columns holding bytes (base64 in the archive)
    boolean: list[int]  # positions of the columns holding booleans (SQLite gives 0 and 1)
    rows: int


def _parents_first(tables: list[str], references: dict[str, set[str]]) -> list[str]:
    ordered: list[str] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in ordered or name in path:
            return
        for parent in sorted(references.get(name, ())):
            if parent in tables:
                visit(parent, (*path, name))
        ordered.append(name)

    for name in sorted(tables):
        visit(name, ())
    return ordered


def _encode(row: tuple[Any, ...], table: Table) -> bytes:
    values = list(row)
    for i in table.binary:
        if values[i] is not None:
            values[i] = base64.b64encode(bytes(values[i])).decode()
    for i in table.boolean:
        if values[i] is not None:
            values[i] = bool(values[i])
    return orjson.dumps(values)


def _decode(line: bytes, table: Table) -> tuple[Any, ...]:
    values = orjson.loads(line)
    for i in table.binary:
        if values[i] is not None:
            values[i] = base64.b64decode(values[i])
    return tuple(values)


class Source:
    """One database, opened for a dump (`tables`, `rows`) or a load (`is_empty`, `insert`)."""

    dialect: str

    def tables(self) -> list[Table]: ...
    def rows(self, table: Table) -> Iterator[tuple[Any, ...]]: ...
    def migrations(self) -> list[int]: ...


class SqliteSnapshot(Source):
    dialect = "sqlite"

    def __init__(self, path: Path) -> None:
        self._conn = sqlite3.connect(path, isolation_level=None)
        self._conn.execute("PRAGMA busy_timeout=5000")

    def close(self) -> None:
        self._conn.close()

    def _names(self) -> list[str]:
        found = self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        return [r[0] for r in found if r[0] not in SKIPPED]

    def tables(self) -> list[Table]:
        names = self._names()
        references = {n: {r[2] for r in self._conn.execute(f'PRAGMA foreign_key_list("{n}")')} for n in names}
        tables = []
        for name in _parents_first(names, references):
            info = self._conn.execute(f'PRAGMA table_info("{name}")').fetchall()
            types = [(r[2] or "").upper() for r in info]
            count = self._conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
            tables.append(Table(name, [r[1] for r in info], [i for i, t in enumerate(types) if t in ("BLOB", "BYTEA")],
                                [i for i, t in enumerate(types) if t == "BOOLEAN"], count))
        return tables

    def rows(self, table: Table) -> Iterator[tuple[Any, ...]]:
        columns = ", ".join(f'"{c}"' for c in table.columns)
        cursor = self._conn.execute(f'SELECT {columns} FROM "{table.name}"')
        while batch := cursor.fetchmany(BATCH):
            yield from batch

    def migrations(self) -> list[int]:
        return [r[0] for r in self._conn.execute("SELECT version FROM schema_migrations ORDER BY version")]

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        self._conn.execute("BEGIN")  # deferred: the first read fixes what every later read sees
        try:
            yield
        finally:
            self._conn.execute("ROLLBACK")

    @contextmanager
    def loading(self) -> Iterator[None]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def insert(self, table: Table, rows: list[tuple[Any, ...]]) -> None:
        columns = ", ".join(f'"{c}"' for c in table.columns)
        self._conn.executemany(f'INSERT INTO "{table.name}" ({columns}) VALUES ({marks(len(table.columns))})', rows)


class PostgresSnapshot(Source):
    dialect = "postgresql"

    def __init__(self, url: str) -> None:
        import psycopg2

        self._conn = psycopg2.connect(url)

    def close(self) -> None:
        self._conn.close()

    def _names(self) -> list[str]:
        with self._conn.cursor() as cur:
            cur.execute("SELECT table_name FROM information_schema.tables "
                        "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'")
            return [r[0] for r in cur.fetchall() if r[0] not in SKIPPED]

    def tables(self) -> list[Table]:
        names = self._names()
        references: dict[str, set[str]] = {}
        with self._conn.cursor() as cur:
            cur.execute(
                "SELECT c.conrelid::regclass::text, c.confrelid::regclass::text FROM pg_constraint c "
                "JOIN pg_namespace n ON n.oid = c.connamespace WHERE c.contype = 'f' AND n.nspname = current_schema()"
            )
            for child, parent in cur.fetchall():
                references.setdefault(child.strip('"'), set()).add(parent.strip('"'))
            tables = []
            for name in _parents_first(names, references):
                cur.execute(
                    "SELECT column_name, data_type FROM information_schema.columns "
                    "WHERE table_schema = current_schema() AND table_name = %s ORDER BY ordinal_position", (name,)
                )
                info = cur.fetchall()
                cur.execute(f'SELECT count(*) FROM "{name}"')
                count = cur.fetchone()[0]
                tables.append(Table(name, [c for c, _ in info], [i for i, (_, t) in enumerate(info) if t == "bytea"],
                                    [i for i, (_, t) in enumerate(info) if t == "boolean"], count))
        return tables

    def rows(self, table: Table) -> Iterator[tuple[Any, ...]]:
        columns = ", ".join(f'"{c}"' for c in table.columns)
        with self._conn.cursor(name=f"bastion_backup_{table.name}") as cur:  # server-side: streamed
            cur.itersize = BATCH
            cur.execute(f'SELECT {columns} FROM "{table.name}"')
            yield from cur

    def migrations(self) -> list[int]:
        with self._conn.cursor() as cur:
            cur.execute("SELECT version FROM schema_migrations ORDER BY version")
            return [r[0] for r in cur.fetchall()]

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        self._conn.set_session(isolation_level="REPEATABLE READ", readonly=True)
        try:
            yield
        finally:
            self._conn.rollback()

    @contextmanager
    def loading(self) -> Iterator[None]:
        try:
            yield
        except BaseException:
            self._conn.rollback()
            raise
        self._conn.commit()

    def insert(self, table: Table, rows: list[tuple[Any, ...]]) -> None:
        from psycopg2.extras import execute_values

        columns = ", ".join(f'"{c}"' for c in table.columns)
        with self._conn.cursor() as cur:
            execute_values(cur, f'INSERT INTO "{table.name}" ({columns}) VALUES %s', rows, page_size=BATCH)


def open_source(sqlite_path: Path, postgres_url: str | None) -> SqliteSnapshot | PostgresSnapshot:
    return PostgresSnapshot(postgres_url) if postgres_url else SqliteSnapshot(sqlite_path)


def dump(source: SqliteSnapshot | PostgresSnapshot, write: Callable[[bytes], None],
         progress: Callable[[str, int, int], None]) -> dict[str, int]:
    """Every table's rows as JSON lines, under one snapshot: a line naming the table, then one per row.
    Call inside `source.snapshot()`. Returns the rows written per table."""
    counts = {}
    for table in source.tables():
        write(orjson.dumps({"table": table.name, "columns": table.columns, "binary": table.binary,
                            "boolean": table.boolean, "rows": table.rows}) + b"\n")
        done, lines = 0, []
        for row in source.rows(table):
            lines.append(_encode(row, table))
            if len(lines) == BATCH:  # handed on in batches: each write costs a call into zlib and the cipher
                write(b"\n".join(lines) + b"\n")
                done += len(lines)
                lines.clear()
                progress(table.name, done, table.rows)
        if lines:
            write(b"\n".join(lines) + b"\n")
            done += len(lines)
        progress(table.name, done, table.rows)
        counts[table.name] = done
    return counts


def load(target: SqliteSnapshot | PostgresSnapshot, lines: Iterator[bytes],
         progress: Callable[[str, int, int], None]) -> tuple[dict[str, int], dict[str, Any]]:
    """Insert what `dump` wrote, up to the end line (a JSON object with "end"); call inside
    `target.loading()`. Returns the rows inserted per table, and the end line."""
    counts: dict[str, int] = {}
    table: Table | None = None
    pending: list[tuple[Any, ...]] = []

    def flush() -> None:
        if table is not None and pending:
            target.insert(table, pending)
            counts[table.name] = counts.get(table.name, 0) + len(pending)
            progress(table.name, counts[table.name], table.rows)
            pending.clear()

    for line in lines:
        if line.startswith(b"{"):
            flush()
            head = orjson.loads(line)
            if "end" in head:
                return counts, head
            table = Table(head["table"], head["columns"], head["binary"], head["boolean"], head["rows"])
            counts[table.name] = 0
            continue
        if table is None:
            raise ValueError("a row before any table")
        pending.append(_decode(line, table))
        if len(pending) >= BATCH:
            flush()
    raise ValueError("the archive ends before its last table does")


def tables_with_rows(target: SqliteSnapshot | PostgresSnapshot) -> list[str]:
    """The tables that hold rows (restore refuses a target with any)."""
    return [t.name for t in target.tables() if t.rows]
