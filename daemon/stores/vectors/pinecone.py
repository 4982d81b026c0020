"""The Pinecone vector store, on the `pinecone` SDK's asyncio index client (SDK 10: `AsyncIndex`).

One Pinecone index (PINECONE_HOST) holds every collection: a collection's namespace `ns` is the
Pinecone namespace `<collection id>:<ns>`, so collections never see each other and a deleted then
re-created name starts empty. A Pinecone index has one dimension and one metric, so a collection
must match them (`create` refuses otherwise).

What Pinecone does not give, and how it is made up here:
- deleted_count: Pinecone's delete answers nothing, so the ids are looked up first (fetch for ids,
  fetch_by_metadata for a filter, the namespace's stats for delete_all). A dry run stops there.
- Atomicity: Pinecone has no transactions; an upsert larger than one request is sent in batches,
  and a failed batch is reported as unavailable (what landed stays, as Pinecone's own client does).
- Euclidean: Pinecone scores the squared distance; callers get the distance, as docs/api.md says.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from pinecone import AsyncIndex, PineconeError

from daemon.stores.errors import Unavailable
from daemon.stores.vectors import IndexStatus, Deleted, Hit, Record, Refused, Space

BATCH = 100  # vectors per upsert request: 100 x 4096 floats stays under Pinecone's 2 MB request cap
FETCH_BATCH = 100  # ids per fetch: they travel in the URL
LIST_MAX = 100  # Pinecone's largest list page


def _pinecone_namespace(space: Space, namespace: str) -> str:
    return f"{space.id}:{namespace}"


class PineconeVectorStore:
    name = "pinecone"
    keywords = False  # no text is kept here: the service refuses text and keyword search on this backend

    def __init__(self, api_key: str, host: str, timeout_s: float = 30.0) -> None:
        self._index = AsyncIndex(host=host, api_key=api_key, timeout=timeout_s)

    async def _call(self, coro: Any) -> Any:
        try:
            return await coro
        except PineconeError as exc:
            raise Unavailable("pinecone", type(exc).__name__) from exc

    async def create(self, space: Space) -> None:
        stats = await self._call(self._index.describe_index_stats())
        if stats.dimension is not None and stats.dimension != space.dimension:
            raise Refused(f"the Pinecone index holds vectors of dimension {stats.dimension}")
        if stats.metric is not None and stats.metric != space.metric and not (
            stats.metric == "dotproduct" and space.metric == "dot"
        ):
            raise Refused(f"the Pinecone index uses the {stats.metric} metric")

    async def namespaces(self, space: Space) -> dict[str, int]:
        stats = await self._call(self._index.describe_index_stats())
        prefix = f"{space.id}:"
        return {
            name[len(prefix) :]: summary.vector_count
            for name, summary in stats.namespaces.items()
            if name.startswith(prefix) and summary.vector_count
        }

    async def indexes(self, space: Space) -> dict[str, IndexStatus]:
        return {}  # Pinecone's index is its own business; it reports no width or recall

    def loaded_indexes(self) -> list[tuple[str, str, IndexStatus]]:
        return []

    def memory(self) -> list[tuple[str, str, int, int]]:
        return []  # the vectors live in Pinecone

    async def drop(self, space: Space) -> None:
        for namespace in await self.namespaces(space):
            await self._call(self._index.delete(delete_all=True, namespace=_pinecone_namespace(space, namespace)))

    async def upsert(self, space: Space, namespace: str, records: list[Record]) -> int:
        vectors = [
            {"id": r.id, "values": [float(x) for x in r.values], **({"metadata": r.metadata} if r.metadata else {})}
            for r in records
        ]
        target = _pinecone_namespace(space, namespace)
        if len(vectors) <= BATCH:
            result = await self._call(self._index.upsert(vectors=vectors, namespace=target))
        else:
            result = await self._call(
                self._index.upsert(vectors=vectors, namespace=target, batch_size=BATCH, show_progress=False)
            )
            if result.failed_item_count:
                raise Unavailable("pinecone", f"{result.failed_item_count} of {len(vectors)} vectors not written")
        return result.upserted_count

    async def query(
        self,
        space: Space,
        namespace: str,
        vector: np.ndarray,
        top_k: int,
        filter: dict[str, Any] | None = None,
        include_values: bool = False,
        include_metadata: bool = False,
    ) -> list[Hit]:
        result = await self._call(
            self._index.query(
                top_k=top_k,
                vector=[float(x) for x in vector],
                namespace=_pinecone_namespace(space, namespace),
                filter=filter or None,
                include_values=include_values,
                include_metadata=include_metadata,
            )
        )
        euclidean = space.metric == "euclidean"
        return [
            Hit(
                id=m.id,
                score=math.sqrt(max(0.0, m.score)) if euclidean else m.score,
                values=np.asarray(m.values, dtype=np.float32) if include_values else None,
                metadata=(m.metadata or None) if include_metadata else None,
            )
            for m in result.matches
        ]

    async def fetch(self, space: Space, namespace: str, ids: list[str]) -> dict[str, Record]:
        found: dict[str, Record] = {}
        target = _pinecone_namespace(space, namespace)
        for start in range(0, len(ids), FETCH_BATCH):
            result = await self._call(self._index.fetch(ids=ids[start : start + FETCH_BATCH], namespace=target))
            for vid, v in result.vectors.items():
                found[vid] = Record(vid, np.asarray(v.values, dtype=np.float32), v.metadata or None)
        return {i: found[i] for i in ids if i in found}

    async def list_ids(
        self, space: Space, namespace: str, prefix: str | None, limit: int, cursor: str | None
    ) -> tuple[list[str], str | None]:
        result = await self._call(
            self._index.list_paginated(
                prefix=prefix or None,
                limit=min(limit, LIST_MAX),
                pagination_token=cursor,
                namespace=_pinecone_namespace(space, namespace),
            )
        )
        ids = [item.id for item in result.vectors if item.id is not None]
        return ids, result.pagination.next if result.pagination else None

    async def _ids_matching(self, target: str, filter: dict[str, Any]) -> list[str]:
        ids: list[str] = []
        token = None
        while True:
            page = await self._call(
                self._index.fetch_by_metadata(filter=filter, namespace=target, limit=1000, pagination_token=token)
            )
            ids.extend(page.vectors)
            token = page.pagination.next if page.pagination else None
            if not token:
                return ids

    async def delete(
        self,
        space: Space,
        namespace: str,
        ids: list[str] | None = None,
        filter: dict[str, Any] | None = None,
        delete_all: bool = False,
        dry_run: bool = False,
    ) -> Deleted:
        target = _pinecone_namespace(space, namespace)
        if delete_all:
            count = (await self.namespaces(space)).get(namespace, 0)
            if not dry_run and count:
                await self._call(self._index.delete(delete_all=True, namespace=target))
            return Deleted(count, None)
        if ids is not None:
            doomed = list(await self.fetch(space, namespace, list(dict.fromkeys(ids))))
        else:
            doomed = await self._ids_matching(target, filter or {})
        if not dry_run:
            for start in range(0, len(doomed), 1000):
                await self._call(self._index.delete(ids=doomed[start : start + 1000], namespace=target))
        return Deleted(len(doomed), doomed)

    async def ping(self) -> None:
        await self._call(self._index.describe_index_stats())

    async def close(self) -> None:
        await self._index.close()
