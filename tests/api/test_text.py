"""Text in collections over HTTP (docs/api.md, Text search): the embedders this daemon can run."""

from __future__ import annotations

import asyncio

import pytest

from daemon.app import create_app
from daemon.settings import Settings
from tests import tiny_model
from tests.helpers import problem, signed_up


@pytest.fixture
async def text_api(aiohttp_client, data_dir, tmp_path, monkeypatch):
    """The real app, with the tests' own tiny model in BASTION_EMBED_MODEL_DIR and an empty fastembed cache."""
    monkeypatch.setenv("FASTEMBED_CACHE_PATH", str(tmp_path / "fastembed-cache"))
    tiny_model.write(tmp_path / "models" / tiny_model.NAME)
    settings = Settings.from_env({"BASTION_EMBED_MODEL_DIR": str(tmp_path / "models")}, data_dir=data_dir)
    return await aiohttp_client(create_app(settings))


async def test_the_embedders_list_names_the_models_this_daemon_can_run(text_api):
    carol = await signed_up(text_api, "carol@example.com")
    response = await text_api.get("/api/v1/embedders", headers=carol.headers)
    assert response.status == 200
    items = (await response.json())["items"]
    assert items[0] == {"name": tiny_model.NAME, "dimension": tiny_model.DIMENSION, "available": True}
    bge = next(item for item in items if item["name"] == "BAAI/bge-small-en-v1.5")
    assert bge == {"name": "BAAI/bge-small-en-v1.5", "dimension": 384, "available": False}


async def test_the_embedders_list_needs_a_signed_in_caller(text_api):
    response = await text_api.get("/api/v1/embedders")
    assert response.status == 401 and (await problem(response))["code"] == "unauthorized"


# --- text in collections, on SQLite and PostgreSQL ---------------------------------------------------------

BASE = "/api/v1/collections"


@pytest.fixture
async def api(aiohttp_client, sql_backend, data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("FASTEMBED_CACHE_PATH", str(tmp_path / "fastembed-cache"))
    tiny_model.write(tmp_path / "models" / tiny_model.NAME)
    settings = Settings.from_env(
        {"BASTION_EMBED_MODEL_DIR": str(tmp_path / "models")}, data_dir=data_dir, database_url=sql_backend or None
    )
    return await aiohttp_client(create_app(settings))


@pytest.fixture
async def alice(api):
    return await signed_up(api, "alice@example.com")


async def create(api, actor, **body):
    response = await api.post(BASE, json={"name": "docs", **body}, headers=actor.headers)
    assert response.status == 201, await response.text()
    return await response.json()


async def upsert(api, actor, vectors, name="docs", **extra):
    return await api.post(f"{BASE}/{name}/upsert", json={"vectors": vectors, **extra}, headers=actor.headers)


async def query(api, actor, name="docs", **body):
    response = await api.post(f"{BASE}/{name}/query", json=body, headers=actor.headers)
    assert response.status == 200, await response.text()
    return (await response.json())["matches"]


def ids(matches) -> list[str]:
    return [m["id"] for m in matches]


PLAIN = [
    {"id": "cafe", "values": [1, 0, 0], "text": "Le Café de Flore, Paris", "metadata": {"city": "paris"}},
    {"id": "bakery", "values": [0, 1, 0], "text": "A bakery in Lyon that sells café crème", "metadata": {"city": "lyon"}},
    {"id": "museum", "values": [0, 0, 1], "text": "The museum of fine arts", "metadata": {"city": "lyon"}},
]


async def test_text_is_stored_returned_and_searched_by_keyword_folded(api, alice):
    await create(api, alice, dimension=3)
    assert (await upsert(api, alice, PLAIN)).status == 200
    matches = await query(api, alice, text="CAFE", include_text=True, include_metadata=True)
    assert ids(matches) == ["cafe", "bakery"]  # the shorter text, where the word weighs more, first
    assert matches[0]["text"] == "Le Café de Flore, Paris" and matches[0]["metadata"] == {"city": "paris"}
    assert matches[0]["score"] > matches[1]["score"] > 0 and "vector_score" not in matches[0]
    assert "text" not in (await query(api, alice, text="museum"))[0]  # only when asked for

    response = await api.post(f"{BASE}/docs/fetch", json={"ids": ["museum"]}, headers=alice.headers)
    assert (await response.json())["vectors"]["museum"]["text"] == "The museum of fine arts"


async def test_filters_and_namespaces_apply_to_keyword_search(api, alice):
    await create(api, alice, dimension=3)
    await upsert(api, alice, PLAIN)
    await upsert(api, alice, [{"id": "elsewhere", "values": [1, 1, 0], "text": "café"}], namespace="other")
    assert ids(await query(api, alice, text="café", filter={"city": "lyon"})) == ["bakery"]
    assert ids(await query(api, alice, text="café", namespace="other")) == ["elsewhere"]
    assert ids(await query(api, alice, text="café", mode="keyword", top_k=1)) == ["cafe"]


async def test_a_replacement_or_a_delete_takes_the_old_text_out_at_once(api, alice):
    await create(api, alice, dimension=3)
    await upsert(api, alice, PLAIN)
    await upsert(api, alice, [{"id": "museum", "values": [0, 0, 1], "text": "A garden"}])
    assert await query(api, alice, text="museum arts") == []
    assert ids(await query(api, alice, text="garden")) == ["museum"]
    await upsert(api, alice, [{"id": "museum", "values": [0, 0, 1]}])  # replaced without text
    assert await query(api, alice, text="garden") == []

    response = await api.post(f"{BASE}/docs/delete", json={"ids": ["cafe"]}, headers=alice.headers)
    assert (await response.json())["deleted_count"] == 1
    assert ids(await query(api, alice, text="café")) == ["bakery"]
    await api.post(f"{BASE}/docs/delete", json={"delete_all": True}, headers=alice.headers)
    assert await query(api, alice, text="café") == []


async def test_hybrid_fuses_the_vector_and_keyword_rankings(api, alice):
    await create(api, alice, dimension=3)
    await upsert(api, alice, PLAIN)
    # By vector: cafe, then bakery; by keyword ("lyon"): bakery alone. Fused: bakery is in both.
    matches = await query(api, alice, vector=[1, 0.5, 0], text="lyon", top_k=3)
    assert ids(matches)[:2] == ["bakery", "cafe"]
    bakery, cafe = matches[0], matches[1]
    assert bakery["score"] == pytest.approx(1 / 62 + 1 / 61)
    assert bakery["vector_score"] == pytest.approx(0.5 / 1.25**0.5, rel=1e-5)  # cosine of [1, .5, 0] and [0, 1, 0]
    assert bakery["keyword_score"] > 0 and "keyword_score" not in cafe and cafe["vector_score"] > 0


async def test_hybrid_fuses_each_ranking_read_top_k_deep(api, alice):
    """Both rankings are read top_k deep (Elasticsearch's default window): read 50 deep, "c" and "d", third
    and fourth or fifth in each ranking, would outvote the first of each; on bench.text's labelled sets the
    deeper window ranked worse than keyword search alone."""
    await create(api, alice, dimension=2)
    records = [  # by vector from [1, 0]: a, b, c, e, d; by keyword ("lyon"): d, e, c
        {"id": "a", "values": [1, 0], "text": "w x y z"},
        {"id": "b", "values": [0.9, 0.436], "text": "w x y z"},
        {"id": "c", "values": [0.8, 0.6], "text": "lyon x y z"},
        {"id": "d", "values": [-1, 0], "text": "lyon lyon lyon z"},
        {"id": "e", "values": [-0.9, 0.436], "text": "lyon lyon y z"},
    ]
    assert (await upsert(api, alice, records)).status == 200
    matches = await query(api, alice, vector=[1, 0], text="lyon", top_k=2)
    assert ids(matches) == ["a", "d"]
    assert "keyword_score" not in matches[0] and "vector_score" not in matches[1]
    assert matches[0]["score"] == pytest.approx(1 / 61) == matches[1]["score"]


async def test_a_collection_with_a_model_embeds_text_on_upsert_and_query(api, alice):
    created = await create(api, alice, embed={"model": tiny_model.NAME})
    assert created["dimension"] == tiny_model.DIMENSION and created["embed"] == {"model": tiny_model.NAME}
    records = [
        {"id": "fruit", "text": "apple banana cherry fruit orchard"},
        {"id": "sea", "text": "river boat water sea ship"},
        {"id": "music", "text": "piano song guitar concert"},
    ]
    assert (await upsert(api, alice, records)).status == 200
    response = await api.post(f"{BASE}/docs/fetch", json={"ids": ["fruit"]}, headers=alice.headers)
    stored = (await response.json())["vectors"]["fruit"]["values"]
    assert stored == pytest.approx(tiny_model.expected("apple banana cherry fruit orchard").tolist(), abs=1e-5)

    by_meaning = await query(api, alice, text="tree apple", mode="vector")  # "tree" is in no record
    assert ids(by_meaning)[0] == "fruit"
    hybrid = await query(api, alice, text="boat harbour", top_k=2)  # the default where a model embeds
    assert ids(hybrid)[0] == "sea" and hybrid[0]["keyword_score"] > 0 and hybrid[0]["vector_score"] > 0


async def test_the_keyword_index_is_rebuilt_from_the_table_after_a_restart(aiohttp_client, sql_backend, data_dir):
    import shutil

    settings = Settings.from_env({}, data_dir=data_dir, database_url=sql_backend or None)
    first = await aiohttp_client(create_app(settings))
    alice = await signed_up(first, "alice@example.com")
    await create(first, alice, dimension=3)
    await upsert(first, alice, PLAIN)
    await first.close()
    shutil.rmtree(data_dir / "vectors" / "keywords")  # as if lost with the disk it was on

    second = await aiohttp_client(create_app(settings))
    response = await second.post("/api/v1/auth/login", json={"email": "alice@example.com", "password": alice.password})
    alice.access_token = (await response.json())["access_token"]
    assert ids(await query(second, alice, text="museum")) == ["museum"]


@pytest.mark.parametrize(("collection", "request_body", "field"), [
    ({"dimension": 3}, {"vectors": [{"id": "a", "values": [1, 0, 0], "text": "x" * (32 * 1024 + 1)}]}, "vectors.0.text"),
    ({"dimension": 3}, {"vectors": [{"id": "a", "values": [1, 0, 0], "text": "é" * (16 * 1024 + 1)}]}, "vectors.0.text"),
    ({"dimension": 3}, {"vectors": [{"id": "a", "values": [1, 0, 0]}, {"id": "b", "text": "words"}]}, "vectors.1.values"),
    ({"dimension": 3}, {"vectors": [{"id": "a", "metadata": {"k": "v"}}]}, "vectors.0"),
    ({"embed": {"model": tiny_model.NAME}}, {"vectors": [{"id": "a"}]}, "vectors.0"),
])
async def test_bad_records_are_refused_naming_the_field_and_nothing_is_stored(api, alice, collection, request_body, field):
    await create(api, alice, **collection)
    response = await api.post(f"{BASE}/docs/upsert", json=request_body, headers=alice.headers)
    assert response.status == 422
    body = await problem(response)
    assert body["code"] == "validation_failed" and field in [e["field"] for e in body["errors"]]
    described = await (await api.get(f"{BASE}/docs", headers=alice.headers)).json()
    assert described["count"] == 0


@pytest.mark.parametrize(("collection", "field"), [
    ({"embed": {"model": "nobody/no-such-model"}}, "embed.model"),
    ({"embed": {"model": "BAAI/bge-small-en-v1.5"}}, "embed.model"),  # known, but not on this machine
    ({"embed": {"model": tiny_model.NAME}, "dimension": 384}, "dimension"),
    ({}, "dimension"),
])
async def test_a_collection_naming_a_model_it_cannot_run_is_refused(api, alice, collection, field):
    response = await api.post(BASE, json={"name": "docs", **collection}, headers=alice.headers)
    assert response.status == 422
    assert field in [e["field"] for e in (await problem(response))["errors"]]
    assert (await api.get(f"{BASE}/docs", headers=alice.headers)).status == 404


@pytest.mark.parametrize(("query_body", "field"), [
    ({"text": "café", "mode": "hybrid"}, "mode"),  # no model, no vector
    ({"text": "café", "mode": "vector"}, "mode"),
    ({"text": "café", "vector": [1, 0, 0], "mode": "keyword"}, "vector"),
    ({"id": "cafe", "mode": "keyword"}, "text"),
    ({"vector": [1, 0, 0], "text": "café", "mode": "vector"}, "text"),
])
async def test_a_mode_the_collection_cannot_serve_is_refused(api, alice, query_body, field):
    await create(api, alice, dimension=3)
    await upsert(api, alice, PLAIN)
    response = await api.post(f"{BASE}/docs/query", json=query_body, headers=alice.headers)
    assert response.status == 422
    assert field in [e["field"] for e in (await problem(response))["errors"]]


async def test_a_backend_that_keeps_no_text_refuses_it_and_still_answers_vector_queries(aiohttp_client, data_dir):
    # Pinecone's data plane, as the contract suite's stand-in serves it (no Pinecone is reachable here).
    from aiohttp.test_utils import TestServer

    from tests.standins.pinecone_server import PineconeStandIn

    server = TestServer(PineconeStandIn("standin-key", 3, "cosine").app(), host="127.0.0.1")
    await server.start_server()
    try:
        settings = Settings.from_env({"BASTION_VECTOR_BACKEND": "pinecone", "PINECONE_API_KEY": "standin-key",
                                      "PINECONE_HOST": f"http://127.0.0.1:{server.port}"}, data_dir=data_dir)
        api = await aiohttp_client(create_app(settings))
        alice = await signed_up(api, "alice@example.com")
        await create(api, alice, dimension=3)
        refused = await upsert(api, alice, [{"id": "a", "values": [1, 0, 0], "text": "words"}])
        assert refused.status == 422 and (await problem(refused))["errors"][0]["field"] == "vectors.0.text"
        assert (await upsert(api, alice, [{"id": "a", "values": [1, 0, 0]}])).status == 200
        response = await api.post(f"{BASE}/docs/query", json={"text": "words"}, headers=alice.headers)
        assert response.status == 422 and "mode" in [e["field"] for e in (await problem(response))["errors"]]
        matches = await query(api, alice, vector=[1, 0, 0], include_text=True)
        assert ids(matches) == ["a"] and "text" not in matches[0]
        response = await api.post(BASE, json={"name": "emb", "embed": {"model": tiny_model.NAME}}, headers=alice.headers)
        assert response.status == 422
    finally:
        await server.close()


# --- the collection's row on the keyword query's path -------------------------------------------------------


def count_row_reads(api) -> list[str]:
    """The names whose collection row the service reads from SQL from now on."""
    from daemon.context import VECTORS

    catalog = api.server.app[VECTORS].catalog
    reads, read = [], catalog.get

    async def counted(name):
        reads.append(name)
        return await read(name)

    catalog.get = counted
    return reads


async def test_queries_on_the_embedded_database_read_the_collection_row_once_on_postgresql_each_time(
        api, alice, sql_backend):
    # On SQLite this daemon is the table's only writer; on PostgreSQL another replica may delete the
    # collection between two queries, and only SQL knows (the next test, and tests/e2e/test_vector_replicas.py).
    await create(api, alice, dimension=3)
    assert (await upsert(api, alice, PLAIN)).status == 200
    reads = count_row_reads(api)
    for _ in range(3):
        assert ids(await query(api, alice, text="café", mode="keyword")) == ["cafe", "bakery"]
    assert reads == (["docs"] * 3 if sql_backend else ["docs"])


async def test_a_collection_deleted_and_made_again_is_queried_as_the_new_one_at_once(api, alice, bob):
    await create(api, alice, dimension=3)
    assert (await upsert(api, alice, PLAIN)).status == 200
    assert ids(await query(api, alice, text="lyon")) == ["bakery"]
    assert (await api.delete(f"{BASE}/docs", headers=alice.headers)).status == 204
    response = await api.post(f"{BASE}/docs/query", json={"text": "lyon"}, headers=alice.headers)
    assert response.status == 404
    # Made again by someone else: alice no longer sees it, bob sees only his records.
    await create(api, bob, dimension=3)
    assert (await upsert(api, bob, [{"id": "b1", "values": [1, 0, 0], "text": "Lyon again"}])).status == 200
    response = await api.post(f"{BASE}/docs/query", json={"text": "lyon"}, headers=alice.headers)
    assert response.status == 404
    assert ids(await query(api, bob, text="lyon")) == ["b1"]


async def test_a_query_that_read_the_row_while_the_collection_was_deleted_does_not_keep_it(api, alice):
    from daemon.context import VECTORS

    await create(api, alice, dimension=3)
    assert (await upsert(api, alice, PLAIN)).status == 200
    catalog = api.server.app[VECTORS].catalog
    read, held, release = catalog.get, asyncio.Event(), asyncio.Event()

    async def slow(name):  # the query's read: it finds the row, then the delete runs before it returns
        row = await read(name)
        catalog.get = read
        held.set()
        await release.wait()
        return row

    catalog.get = slow
    first = asyncio.ensure_future(api.post(f"{BASE}/docs/query", json={"text": "lyon"}, headers=alice.headers))
    await held.wait()
    assert (await api.delete(f"{BASE}/docs", headers=alice.headers)).status == 204
    release.set()
    assert (await first).status == 200  # it began before the delete answered
    response = await api.post(f"{BASE}/docs/query", json={"text": "lyon"}, headers=alice.headers)
    assert response.status == 404


async def test_every_mode_answers_matches_with_only_the_fields_they_have(api, alice):
    await create(api, alice, dimension=3)
    assert (await upsert(api, alice, PLAIN)).status == 200
    keyword = await query(api, alice, text="café", mode="keyword")
    assert [sorted(m) for m in keyword] == [["id", "score"]] * 2
    hybrid = await query(api, alice, text="lyon", vector=[1, 0, 0], top_k=2)
    fields = {m["id"]: sorted(m) for m in hybrid}  # cafe is near the vector alone, bakery in both rankings
    assert fields == {"cafe": ["id", "score", "vector_score"], "bakery": ["id", "keyword_score", "score", "vector_score"]}
    full = await query(api, alice, text="museum", mode="keyword", include_values=True, include_metadata=True,
                       include_text=True)
    assert full == [{"id": "museum", "score": full[0]["score"], "values": [0.0, 0.0, 1.0],
                     "metadata": {"city": "lyon"}, "text": "The museum of fine arts"}]
