"""The collections table: names, owners, dimensions and metrics, whichever backend holds the vectors."""

from __future__ import annotations

from dataclasses import dataclass

from daemon.clock import iso_now
from daemon.ids import new_id
from daemon.stores.sql import Database, Row
from daemon.stores.vectors import DEFAULT_PRECISION, Space


@dataclass(frozen=True)
class CollectionRow:
    id: str
    name: str
    dimension: int
    metric: str
    owner_id: str | None
    created_at: str
    precision: str = DEFAULT_PRECISION
    embed_model: str | None = None  # the model that embeds its text, if any

    @property
    def space(self) -> Space:
        return Space(self.id, self.dimension, self.metric, self.precision)


def _row(row: Row) -> CollectionRow:
    return CollectionRow(
        row["id"], row["name"], int(row["dimension"]), row["metric"], row["owner_id"], row["created_at"], row["precision"],
        row["embed_model"],
    )


_COLUMNS = "id, name, dimension, metric, owner_id, created_at, precision, embed_model"


class Catalog:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self, name: str, dimension: int, metric: str, owner_id: str | None, precision: str = DEFAULT_PRECISION,
        embed_model: str | None = None,
    ) -> CollectionRow:
        """Raises UniqueViolation when the name is taken."""
        row = CollectionRow(new_id("col"), name, dimension, metric, owner_id, iso_now(), precision, embed_model)
        await self._db.execute(
            f"INSERT INTO collections ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            row.id, row.name, row.dimension, row.metric, row.owner_id, row.created_at, row.precision, row.embed_model,
        )
        return row

    async def get(self, name: str) -> CollectionRow | None:
        row = await self._db.fetch_one(f"SELECT {_COLUMNS} FROM collections WHERE name = ?", name)
        return _row(row) if row else None

    async def page(self, owner_id: str | None, after: str | None, limit: int) -> list[CollectionRow]:
        """By name; `owner_id` None means every collection (for admins)."""
        sql = f"SELECT {_COLUMNS} FROM collections WHERE name > ?"
        params: list = [after or ""]
        if owner_id is not None:
            sql += " AND owner_id = ?"
            params.append(owner_id)
        # ORDER BY and `>` use the same collation, so the cursor walks the same order on either database.
        rows = await self._db.fetch_all(sql + " ORDER BY name LIMIT ?", *params, limit)
        return [_row(r) for r in rows]

    async def all(self) -> list[CollectionRow]:
        return [_row(r) for r in await self._db.fetch_all(f"SELECT {_COLUMNS} FROM collections")]

    async def delete(self, collection: CollectionRow) -> bool:
        return await self._db.execute("DELETE FROM collections WHERE id = ?", collection.id) > 0
