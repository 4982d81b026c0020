"""The vector store: one interface, two backends (local index in the data dir, Pinecone).

A store keeps vectors for spaces (one per collection: its id, dimension and metric) split into
namespaces. It trusts its input: the vector service has already checked dimensions, finite values,
metadata and filters (a filter arrives as its raw dict, already known to be well-formed).
The collections themselves (name, owner) live in the SQL catalog beside it (catalog.py).

Scores: cosine similarity or dot product, highest first; for euclidean the distance, lowest first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from shared.models.vectors import DEFAULT_PRECISION

if TYPE_CHECKING:  # imported where vectors are handled: numpy alone is a fifth of an idle daemon's memory
    import numpy as np


@dataclass(frozen=True)
class Space:
    id: str
    dimension: int
    metric: str  # "cosine" | "dot" | "euclidean"
    precision: str = DEFAULT_PRECISION  # "f32" | "f16" | "bf16" | "i8": of the graph's copies (local); scores stay exact


@dataclass(frozen=True)
class IndexStatus:
    """How a namespace is searched: "exact" (every row scored), "building" (the partition's lists, or every
    row, until the graph's recall is measured) or "ready" (the graph, re-ranked exactly); `size` vectors in
    the graph, `recall` the last measured recall@10 on queries not in the graph (live checks once there are
    enough; while building, the partition's), `ef` the width."""

    state: str
    size: int
    recall: float | None
    ef: int | None


@dataclass
class Record:
    id: str
    values: np.ndarray  # float32, shape (dimension,)
    metadata: dict[str, Any] | None = None
    text: str | None = None


@dataclass
class Hit:
    id: str
    score: float
    values: np.ndarray | None = None
    metadata: dict[str, Any] | None = None


@dataclass
class Deleted:
    count: int
    ids: list[str] | None = field(default=None)  # None when the backend cannot name them cheaply


class Refused(Exception):
    """The backend cannot hold this space (e.g. a Pinecone index of another dimension)."""


class VectorStore(Protocol):
    name: str

    async def create(self, space: Space) -> None: ...

    async def drop(self, space: Space) -> None:
        """Every vector of the space, in every namespace, is gone."""

    async def upsert(self, space: Space, namespace: str, records: list[Record]) -> int:
        """All of them or none; an existing id is replaced whole (values and metadata)."""

    async def query(
        self,
        space: Space,
        namespace: str,
        vector: np.ndarray,
        top_k: int,
        filter: dict[str, Any] | None = None,
        include_values: bool = False,
        include_metadata: bool = False,
    ) -> list[Hit]: ...

    async def fetch(self, space: Space, namespace: str, ids: list[str]) -> dict[str, Record]:
        """With each record's text, where it has one."""

    # Keyword search over records' text (API.md, Text in collections); a backend without it has
    # `keywords = False` and is never asked.
    keywords: bool

    async def keyword_query(
        self, space: Space, namespace: str, text: str, top_k: int, filter: dict[str, Any] | None = None
    ) -> list[Hit]:
        """The best records for these words by BM25, best first; `filter` as in `query`."""

    async def texts(self, space: Space, namespace: str, ids: list[str]) -> dict[str, str]:
        """The text of each of these records that has one."""

    async def list_ids(
        self, space: Space, namespace: str, prefix: str | None, limit: int, cursor: str | None
    ) -> tuple[list[str], str | None]:
        """Ids in a stable order, a page at a time; the cursor is opaque."""

    async def delete(
        self,
        space: Space,
        namespace: str,
        ids: list[str] | None = None,
        filter: dict[str, Any] | None = None,
        delete_all: bool = False,
        dry_run: bool = False,
    ) -> Deleted: ...

    async def namespaces(self, space: Space) -> dict[str, int]:
        """Vector count per non-empty namespace."""

    async def indexes(self, space: Space) -> dict[str, IndexStatus]:
        """Per non-empty namespace, how it is searched; empty where the backend does not say."""

    def loaded_indexes(self) -> list[tuple[str, str, IndexStatus]]:
        """(space id, namespace, status) of what is in memory now, without I/O (for /metrics)."""

    def memory(self) -> list[tuple[str, str, int, int]]:
        """(space id, namespace, vectors, bytes) this process holds in memory, without I/O (for /metrics)."""

    async def ping(self) -> None: ...

    async def close(self) -> None: ...



def open_vector_store(
    backend: str, db: Any, directory: Any, exact_max: int, pinecone_api_key: str | None, pinecone_host: str | None
) -> VectorStore:
    if backend == "pinecone":
        if not (pinecone_api_key and pinecone_host):
            raise ValueError("the pinecone vector backend needs PINECONE_API_KEY and PINECONE_HOST")
        from daemon.stores.vectors.pinecone import PineconeVectorStore

        return PineconeVectorStore(pinecone_api_key, pinecone_host)
    local = _LocalOnFirstUse(db, directory, exact_max)
    if db.dialect == "postgresql":  # several replicas may share the table: each follows it (clock.py)
        from daemon.stores.vectors.replicated import ReplicatedVectorStore

        return ReplicatedVectorStore(local)
    return local


class _LocalOnFirstUse:
    """The local store, imported and opened when a collection first needs it: its engine (numpy and
    usearch) adds about 35 MB to a daemon, which one that serves no vectors should not pay."""

    name = "local"
    keywords = True

    def __init__(self, db: Any, directory: Any, exact_max: int) -> None:
        self._args = (db, directory, exact_max)
        self._store: Any = None

    def __getattr__(self, attribute: str) -> Any:
        if self._store is None:
            from daemon.stores.vectors.local import LocalVectorStore

            self._store = LocalVectorStore(*self._args)
        return getattr(self._store, attribute)

    def loaded_indexes(self) -> list[tuple[str, str, Any]]:
        return self._store.loaded_indexes() if self._store is not None else []

    def memory(self) -> list[tuple[str, str, int, int]]:
        return self._store.memory() if self._store is not None else []

    async def reconcile(self) -> None:
        if self._store is not None:  # nothing in memory to follow the table with
            await self._store.reconcile()

    async def ping(self) -> None:
        if self._store is not None:
            await self._store.ping()

    async def close(self) -> None:
        if self._store is not None:
            await self._store.close()
