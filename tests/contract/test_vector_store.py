"""One contract for every vector store: local (on SQLite and on PostgreSQL), two replicas of the local
store on one PostgreSQL (each call to the other one, in turn), Pinecone through its stand-in server, and
real Pinecone when PINECONE_API_KEY and PINECONE_HOST are set.

Search results are compared with a numpy brute force (float64) on seeded random data, for every
metric, with and without filters: the same ids in the same order, the same scores.
"""

from __future__ import annotations

import asyncio

import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable

import numpy as np
import pytest
from aiohttp.test_utils import TestServer

from daemon.stores.sql import open_database
from daemon.stores.sql.migrate import migrate
from daemon.stores.vectors import Record, Refused, Space, VectorStore
from daemon.stores.vectors.filters import check
from daemon.stores.vectors.local import LocalVectorStore
from daemon.stores.vectors.pinecone import PineconeVectorStore
from daemon.stores.vectors.replicated import ReplicatedVectorStore
from tests.standins.pinecone_server import PineconeStandIn

METRICS = ["cosine", "dot", "euclidean"]
DIM = 16
N = 300
COLORS = ["red", "green", "blue", "cyan", "black"]
TAGS = ["t0", "t1", "t2", "t3"]

MakeStore = Callable[[int, str], Awaitable[tuple[VectorStore, Space]]]

# Every operator, alone and nested, selective and broad.
FILTERS = [
    {"color": "red"},
    {"color": {"$eq": "blue"}},
    {"color": {"$ne": "blue"}},
    {"size": {"$gt": 90}},
    {"size": {"$gte": 50}, "price": {"$lt": 0.5}},
    {"price": {"$lte": 0.05}},
    {"color": {"$in": ["red", "cyan"]}},
    {"color": {"$nin": ["red", "cyan", "black"]}},
    {"tags": "t1"},
    {"tags": {"$in": ["t2", "t3"]}},
    {"flag": {"$exists": False}},
    {"flag": True},
    {"$and": [{"color": "green"}, {"$or": [{"size": {"$lt": 20}}, {"flag": False}]}]},
    {"$or": [{"color": "black", "size": {"$gt": 70}}, {"$and": [{"tags": "t0"}, {"price": {"$gte": 0.9}}]}]},
    {"size": 7},  # matches a handful: fewer than top_k
]


def dataset(seed: int = 7, n: int = N, dim: int = DIM) -> tuple[list[str], np.ndarray, list[dict]]:
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(n, dim)).astype(np.float32)
    ids = [f"v{i:04d}" for i in range(n)]
    metas = []
    for i in range(n):
        meta = {
            "color": COLORS[int(rng.integers(len(COLORS)))],
            "size": int(rng.integers(100)),
            "price": float(rng.random()),
            "tags": [t for t in TAGS if rng.random() < 0.3],
        }
        if i % 3:
            meta["flag"] = bool(i % 2)
        metas.append(meta)
    return ids, values, metas


def brute_force(values: np.ndarray, metric: str, q: np.ndarray, k: int, keep: np.ndarray | None = None):
    x, q = values.astype(np.float64), q.astype(np.float64)
    if metric == "cosine":
        scores = x @ q / (np.linalg.norm(x, axis=1) * np.linalg.norm(q))
        order = np.argsort(-scores, kind="stable")
    elif metric == "dot":
        scores = x @ q
        order = np.argsort(-scores, kind="stable")
    else:
        scores = np.linalg.norm(x - q, axis=1)
        order = np.argsort(scores, kind="stable")
    if keep is not None:
        order = order[keep[order]]
    return [(int(i), float(scores[i])) for i in order[:k]]


async def _local(data_dir, url: str | None) -> AsyncIterator[Callable]:
    db = await open_database(url, data_dir / "vectors.sqlite3")
    await migrate(db)
    store = LocalVectorStore(db, data_dir / "vectors")

    async def make(dimension: int, metric: str):
        space = Space(f"col_{secrets.token_hex(6)}", dimension, metric)
        await store.create(space)
        return store, space

    yield make
    await store.close()
    await db.close()


class _TakingTurns:
    """Two replicas as one store: each call goes to the other replica than the last, so every write is
    read, replaced and deleted by the replica that did not make it (with no event bus: what they read is
    what they catch up from the table)."""

    name = "local"

    def __init__(self, replicas: list[ReplicatedVectorStore]) -> None:
        self._replicas = replicas
        self._calls = 0

    def __getattr__(self, method: str):
        self._calls += 1
        return getattr(self._replicas[self._calls % len(self._replicas)], method)


async def _replicas(data_dir, url: str) -> AsyncIterator[Callable]:
    dbs = [await open_database(url, None) for _ in range(2)]
    await migrate(dbs[0])
    replicas = [ReplicatedVectorStore(LocalVectorStore(db, data_dir / f"replica{i}")) for i, db in enumerate(dbs)]
    store = _TakingTurns(replicas)

    async def make(dimension: int, metric: str):
        space = Space(f"col_{secrets.token_hex(6)}", dimension, metric)
        await store.create(space)
        return store, space

    yield make
    for replica, db in zip(replicas, dbs):
        await replica.close()
        await db.close()


async def _standin() -> AsyncIterator[Callable]:
    servers, stores = [], []

    async def make(dimension: int, metric: str):
        # A Pinecone index has one dimension and metric, so each space gets an index of its own.
        server = TestServer(PineconeStandIn("standin-key", dimension, metric).app(), host="127.0.0.1")
        await server.start_server()
        store = PineconeVectorStore("standin-key", f"http://127.0.0.1:{server.port}")
        servers.append(server)
        stores.append(store)
        space = Space(f"col_{secrets.token_hex(6)}", dimension, metric)
        await store.create(space)
        return store, space

    yield make
    for store in stores:
        await store.close()
    for server in servers:
        await server.close()


async def _real_pinecone() -> AsyncIterator[Callable]:
    key, host = os.environ.get("PINECONE_API_KEY"), os.environ.get("PINECONE_HOST")
    if not (key and host):
        pytest.skip("real Pinecone not configured: set PINECONE_API_KEY and PINECONE_HOST to run this contract against it")
    store = PineconeVectorStore(key, host)
    made: list[Space] = []

    async def make(dimension: int, metric: str):
        space = Space(f"col_{secrets.token_hex(6)}", dimension, metric)
        try:
            await store.create(space)
        except Refused as exc:
            pytest.skip(f"the real Pinecone index cannot hold this space: {exc}")
        made.append(space)
        return store, space

    yield make
    for space in made:
        await store.drop(space)
    await store.close()


@pytest.fixture(params=["local-sqlite", "local-postgresql", "local-replicated", "pinecone-standin", "pinecone-real"])
async def make_store(request, data_dir) -> AsyncIterator[MakeStore]:
    if request.param == "local-sqlite":
        factory = _local(data_dir, None)
    elif request.param == "local-postgresql":
        factory = _local(data_dir, request.getfixturevalue("pg_url"))
    elif request.param == "local-replicated":
        factory = _replicas(data_dir, request.getfixturevalue("pg_url"))
    elif request.param == "pinecone-standin":
        factory = _standin()
    else:
        factory = _real_pinecone()
    make = await factory.__anext__()
    yield make
    with pytest.raises(StopAsyncIteration):
        await factory.__anext__()


async def loaded(make_store: MakeStore, metric: str, namespace: str = "") -> tuple[VectorStore, Space, list, np.ndarray, list]:
    store, space = await make_store(DIM, metric)
    ids, values, metas = dataset()
    for start in range(0, N, 100):
        batch = [Record(ids[i], values[i], metas[i]) for i in range(start, min(N, start + 100))]
        assert await store.upsert(space, namespace, batch) == len(batch)
    return store, space, ids, values, metas


def assert_same_ranking(hits, expected, ids, metric):
    assert [h.id for h in hits] == [ids[i] for i, _ in expected]
    for hit, (_, score) in zip(hits, expected):
        assert hit.score == pytest.approx(score, rel=1e-4, abs=1e-4)


@pytest.mark.parametrize("metric", METRICS)
async def test_search_returns_what_brute_force_returns_with_and_without_filters(make_store, metric):
    store, space, ids, values, metas = await loaded(make_store, metric, "ns1")
    queries = np.random.default_rng(99).normal(size=(5, DIM)).astype(np.float32)
    for q in queries:
        hits = await store.query(space, "ns1", q, 10)
        assert_same_ranking(hits, brute_force(values, metric, q, 10), ids, metric)
    q = queries[0]
    for filter in FILTERS:
        keep = np.array([check(filter)(m) for m in metas])
        hits = await store.query(space, "ns1", q, 10, filter=filter, include_metadata=True)
        assert_same_ranking(hits, brute_force(values, metric, q, 10, keep), ids, metric)
        assert all(check(filter)(h.metadata) for h in hits)
        assert len(hits) == min(10, int(keep.sum())), filter  # a selective filter loses nothing


async def test_query_can_return_values_and_metadata(make_store):
    store, space, ids, values, metas = await loaded(make_store, "cosine")
    hits = await store.query(space, "", values[3], 1, include_values=True, include_metadata=True)
    assert hits[0].id == ids[3]
    np.testing.assert_allclose(hits[0].values, values[3], rtol=1e-6)
    assert hits[0].metadata == metas[3]
    bare = await store.query(space, "", values[3], 1)
    assert bare[0].values is None and bare[0].metadata is None


async def test_upsert_replaces_values_and_metadata_whole(make_store):
    store, space = await make_store(4, "dot")
    await store.upsert(space, "", [Record("a", np.array([1, 0, 0, 0], np.float32), {"old": "yes", "n": 1})])
    await store.upsert(space, "", [Record("a", np.array([0, 2, 0, 0], np.float32), {"n": 2})])
    got = (await store.fetch(space, "", ["a"]))["a"]
    np.testing.assert_array_equal(got.values, [0, 2, 0, 0])
    assert got.metadata == {"n": 2}
    assert await store.namespaces(space) == {"": 1}
    hits = await store.query(space, "", np.array([0, 1, 0, 0], np.float32), 5)
    assert [(h.id, h.score) for h in hits] == [("a", 2.0)]


async def test_upserts_sent_at_once_are_each_acknowledged_and_the_last_of_an_id_wins(make_store):
    store, space = await make_store(4, "dot")
    if store.name != "local":  # Pinecone applies concurrent requests in no promised order
        pytest.skip("concurrent upserts are the local store's promise")
    rows = np.eye(4, dtype=np.float32)
    sent = [store.upsert(space, "ns" if i % 3 == 0 else "", [Record("same", rows[i % 4] * (i + 1), {"i": i}),
                                                           Record(f"own{i}", rows[i % 4])]) for i in range(20)]
    assert await asyncio.gather(*sent) == [2] * 20
    assert await store.namespaces(space) == {"": 14, "ns": 8}
    for namespace, last in {"": 19, "ns": 18}.items():
        got = (await store.fetch(space, namespace, ["same"]))["same"]
        i = got.metadata["i"]
        np.testing.assert_array_equal(got.values, rows[i % 4] * (i + 1))  # one request's record, whole
        if isinstance(store, LocalVectorStore):  # one process applies them in the order they came
            assert i == last


async def test_namespaces_are_separate_and_counted(make_store):
    store, space = await make_store(2, "euclidean")
    await store.upsert(space, "a", [Record("x", np.array([0, 0], np.float32)), Record("y", np.array([1, 1], np.float32))])
    await store.upsert(space, "b", [Record("x", np.array([5, 5], np.float32))])
    assert await store.namespaces(space) == {"a": 2, "b": 1}
    assert [h.id for h in await store.query(space, "b", np.array([0, 0], np.float32), 10)] == ["x"]
    assert (await store.fetch(space, "b", ["x"]))["x"].values.tolist() == [5, 5]
    assert await store.query(space, "nowhere", np.array([0, 0], np.float32), 10) == []
    hits = await store.query(space, "a", np.array([1, 1], np.float32), 2)
    assert [(h.id, round(h.score, 5)) for h in hits] == [("y", 0.0), ("x", round(2**0.5, 5))]


async def test_fetch_returns_stored_vectors_and_skips_unknown_ids(make_store):
    store, space, ids, values, metas = await loaded(make_store, "cosine")
    got = await store.fetch(space, "", [ids[5], "nope", ids[7]])
    assert list(got) == [ids[5], ids[7]]
    np.testing.assert_array_equal(got[ids[7]].values, values[7])
    assert got[ids[7]].metadata == metas[7]


async def test_delete_by_ids_by_filter_and_all_with_dry_run(make_store):
    store, space, ids, values, metas = await loaded(make_store, "cosine")
    dry = await store.delete(space, "", ids=[ids[0], ids[1], "nope"], dry_run=True)
    assert dry.count == 2 and await store.namespaces(space) == {"": N}
    assert (await store.delete(space, "", ids=[ids[0], ids[1], "nope"])).count == 2
    assert await store.fetch(space, "", [ids[0], ids[1]]) == {}

    red = {i for i, m in zip(ids[2:], metas[2:]) if m["color"] == "red"}
    dry = await store.delete(space, "", filter={"color": "red"}, dry_run=True)
    assert dry.count == len(red) and set(dry.ids) == red
    assert (await store.delete(space, "", filter={"color": "red"})).count == len(red)
    assert await store.namespaces(space) == {"": N - 2 - len(red)}
    hits = await store.query(space, "", values[0], 50, include_metadata=True)
    assert all(h.metadata["color"] != "red" for h in hits)

    assert (await store.delete(space, "", delete_all=True, dry_run=True)).count == N - 2 - len(red)
    assert (await store.delete(space, "", delete_all=True)).count == N - 2 - len(red)
    assert await store.namespaces(space) == {}
    assert await store.query(space, "", values[0], 5) == []


async def test_listing_ids_walks_every_id_once_in_order(make_store):
    store, space, ids, values, metas = await loaded(make_store, "dot")
    seen, cursor = [], None
    while True:
        page, cursor = await store.list_ids(space, "", None, 40, cursor)
        seen += page
        if cursor is None:
            break
    assert seen == sorted(ids)
    page, cursor = await store.list_ids(space, "", "v001", 100, None)
    assert page == [i for i in sorted(ids) if i.startswith("v001")] and cursor is None


async def test_listing_sees_the_writes_between_its_pages(make_store):
    store, space, ids, values, metas = await loaded(make_store, "dot")

    async def rest_of(cursor: str | None) -> list[str]:
        seen = []
        while True:
            page, cursor = await store.list_ids(space, "", "v0", 30, cursor)
            seen += page
            if cursor is None:
                return seen

    first, cursor = await store.list_ids(space, "", "v0", 30, None)
    assert first == [i for i in sorted(ids) if i.startswith("v0")][:30] and cursor is not None
    # A new id after the cursor, one before it (not seen), one beyond the prefix.
    added = ["v0" + "z" * 3, "v0", "w0"]
    await store.upsert(space, "", [Record(i, values[0], None) for i in added])
    assert await rest_of(cursor) == sorted(i for i in [*ids, *added] if i.startswith("v0") and i > first[-1])
    gone = sorted(ids)[40]
    await store.delete(space, "", ids=[gone])
    assert await rest_of(cursor) == sorted(i for i in [*ids, *added] if i.startswith("v0") and i > first[-1] and i != gone)
    assert await store.list_ids(space, "", "nothing", 10, None) == ([], None)


async def test_drop_removes_every_namespace(make_store):
    store, space = await make_store(3, "cosine")
    await store.upsert(space, "a", [Record("x", np.array([1, 2, 3], np.float32))])
    await store.upsert(space, "b", [Record("y", np.array([3, 2, 1], np.float32))])
    await store.drop(space)
    assert await store.namespaces(space) == {}
    assert await store.fetch(space, "a", ["x"]) == {}
