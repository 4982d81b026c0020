"""The local store on several replicas (PostgreSQL): each keeps its own index of the one shared table.

Before it reads (or deletes by what it holds), a replica applies what the others have committed to the
space (clock.py): a read on any replica sees every write acknowledged before it began, the reader's own
included, at the cost of one indexed read of the clock. The follower (daemon/services/vector_follower.py)
applies the same changes as their events arrive, and now and then without them, so reads rarely find
anything left to apply.
"""

from __future__ import annotations

from typing import Any

from daemon.stores.vectors import Deleted, Hit, IndexStatus, Record, Space


class ReplicatedVectorStore:
    name = "local"
    keywords = True  # each replica's keyword index follows the same changes as its vectors

    def __init__(self, local: Any) -> None:
        self._local = local  # a LocalVectorStore, perhaps not opened yet (_LocalOnFirstUse)

    async def create(self, space: Space) -> None:
        await self._local.create(space)

    async def drop(self, space: Space) -> None:
        await self._local.drop(space)

    async def upsert(self, space: Space, namespace: str, records: list[Record]) -> int:
        return await self._local.upsert(space, namespace, records)

    async def query(self, space: Space, *args: Any, **kwargs: Any) -> list[Hit]:
        await self._local.catch_up(space)
        return await self._local.query(space, *args, **kwargs)

    async def fetch(self, space: Space, namespace: str, ids: list[str]) -> dict[str, Record]:
        await self._local.catch_up(space)
        return await self._local.fetch(space, namespace, ids)

    async def keyword_query(self, space: Space, *args: Any, **kwargs: Any) -> list[Hit]:
        await self._local.catch_up(space)
        return await self._local.keyword_query(space, *args, **kwargs)

    async def texts(self, space: Space, namespace: str, ids: list[str]) -> dict[str, str]:
        return await self._local.texts(space, namespace, ids)  # read from the table itself

    async def list_ids(self, space: Space, *args: Any) -> tuple[list[str], str | None]:
        await self._local.catch_up(space)
        return await self._local.list_ids(space, *args)

    async def delete(self, space: Space, namespace: str, **how: Any) -> Deleted:
        await self._local.catch_up(space)  # it deletes what it holds: ids or a filter's matches
        return await self._local.delete(space, namespace, **how)

    async def namespaces(self, space: Space) -> dict[str, int]:
        await self._local.catch_up(space)
        return await self._local.namespaces(space)

    async def indexes(self, space: Space) -> dict[str, IndexStatus]:
        await self._local.catch_up(space)
        return await self._local.indexes(space)

    async def warm(self, spaces: list[Space]) -> None:
        await self._local.warm(spaces)

    async def reconcile(self) -> None:
        await self._local.reconcile()

    def loaded_indexes(self) -> list[tuple[str, str, IndexStatus]]:
        return self._local.loaded_indexes()

    def memory(self) -> list[tuple[str, str, int, int]]:
        return self._local.memory()

    async def ping(self) -> None:
        await self._local.ping()

    async def close(self) -> None:
        await self._local.close()
