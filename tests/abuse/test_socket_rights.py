"""WebSockets may not keep rights their credential lost, nor hear what their subscriber may not: each
attack of issue 21 on a real app, its state in-process and in Redis. Every event is authorised as it
is delivered (live or replayed) against the subscriber's rights now and the event's owner then."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from daemon.app import create_app
from daemon.settings import Settings
from tests.api.test_realtime import closed_with, connect, receive, subscribe
from tests.helpers import signed_up

COLLECTION = {"name": "handoff", "dimension": 2, "metric": "dot"}


@pytest.fixture(params=["memory", "redis"])
async def rt(request: pytest.FixtureRequest, aiohttp_client, data_dir):
    options = {}
    if request.param == "redis":
        options = {"redis_url": request.getfixturevalue("redis_url"),
                   "redis_prefix": request.getfixturevalue("redis_prefix")}
    return await aiohttp_client(create_app(Settings.from_env({}, data_dir=data_dir, **options)))


async def _key(rt, actor, scopes: list[str], expires_at: datetime | None = None) -> str:
    body = {"name": "feed", "scopes": scopes}
    if expires_at is not None:
        body["expires_at"] = expires_at.isoformat()
    created = await rt.post("/api/v1/auth/api-keys", json=body, headers=actor.headers)
    assert created.status == 201, await created.text()
    return (await created.json())["key"]


async def _events_until(ws, last_event: str) -> list[dict]:
    """The events received up to and including the first `last_event`."""
    seen = []
    while True:
        message = await receive(ws)
        if message["type"] == "event":
            seen.append(message)
            if message["event"] == last_event:
                return seen


async def _an_event_of_ones_own(rt, actor) -> dict:
    """An event the actor heard, older than everything that follows: a `since` to replay from."""
    watching = await connect(rt, actor)
    await subscribe(watching, "me")
    await rt.patch("/api/v1/users/me", json={"display_name": "Alice"}, headers=actor.headers)
    [older] = await _events_until(watching, "user.updated")
    await watching.close()
    return older


async def test_an_api_key_socket_closes_when_the_key_expires(rt):
    alice = await signed_up(rt, "alice@example.com")
    key = await _key(rt, alice, ["read"], datetime.now(UTC) + timedelta(seconds=2))
    ws = await connect(rt, headers={"Authorization": f"Bearer {key}"})
    assert (await subscribe(ws, "me"))["type"] == "subscribed"
    assert await closed_with(ws) == 4401


async def test_a_demoted_admins_key_socket_stops_hearing_the_admin_topic(rt):
    root = await signed_up(rt, "root@example.com", "admin")
    bob = await signed_up(rt, "bob@example.com", "admin")
    key = await _key(rt, bob, ["read", "write", "admin"])
    ws = await connect(rt, headers={"Authorization": f"Bearer {key}"})
    assert (await subscribe(ws, "users", "me"))["topics"] == ["users", "me"]
    demoted = await rt.patch(f"/api/v1/users/{bob.id}", json={"role": "user"}, headers=root.headers)
    assert demoted.status == 200, await demoted.text()
    created = await rt.post("/api/v1/users", json={"email": "carol@example.com", "password": "a long password",
                                                   "role": "user"}, headers=root.headers)
    assert created.status == 201
    marker = await rt.patch(f"/api/v1/users/{bob.id}", json={"display_name": "marker"}, headers=root.headers)
    assert marker.status == 200
    heard = []
    while True:  # everything up to the marker, which reaches bob on `me`
        message = await receive(ws)
        heard.append(message)
        if message.get("event") == "user.updated" and message["data"].get("display_name") == "marker":
            break
    assert not [m for m in heard if m.get("event") == "user.created"], heard
    assert {"type": "error", "code": "forbidden", "topic": "users"} in [
        {k: m.get(k) for k in ("type", "code", "topic")} for m in heard]
    refused = await subscribe(ws, "users")
    assert (refused["type"], refused["code"]) == ("error", "forbidden")
    await ws.close()


async def test_a_since_replay_holds_no_event_of_a_collections_previous_owner(rt):
    alice = await signed_up(rt, "alice@example.com")
    bob = await signed_up(rt, "bob@example.com")
    older = await _an_event_of_ones_own(rt, alice)

    assert (await rt.post("/api/v1/collections", json=COLLECTION, headers=bob.headers)).status == 201
    upserted = await rt.post("/api/v1/collections/handoff/upsert", headers=bob.headers,
                             json={"namespace": "hr-payroll", "vectors": [{"id": "salary-ceo", "values": [1, 2]}]})
    assert upserted.status == 200, await upserted.text()
    assert (await rt.delete("/api/v1/collections/handoff", headers=bob.headers)).status == 204
    assert (await rt.post("/api/v1/collections", json=COLLECTION, headers=alice.headers)).status == 201

    ws = await connect(rt, alice)
    assert (await subscribe(ws, "collections/handoff", since=older["id"]))["type"] == "subscribed"
    replayed = await _events_until(ws, "collection.created")
    assert [(e["event"], e["data"]["owner_id"]) for e in replayed] == [("collection.created", alice.id)], replayed
    await ws.close()


async def test_a_replay_on_me_holds_only_the_subscribers_own_collections(rt):
    alice = await signed_up(rt, "alice@example.com")
    bob = await signed_up(rt, "bob@example.com")
    older = await _an_event_of_ones_own(rt, alice)
    await rt.post("/api/v1/collections", json=COLLECTION, headers=bob.headers)
    await rt.delete("/api/v1/collections/handoff", headers=bob.headers)
    await rt.post("/api/v1/collections", json=COLLECTION, headers=alice.headers)
    ws = await connect(rt, alice)
    await subscribe(ws, "me", since=older["id"])
    replayed = await _events_until(ws, "collection.created")
    assert [(e["event"], e["data"]["owner_id"]) for e in replayed] == [("collection.created", alice.id)], replayed
    await ws.close()
