"""The vector table's clock: what lets every replica's local index follow the one shared table exactly.

Each collection counts its writes in `vector_clock.last_label` (migration 0009). An upsert takes one label
per vector and a delete takes one for itself, inside the write's transaction; on PostgreSQL that row stays
locked until the commit, so the writes to one collection commit in label order whichever replica makes
them. A replica whose index reflects every label up to N therefore catches up exactly with two range reads:
the rows with a label above N (new or replaced vectors) and the tombstones above N (deleted ids, or a whole
namespace). Events only say when to look; this is what the replica applies.
"""

from __future__ import annotations

import time
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

from daemon.stores.sql import Connection, Database, Row, marks

# Tombstones live this long: a replica that has not caught up with a space for half of it (its database
# was out of reach) forgets the space and loads it again rather than trust that it missed none.
TOMBSTONE_KEEP_S = 3600
ROWS_PAGE = 5_000


@dataclass(frozen=True)
class Tombstone:
    label: int
    namespace: str
    id: str | None  # None: every vector of the namespace written before `label`


def _primary(db: Database) -> AbstractAsyncContextManager[Any]:
    """Reads that must see the latest commits: a read replica may lag, a transaction runs on the primary."""
    return db.transaction() if db.replicated else nullcontext(db)


async def take(tx: Connection, collection_id: str, count: int) -> int:
    """The first of `count` fresh labels for this collection (inside the write's transaction)."""
    row = await tx.fetch_one(
        "INSERT INTO vector_clock (collection_id, last_label) VALUES (?, ?) ON CONFLICT (collection_id)"
        " DO UPDATE SET last_label = vector_clock.last_label + excluded.last_label RETURNING last_label",
        collection_id,
        count,
    )
    assert row is not None
    return int(row["last_label"]) - count + 1


async def raise_to(db: Database, collection_id: str, label: int) -> None:
    """Never hand out `label` or below again (a graph saved before the clock existed may hold them)."""
    await db.execute(
        "INSERT INTO vector_clock (collection_id, last_label) VALUES (?, ?) ON CONFLICT (collection_id)"
        " DO UPDATE SET last_label = CASE WHEN excluded.last_label > vector_clock.last_label"
        " THEN excluded.last_label ELSE vector_clock.last_label END",
        collection_id,
        label,
    )


async def bury(tx: Connection, collection_id: str, namespace: str, label: int, ids: list[str] | None) -> None:
    """Tombstones for a delete that took `label`: one per id, or one for the namespace (ids None); the
    collection's tombstones older than TOMBSTONE_KEEP_S go."""
    at = int(time.time())
    await tx.execute("DELETE FROM vector_tombstones WHERE collection_id = ? AND at < ?", collection_id, at - TOMBSTONE_KEEP_S)
    await tx.execute_many(
        "INSERT INTO vector_tombstones (collection_id, label, namespace, id, at) VALUES (?, ?, ?, ?, ?)",
        [(collection_id, label, namespace, i, at) for i in (ids if ids is not None else [None])],
    )


async def forget(tx: Connection, collection_id: str) -> None:
    """A dropped collection's clock and tombstones (inside the drop's transaction)."""
    await tx.execute("DELETE FROM vector_clock WHERE collection_id = ?", collection_id)
    await tx.execute("DELETE FROM vector_tombstones WHERE collection_id = ?", collection_id)


async def read(db: Database, collection_ids: list[str]) -> dict[str, int]:
    """Each collection's last label; a collection never written, or dropped, is absent."""
    if not collection_ids:
        return {}
    async with _primary(db) as conn:
        rows = await conn.fetch_all(
            f"SELECT collection_id, last_label FROM vector_clock WHERE collection_id IN ({marks(len(collection_ids))})", *collection_ids
        )
    return {row["collection_id"]: int(row["last_label"]) for row in rows}


async def tombstones_after(db: Database, collection_id: str, after: int) -> list[Tombstone]:
    async with _primary(db) as conn:
        rows = await conn.fetch_all(
            "SELECT label, namespace, id FROM vector_tombstones WHERE collection_id = ? AND label > ? ORDER BY label",
            collection_id,
            after,
        )
    return [Tombstone(int(row["label"]), row["namespace"], row["id"]) for row in rows]


async def rows_after(db: Database, collection_id: str, after: int) -> list[Row]:
    """A page of the rows written after label `after`, in label order (ROWS_PAGE at most)."""
    async with _primary(db) as conn:
        return await conn.fetch_all(
            "SELECT namespace, id, label, embedding, metadata, text FROM vectors"
            " WHERE collection_id = ? AND label > ? ORDER BY label LIMIT ?",
            collection_id,
            after,
            ROWS_PAGE,
        )


async def totals(db: Database, collection_id: str) -> tuple[int, int]:
    """How many rows the collection has and the sum of their labels: what a copy of its rows held elsewhere
    (the rows a close saved) must add up to, label for label. Read from the label index alone."""
    async with _primary(db) as conn:
        row = await conn.fetch_one(
            "SELECT COUNT(*) AS n, SUM(label) AS total FROM vectors WHERE collection_id = ?", collection_id
        )
    assert row is not None
    return int(row["n"]), int(row["total"] or 0)


async def texts(db: Database, collection_id: str) -> dict[str, dict[str, str]]:
    """The texts of the collection's rows that have one, by namespace and id (through the partial index of
    migration 0050: a collection without texts reads nothing)."""
    async with _primary(db) as conn:
        rows = await conn.fetch_all(
            "SELECT namespace, id, text FROM vectors WHERE collection_id = ? AND text IS NOT NULL", collection_id
        )
    found: dict[str, dict[str, str]] = {}
    for row in rows:
        found.setdefault(row["namespace"], {})[row["id"]] = row["text"]
    return found
