"""/api/v1/collections over HTTP with real logins, on SQLite and PostgreSQL: every route of docs/api.md's
Vectors table, who sees what, API-key scopes, bad input, and the events each change raises."""

from __future__ import annotations

import asyncio
import base64
import io

import struct

import orjson
import pytest

from daemon.context import EVENTS, VECTORS
from daemon.services.principal import Principal, scopes_for_role
from tests.helpers import problem

BASE = "/api/v1/collections"


def principal(actor, role="user") -> Principal:
    return Principal(actor.id, role, scopes=scopes_for_role(role))


async def make_collection(api, actor, name="docs", dimension=3, metric="cosine"):
    response = await api.post(BASE, json={"name": name, "dimension": dimension, "metric": metric}, headers=actor.headers)
    assert response.status == 201, await response.text()
    return await response.json()


async def upsert(api, actor, vectors, name="docs", **extra):
    return await api.post(f"{BASE}/{name}/upsert", json={"vectors": vectors, **extra}, headers=actor.headers)


async def api_key(api, actor, scopes):
    response = await api.post("/api/v1/auth/api-keys", json={"name": "script", "scopes": scopes}, headers=actor.headers)
    assert response.status == 201, await response.text()
    return {"Authorization": f"Bearer {(await response.json())['key']}"}


async def test_a_collection_is_created_filled_searched_and_described(api, alice):
    created = await make_collection(api, alice)
    assert created["count"] == 0 and created["owner_id"] == alice.id and created["metric"] == "cosine"
    vectors = [
        {"id": "a", "values": [1, 0, 0], "metadata": {"kind": "x", "n": 1}},
        {"id": "b", "values": [0, 1, 0], "metadata": {"kind": "y", "n": 2, "tags": ["p", "q"]}},
        {"id": "c", "values": [0.9, 0.1, 0]},
    ]
    response = await upsert(api, alice, vectors)
    assert (await response.json()) == {"upserted_count": 3}
    await upsert(api, alice, [{"id": "z", "values": [0, 0, 1]}], namespace="other")

    response = await api.post(f"{BASE}/docs/query", json={"vector": [1, 0, 0], "top_k": 2}, headers=alice.headers)
    body = await response.json()
    assert body["namespace"] == "" and [m["id"] for m in body["matches"]] == ["a", "c"]
    assert body["matches"][0]["score"] == pytest.approx(1.0) and "values" not in body["matches"][0]

    response = await api.post(
        f"{BASE}/docs/query",
        json={"id": "a", "top_k": 3, "filter": {"n": {"$gte": 2}}, "include_metadata": True, "include_values": True},
        headers=alice.headers,
    )
    body = await response.json()
    assert body["matches"] == [
        {"id": "b", "score": pytest.approx(0.0, abs=1e-6), "values": [0, 1, 0], "metadata": {"kind": "y", "n": 2, "tags": ["p", "q"]}}
    ]

    response = await api.post(f"{BASE}/docs/query", json={"id": "nope"}, headers=alice.headers)
    assert (await response.json()) == {"matches": [], "namespace": ""}  # as Pinecone answers

    response = await api.post(f"{BASE}/docs/fetch", json={"ids": ["a", "nope"]}, headers=alice.headers)
    assert (await response.json()) == {
        "vectors": {"a": {"id": "a", "values": [1, 0, 0], "metadata": {"kind": "x", "n": 1}}},
        "namespace": "",
    }

    described = await (await api.get(f"{BASE}/docs", headers=alice.headers)).json()
    assert described["count"] == 4 and described["namespaces"] == {"": 3, "other": 1}
    listed = await (await api.get(BASE, headers=alice.headers)).json()
    assert [c["name"] for c in listed["items"]] == ["docs"] and listed["next_cursor"] is None


async def test_listing_ids_pages_with_a_cursor_and_a_prefix(api, alice):
    await make_collection(api, alice, dimension=2)
    await upsert(api, alice, [{"id": f"doc-{i:02d}", "values": [1, i]} for i in range(25)] + [{"id": "x", "values": [1, 1]}])
    seen, cursor = [], None
    while True:
        query = {"prefix": "doc-", "limit": "10", **({"cursor": cursor} if cursor else {})}
        body = await (await api.get(f"{BASE}/docs/vectors", params=query, headers=alice.headers)).json()
        seen += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"doc-{i:02d}" for i in range(25)]
    response = await api.get(f"{BASE}/docs/vectors", params={"cursor": "!!"}, headers=alice.headers)
    assert response.status == 422


async def test_deleting_by_ids_filter_or_all_reports_counts_and_dry_run_changes_nothing(api, alice):
    await make_collection(api, alice, dimension=2)
    await upsert(api, alice, [{"id": f"v{i}", "values": [1, i], "metadata": {"even": i % 2 == 0}} for i in range(10)])

    async def delete(body):
        response = await api.post(f"{BASE}/docs/delete", json=body, headers=alice.headers)
        assert response.status == 200, await response.text()
        return (await response.json())["deleted_count"]

    assert await delete({"filter": {"even": True}, "dry_run": True}) == 5
    assert (await (await api.get(f"{BASE}/docs", headers=alice.headers)).json())["count"] == 10
    assert await delete({"filter": {"even": True}}) == 5
    assert await delete({"ids": ["v1", "v2", "v3"]}) == 2
    assert await delete({"delete_all": True}) == 3
    assert (await (await api.get(f"{BASE}/docs", headers=alice.headers)).json())["count"] == 0
    response = await api.delete(f"{BASE}/docs", headers=alice.headers)
    assert response.status == 204
    assert (await api.get(f"{BASE}/docs", headers=alice.headers)).status == 404


async def test_only_the_owner_and_admins_see_a_collection(api, alice, bob, admin):
    await make_collection(api, alice)
    await upsert(api, alice, [{"id": "a", "values": [1, 0, 0]}])
    routes = [
        ("GET", f"{BASE}/docs", None),
        ("POST", f"{BASE}/docs/upsert", {"vectors": [{"id": "b", "values": [0, 1, 0]}]}),
        ("POST", f"{BASE}/docs/query", {"vector": [1, 0, 0]}),
        ("POST", f"{BASE}/docs/fetch", {"ids": ["a"]}),
        ("GET", f"{BASE}/docs/vectors", None),
        ("POST", f"{BASE}/docs/delete", {"ids": ["a"], "dry_run": True}),
        ("DELETE", f"{BASE}/docs", None),
    ]
    for method, path, body in routes:
        response = await api.request(method, path, json=body, headers=bob.headers)
        assert (response.status, (await problem(response))["code"]) == (404, "not_found"), (method, path)
    assert (await (await api.get(BASE, headers=bob.headers)).json())["items"] == []
    # The same rule decides who may subscribe to the collection's topic.
    service = api.app[VECTORS]
    assert [await service.can_read(p, "docs") for p in (principal(alice), principal(bob), principal(admin, "admin"))] == [
        True, False, True
    ]
    for method, path, body in routes:
        response = await api.request(method, path, json=body, headers=admin.headers)
        assert response.status in (200, 204), (method, path, await response.text())
    assert (await api.get(f"{BASE}/docs")).status == 401


async def test_api_key_scopes_split_reading_from_writing(api, alice):
    await make_collection(api, alice)
    await upsert(api, alice, [{"id": "a", "values": [1, 0, 0]}])
    reader = await api_key(api, alice, ["read"])
    writer = await api_key(api, alice, ["write"])
    reads = [
        ("GET", f"{BASE}", None),
        ("GET", f"{BASE}/docs", None),
        ("POST", f"{BASE}/docs/query", {"vector": [1, 0, 0]}),
        ("POST", f"{BASE}/docs/fetch", {"ids": ["a"]}),
        ("GET", f"{BASE}/docs/vectors", None),
    ]
    writes = [
        ("POST", f"{BASE}", {"name": "more", "dimension": 2}),
        ("POST", f"{BASE}/docs/upsert", {"vectors": [{"id": "b", "values": [0, 1, 0]}]}),
        ("POST", f"{BASE}/docs/delete", {"ids": ["b"]}),
        ("DELETE", f"{BASE}/more", None),
    ]
    for method, path, body in reads:
        assert (await api.request(method, path, json=body, headers=reader)).status == 200, path
        response = await api.request(method, path, json=body, headers=writer)
        assert (response.status, (await problem(response))["code"]) == (403, "forbidden"), path
    for method, path, body in writes:
        response = await api.request(method, path, json=body, headers=reader)
        assert (response.status, (await problem(response))["code"]) == (403, "forbidden"), path
        assert (await api.request(method, path, json=body, headers=writer)).status in (200, 201, 204), path


BAD_INPUT = [
    # (route, body, status, field named in errors)
    ("upsert", {"vectors": [{"id": "a", "values": [1, 0]}]}, 422, "vectors.0.values"),
    ("upsert", {"vectors": [{"id": "a", "values": [1, 0, 0]}, {"id": "b", "values": [0, 0, 0]}]}, 422, "vectors.1.values"),
    ("upsert", {"vectors": [{"id": "a", "values": [1, "2", 0]}]}, 422, "vectors.0.values.1"),
    ("upsert", {"vectors": [{"id": "a", "values": [1e300, 0, 0]}]}, 422, "vectors.0.values"),  # beyond float32
    ("query", {"vector": [0, -1e39, 0]}, 422, "vector"),
    ("query", {"vector": [0, 0, 0]}, 422, "vector"),  # zero, in cosine
    ("query", {"vector": [0, 1, True]}, 422, "vector.2"),
    ("upsert", {"vectors": [{"id": "a", "values": [1, 0, 0]} for _ in range(1001)]}, 422, "vectors"),
    ("upsert", {"vectors": []}, 422, "vectors"),
    ("upsert", {"vectors": [{"id": "a", "values": [1, 0, 0]}, {"id": "a", "values": [0, 1, 0]}]}, 422, "vectors.1.id"),
    ("upsert", {"vectors": [{"id": "a", "values": [1, 0, 0], "metadata": {"x": {"nested": 1}}}]}, 422, "vectors.0.metadata.x"),
    ("upsert", {"vectors": [{"id": "a", "values": [1, 0, 0], "metadata": {"x": [1, 2]}}]}, 422, "vectors.0.metadata.x"),
    ("upsert", {"vectors": [{"id": "a", "values": [1, 0, 0], "metadata": {"$x": 1}}]}, 422, "vectors.0.metadata.$x"),
    ("upsert", {"vectors": [{"id": "a", "values": [1, 0, 0], "metadata": {"x": "y" * 41_000}}]}, 422, "vectors.0.metadata"),
    ("upsert", {"vectors": [{"id": "é", "values": [1, 0, 0]}]}, 422, "vectors.0.id"),
    ("query", {"vector": [1, 0]}, 422, "vector"),
    ("query", {"vector": [1, 0, 0], "top_k": 0}, 422, "top_k"),
    ("query", {"vector": [1, 0, 0], "top_k": 1001}, 422, "top_k"),
    ("query", {"top_k": 3}, 422, "body"),
    ("query", {"vector": [1, 0, 0], "id": "a"}, 422, "body"),
    ("query", {"vector": [1, 0, 0], "filter": {"n": {"$gt": "x"}}}, 422, "filter.n.$gt"),
    ("query", {"vector": [1, 0, 0], "filter": {"$or": [{"n": 1}, {"n": {"$regex": "x"}}]}}, 422, "filter.$or[1].n.$regex"),
    ("upsert", {"vectors": [{"id": "a", "values": [1, True, 0]}]}, 422, "vectors.0.values.1"),  # not 1
    ("upsert", {"vectors": [{"id": "a", "values": "1,0,0"}]}, 422, "vectors.0.values"),
    # The upsert route reads arrays of numbers straight into numpy (pipeline/vector_json.py): the same faults
    ("upsert", {"vectors": [{"id": "a", "values": [[1], [0], [0]]}]}, 422, "vectors.0.values.0"),  # flattens to 3
    ("upsert", {"vectors": [{"id": "a", "values": [[1, 0, 0]]}]}, 422, "vectors.0.values"),
    ("upsert", {"vectors": [{"id": "a", "values": [1, None, 0]}]}, 422, "vectors.0.values.1"),
    ("upsert", {"vectors": [{"id": "a", "values": [1, {"x": 0}, 0]}]}, 422, "vectors.0.values.1"),
    ("upsert", {"vectors": [{"id": "a", "values": []}]}, 422, "vectors.0.values"),
    ("upsert", {"vectors": [{"id": "a", "values": [0, 1e39, 0]}]}, 422, "vectors.0.values"),  # float64, not float32
    ("upsert", {"vectors": [{"id": "a", "values": [0, -(10**40), 0]}]}, 422, "vectors.0.values"),  # beyond 64 bits and float32
    ("upsert", {"vectors": [{"id": "a", "values": [0, 0, 0]}]}, 422, "vectors.0.values"),  # zero, in cosine
    ("upsert", {"vectors": [{"id": "a", "values": [1, 0, 0]}, {"id": "b", "values": [1, 0]}]}, 422, "vectors.1.values"),
    ("upsert", {"vectors": [{"id": "a"}]}, 422, "vectors.0"),
    ("upsert", {"vectors": [{"id": "a", "values": [1, 0, 0], "values_b64": "AACAPwAAAAAAAAAA"}]}, 422, "vectors.0"),
    ("upsert", {"vectors": [{"id": "a", "values_b64": "AACAPwAAAAA="}]}, 422, "vectors.0.values_b64"),  # 2 floats
    ("upsert", {"vectors": [{"id": "a", "values_b64": "not base64!"}]}, 422, "vectors.0.values_b64"),
    ("upsert", {"vectors": [{"id": "a", "values_b64": "AADAfwAAAAAAAAAA"}]}, 422, "vectors.0.values_b64"),  # NaN
    ("fetch", {"ids": []}, 422, "ids"),
    ("delete", {}, 422, "body"),
    ("delete", {"ids": ["a"], "delete_all": True}, 422, "body"),
    ("delete", {"filter": {}}, 422, "filter"),
    ("delete", {"filter": {"n": {"$in": []}}}, 422, "filter.n.$in"),
]


@pytest.mark.parametrize(("route", "body", "status", "field"), BAD_INPUT)
async def test_bad_input_is_refused_naming_the_field_and_writes_nothing(api, alice, route, body, status, field):
    await make_collection(api, alice)
    response = await api.post(f"{BASE}/docs/{route}", json=body, headers=alice.headers)
    found = await problem(response)
    assert response.status == status, found
    assert field in [e["field"] for e in found["errors"]], found
    assert (await (await api.get(f"{BASE}/docs", headers=alice.headers)).json())["count"] == 0


async def test_json_numbers_are_stored_as_their_float32_values(api, alice):
    """The upsert route reads arrays of numbers without Python floats (pipeline/vector_json.py): integers,
    exponents, negative zero and a body with a '[' in a string all land as float32 of what was sent."""
    import numpy as np

    await make_collection(api, alice, dimension=4)
    sent = {"a": [1, -0.0, 2.5e-3, 123456789], "b": [0.1, 1e-30, -3.4e38, 7], "c": [1e-46, 2, 3, 4]}
    raw = orjson.dumps({"vectors": [{"id": i, "values": v, "metadata": {"tag": "[x]"}} for i, v in sent.items()]})
    response = await api.post(f"{BASE}/docs/upsert", data=raw, headers={**alice.headers, "Content-Type": "application/json"})
    assert response.status == 200, await response.text()
    response = await api.post(f"{BASE}/docs/fetch", json={"ids": list(sent)}, headers=alice.headers)
    found = (await response.json())["vectors"]
    for i, values in sent.items():
        assert found[i]["values"] == np.asarray(values, dtype=np.float32).tolist()
        assert found[i]["metadata"] == {"tag": "[x]"}


async def test_collection_rules_conflict_unknown_and_names(api, alice, bob):
    await make_collection(api, alice)
    response = await api.post(BASE, json={"name": "docs", "dimension": 3}, headers=bob.headers)
    assert (response.status, (await problem(response))["code"]) == (409, "conflict")
    for body in ({"name": "Docs", "dimension": 3}, {"name": "-x", "dimension": 3}, {"name": "ok", "dimension": 0},
                 {"name": "ok", "dimension": 4097}, {"name": "ok", "dimension": 3, "metric": "manhattan"},
                 {"name": "ok", "dimension": 3, "precision": "i4"}):
        assert (await api.post(BASE, json=body, headers=alice.headers)).status == 422, body
    response = await api.post(f"{BASE}/nope/query", json={"vector": [1]}, headers=alice.headers)
    assert (response.status, (await problem(response))["code"]) == (404, "not_found")


async def test_an_upsert_body_may_reach_8_mib_but_not_more(api, alice):
    await make_collection(api, alice, dimension=1000)
    # About 1.3 MiB: over the default 1 MiB limit, inside the upsert limit.
    def body(count: int) -> io.BytesIO:
        return io.BytesIO(orjson.dumps({"vectors": [{"id": f"v{i}", "values": [0.123456789] * 1000} for i in range(count)]}))

    headers = {**alice.headers, "Content-Type": "application/json"}
    response = await api.post(f"{BASE}/docs/upsert", data=body(100), headers=headers)
    assert response.status == 200, await response.text()
    response = await api.post(f"{BASE}/docs/upsert", data=body(800), headers=headers)  # about 9.6 MB
    assert (response.status, (await problem(response))["code"]) == (413, "payload_too_large")


async def test_changes_raise_events_with_ids_and_counts_but_no_values(api, alice):
    bus = api.app[EVENTS]
    heard = []

    async def listen():
        async for event in bus.listen():
            heard.append(event)

    task = asyncio.create_task(listen())
    await asyncio.sleep(0)
    await make_collection(api, alice)
    await upsert(api, alice, [{"id": "a", "values": [1, 0, 0], "metadata": {"secret": "s"}}, {"id": "b", "values": [0, 1, 0]}])
    await api.post(f"{BASE}/docs/delete", json={"ids": ["a"]}, headers=alice.headers)
    await api.delete(f"{BASE}/docs", headers=alice.headers)
    for _ in range(50):
        if len([e for e in heard if e.topic == "collections/docs"]) >= 4:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    mine = [(e.event, e.data) for e in heard if e.topic == "collections/docs"]
    assert [name for name, _ in mine] == ["collection.created", "vectors.upserted", "vectors.deleted", "collection.deleted"]
    assert mine[1][1] == {"collection": "docs", "namespace": "", "count": 2, "ids": ["a", "b"], "owner_id": alice.id}
    assert mine[2][1]["ids"] == ["a"] and mine[2][1]["count"] == 1
    assert "values" not in str(mine) and "secret" not in str(mine)


async def test_the_collection_list_pages_by_name_and_refuses_a_forged_cursor(api, alice, bob):
    for name in ("c-two", "a-one", "e-three"):
        await make_collection(api, alice, name=name)
    await make_collection(api, bob, name="b-bobs")
    first = await (await api.get(BASE, params={"limit": "2"}, headers=alice.headers)).json()
    assert [c["name"] for c in first["items"]] == ["a-one", "c-two"] and first["next_cursor"]
    rest = await (await api.get(BASE, params={"limit": "2", "cursor": first["next_cursor"]}, headers=alice.headers)).json()
    assert [c["name"] for c in rest["items"]] == ["e-three"] and rest["next_cursor"] is None
    response = await api.get(BASE, params={"cursor": "AAAA"}, headers=alice.headers)
    assert (response.status, (await problem(response))["code"]) == (422, "validation_failed")
