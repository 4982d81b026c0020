"""The WebSocket gateway of docs/api.md (Realtime), on a real app: in-process state and Redis."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from daemon.app import create_app
from daemon.context import EVENTS, GATEWAY, METRICS
from daemon.settings import Settings
from shared.models.events import SERVER_MESSAGE
from tests.conftest import next_event, until
from tests.helpers import login, signed_up

WS = "/api/v1/ws"
WAIT_S = 10


@pytest.fixture(params=["memory", "redis"])
def rt_settings(request: pytest.FixtureRequest, data_dir) -> Settings:
    options = {}
    if request.param == "redis":
        options = {"redis_url": request.getfixturevalue("redis_url"), "redis_prefix": request.getfixturevalue("redis_prefix")}
    return Settings.from_env({}, data_dir=data_dir, cors_origins=("https://app.example",), **options)


@pytest.fixture
async def rt(aiohttp_client, rt_settings):
    return await aiohttp_client(create_app(rt_settings))


@pytest.fixture
async def admin(rt):
    return await signed_up(rt, "admin@example.com", "admin")


@pytest.fixture
async def alice(rt):
    return await signed_up(rt, "alice@example.com")


async def receive(ws) -> dict:
    msg = await asyncio.wait_for(ws.receive(), WAIT_S)
    assert msg.type == aiohttp.WSMsgType.TEXT, (msg.type, msg.data, msg.extra)
    body = msg.json()
    SERVER_MESSAGE.validate_python(body)  # every message is one of the protocol's
    return body


async def closed_with(ws) -> int:
    """The close code the server sent, skipping anything still queued before it."""
    while True:
        msg = await asyncio.wait_for(ws.receive(), WAIT_S)
        if msg.type == aiohttp.WSMsgType.CLOSE:
            return msg.data  # ws.close_code may become 1006 if our close reply meets a closed socket
        if msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.ERROR):
            return ws.close_code


async def connect(client, actor=None, **kwargs):
    ws = await client.ws_connect(WS, **kwargs)
    if actor is not None:
        await ws.send_json({"type": "auth", "token": actor.access_token})
    return ws


async def subscribe(ws, *topics: str, since: str | None = None) -> dict:
    message = {"type": "subscribe", "topics": list(topics)}
    if since is not None:
        message["since"] = since
    await ws.send_json(message)
    return await receive(ws)


async def test_an_admin_hears_users_being_created(rt, admin):
    ws = await connect(rt, admin)
    assert await subscribe(ws, "users") == {"type": "subscribed", "topics": ["users"]}
    response = await rt.post("/api/v1/users", json={"email": "new@example.com", "password": "a long password", "role": "user"},
                             headers=admin.headers)
    assert response.status == 201
    event = await receive(ws)
    assert (event["type"], event["topic"], event["event"]) == ("event", "users", "user.created")
    assert event["data"]["email"] == "new@example.com" and "password_hash" not in event["data"]
    assert event["id"] and event["at"].endswith("Z")
    assert rt.app[METRICS].events.labels("user.created")._value.get() == 2  # the admin, then this one
    await ws.close()


async def test_the_authorization_header_authenticates_the_handshake(rt, alice):
    ws = await connect(rt, headers=alice.headers)
    assert (await subscribe(ws, "me"))["type"] == "subscribed"
    await ws.close()


@pytest.mark.parametrize("first", [
    {"type": "auth", "token": "not-a-token"},
    {"type": "subscribe", "topics": ["me"]},
    "not json",
])
async def test_a_bad_first_message_closes_4401(rt, first):
    ws = await rt.ws_connect(WS)
    await (ws.send_str(first) if isinstance(first, str) else ws.send_json(first))
    assert await closed_with(ws) == 4401


async def test_a_bad_header_token_closes_4401_and_a_malformed_header_is_401(rt):
    ws = await rt.ws_connect(WS, headers={"Authorization": "Bearer nope"})
    assert await closed_with(ws) == 4401
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await rt.ws_connect(WS, headers={"Authorization": "Basic abc"})
    assert refused.value.status == 401


async def test_no_auth_within_five_seconds_closes_4401(client):
    ws = await client.ws_connect(WS)
    assert await closed_with(ws) == 4401


async def test_a_foreign_origin_is_refused_at_the_handshake(rt, alice):
    for origin in ("https://evil.example", "null"):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await rt.ws_connect(WS, headers={"Origin": origin})
        assert refused.value.status == 403
    ws = await connect(rt, alice, headers={"Origin": "https://app.example"})
    assert (await subscribe(ws, "me"))["type"] == "subscribed"
    await ws.close()


async def test_topics_are_checked_one_by_one(rt, admin, alice):
    response = await rt.post("/api/v1/collections", json={"name": "theirs", "dimension": 2, "metric": "dot"},
                             headers=admin.headers)
    assert response.status == 201
    await rt.post("/api/v1/collections", json={"name": "mine", "dimension": 2, "metric": "dot"}, headers=alice.headers)
    ws = await connect(rt, alice)
    await ws.send_json({"type": "subscribe", "topics": ["users", "collections/theirs", "collections/none", "collections/mine", "me"]})
    refused = [await receive(ws) for _ in range(3)]
    assert [(m["type"], m["code"], m["topic"]) for m in refused] == [
        ("error", "forbidden", "users"), ("error", "forbidden", "collections/theirs"), ("error", "forbidden", "collections/none")
    ]
    assert await receive(ws) == {"type": "subscribed", "topics": ["collections/mine", "me"]}
    # The socket stays open and hears its own collection.
    await rt.post("/api/v1/collections/mine/upsert", json={"vectors": [{"id": "a", "values": [1, 2]}]}, headers=alice.headers)
    event = await receive(ws)
    assert (event["topic"], event["event"], event["data"]["ids"]) == ("collections/mine", "vectors.upserted", ["a"])
    await ws.close()

    ws = await connect(rt, admin)
    assert await subscribe(ws, "collections/mine", "users") == {"type": "subscribed", "topics": ["collections/mine", "users"]}
    await ws.close()


async def test_a_deleted_collection_ends_its_subscription(rt, admin, alice):
    await rt.post("/api/v1/collections", json={"name": "gone", "dimension": 2, "metric": "dot"}, headers=alice.headers)
    ws = await connect(rt, alice)
    await subscribe(ws, "collections/gone")
    assert (await rt.delete("/api/v1/collections/gone", headers=alice.headers)).status == 204
    assert (await receive(ws))["event"] == "collection.deleted"
    # The same name, now the admin's: alice hears nothing of it, and may not subscribe again.
    await rt.post("/api/v1/collections", json={"name": "gone", "dimension": 2, "metric": "dot"}, headers=admin.headers)
    await rt.post("/api/v1/collections/gone/upsert", json={"vectors": [{"id": "a", "values": [1, 2]}]}, headers=admin.headers)
    refused = await subscribe(ws, "collections/gone")
    assert (refused["type"], refused["code"]) == ("error", "forbidden")
    await ws.close()


async def test_the_server_pings(aiohttp_client, settings):
    client = await aiohttp_client(create_app(Settings.from_env({}, data_dir=settings.data_dir, ws_heartbeat_s=1)))
    alice = await signed_up(client, "alice@example.com")
    ws = await connect(client, alice, autoping=False)
    assert (await subscribe(ws, "me"))["type"] == "subscribed"
    msg = await asyncio.wait_for(ws.receive(), WAIT_S)
    assert msg.type == aiohttp.WSMsgType.PING
    await ws.close()


async def test_me_carries_only_events_about_the_subscriber(rt, admin, alice):
    bob = await signed_up(rt, "bob@example.com")
    ws = await connect(rt, alice)
    await subscribe(ws, "me")
    await rt.patch("/api/v1/users/me", json={"display_name": "Bob"}, headers=bob.headers)
    await rt.patch("/api/v1/users/me", json={"display_name": "Alice"}, headers=alice.headers)
    event = await receive(ws)
    assert (event["topic"], event["event"], event["data"]["id"], event["data"]["display_name"]) == (
        "me", "user.updated", alice.id, "Alice"
    )
    await ws.close()


async def test_me_carries_the_creation_and_deletion_of_the_subscribers_collections(rt, admin, alice):
    """A collection's own topic cannot be subscribed to before it exists: its owner hears of it through `me`,
    live and on a `since` replay, and nobody else does (the admin's `users` does not carry it either)."""
    mine, theirs = await connect(rt, alice), await connect(rt, admin)
    await subscribe(mine, "me")
    await subscribe(theirs, "me", "users")
    await rt.post("/api/v1/collections", json={"name": "admins", "dimension": 2, "metric": "dot"}, headers=admin.headers)
    before = await receive(theirs)
    assert (before["topic"], before["event"]) == ("me", "collection.created")  # the admin's own collection
    created = await rt.post("/api/v1/collections", json={"name": "new", "dimension": 3, "metric": "cosine"},
                            headers=alice.headers)
    assert created.status == 201
    event = await receive(mine)
    assert (event["topic"], event["event"], event["data"]) == (
        "me", "collection.created", {"name": "new", "dimension": 3, "metric": "cosine", "owner_id": alice.id}
    )
    assert (await rt.delete("/api/v1/collections/new", headers=alice.headers)).status == 204
    deleted = await receive(mine)
    assert (deleted["topic"], deleted["event"], deleted["data"]) == (
        "me", "collection.deleted", {"name": "new", "owner_id": alice.id}
    )
    await mine.close()
    # A socket that resumes from before the creation gets both again, and only those.
    again = await connect(rt, alice)
    assert (await subscribe(again, "me", since=before["id"]))["type"] == "subscribed"
    assert [(m["topic"], m["event"]) for m in [await receive(again), await receive(again)]] == [
        ("me", "collection.created"), ("me", "collection.deleted")
    ]
    await rt.patch("/api/v1/users/me", json={"display_name": "A"}, headers=alice.headers)
    assert (await receive(again))["event"] == "user.updated"  # the replay held those two and nothing else
    # The admin heard nothing of alice's collection on either topic: its next event is its own rename.
    await rt.patch("/api/v1/users/me", json={"display_name": "Admin"}, headers=admin.headers)
    heard = [await receive(theirs) for _ in range(2)]  # alice's rename on `users`, then its own
    assert [(m["topic"], m["event"], m["data"]["id"]) for m in heard] == [
        ("users", "user.updated", alice.id), ("users", "user.updated", admin.id)
    ]
    for ws in (again, theirs):
        await ws.close()


async def test_a_burst_of_events_reaches_each_client_filtered_and_in_order(rt, admin, alice):
    """Events published back to back reach the gateway together: each client still gets exactly its own."""
    bob = await signed_up(rt, "bob@example.com")
    mine, everyone = await connect(rt, alice), await connect(rt, admin)
    await subscribe(mine, "me")
    await subscribe(everyone, "users")
    bus = rt.app[EVENTS]
    about = [bob.id, alice.id, bob.id, alice.id, "nobody"]
    # No await between them that waits for the gateway: they queue up and are dispatched as one batch.
    published = [await bus.publish("users", "user.updated", {"id": who, "n": n}) for n, who in enumerate(about)]
    got = [await receive(everyone) for _ in published]
    assert [(m["topic"], m["id"]) for m in got] == [("users", e.id) for e in published]
    got = [await receive(mine) for _ in range(2)]
    assert [(m["topic"], m["data"]["n"]) for m in got] == [("me", 1), ("me", 3)]
    # Nothing else is on its way to alice: the next thing she hears is her own next event.
    await bus.publish("users", "user.updated", {"id": alice.id, "n": 5})
    assert (await receive(mine))["data"]["n"] == 5
    for ws in (mine, everyone):
        await ws.close()


@pytest.mark.parametrize("bad, code", [
    ('{"type": "subscribe", "topics": ["bogus"]}', "validation_failed"),
    ('{"type": "subscribe", "topics": []}', "validation_failed"),
    ('{"type": "subscribe", "topics": ["me"], "since": "x y"}', "validation_failed"),
    ('{"type": "dance"}', "validation_failed"),
    ("{not json", "invalid_json"),
    ('{"type": "auth", "token": "again"}', "validation_failed"),
])
async def test_bad_messages_get_an_error_and_the_socket_stays(rt, alice, bad, code):
    ws = await connect(rt, alice)
    await ws.send_str(bad)
    error = await receive(ws)
    assert (error["type"], error["code"]) == ("error", code) and error["detail"]
    assert (await subscribe(ws, "me"))["type"] == "subscribed"
    await ws.close()


async def test_since_replays_exactly_what_was_missed_in_order(rt, admin):
    bus = rt.app[EVENTS]
    ws = await connect(rt, admin)
    await subscribe(ws, "users")
    first = await bus.publish("users", "user.updated", {"id": "u0", "n": 0})
    assert (await receive(ws))["id"] == first.id
    await ws.close()
    missed = [await bus.publish("users" if n % 3 else "collections/x", "user.updated", {"id": "u", "n": n}) for n in range(1, 10)]

    ws = await connect(rt, admin)
    assert (await subscribe(ws, "users", since=first.id))["type"] == "subscribed"
    live = await bus.publish("users", "user.updated", {"id": "u", "n": 10})
    expected = [e.data["n"] for e in missed if e.topic == "users"] + [10]
    got = [await receive(ws) for _ in expected]
    assert [m["data"]["n"] for m in got] == expected
    assert got[-1]["id"] == live.id
    assert len({m["id"] for m in got}) == len(got)
    await ws.close()


async def test_events_raised_while_the_history_is_read_arrive_once(rt, admin):
    """Publishing hard while subscribing with `since`: every event exactly once, in order."""
    bus = rt.app[EVENTS]
    start = await bus.publish("users", "user.updated", {"id": "u", "n": 0})

    async def publish_many():
        for n in range(1, 201):
            await bus.publish("users", "user.updated", {"id": "u", "n": n})

    ws = await connect(rt, admin)
    publisher = asyncio.create_task(publish_many())
    await ws.send_json({"type": "subscribe", "topics": ["users"], "since": start.id})
    assert (await receive(ws))["type"] == "subscribed"
    await publisher
    got = [(await receive(ws))["data"]["n"] for _ in range(200)]
    assert got == list(range(1, 201))
    await ws.close()


async def test_since_older_than_the_history_gets_resync(aiohttp_client, settings):
    # In-process only: the contract suite covers Redis trimming; here the gateway's answer is what matters.
    client = await aiohttp_client(create_app(Settings.from_env({}, data_dir=settings.data_dir, event_history=10)))
    admin = await signed_up(client, "admin@example.com", "admin")
    bus = client.app[EVENTS]
    old = await bus.publish("users", "user.updated", {"id": "u"})
    for _ in range(20):
        await bus.publish("users", "user.updated", {"id": "u"})
    ws = await connect(client, admin)
    assert (await subscribe(ws, "users", since=old.id))["type"] == "subscribed"
    assert await receive(ws) == {"type": "resync"}
    await ws.close()


async def test_logout_closes_the_sessions_sockets_with_4401(rt, alice):
    ws = await connect(rt, alice)
    await subscribe(ws, "me")
    response = await rt.post("/api/v1/auth/logout", headers=alice.headers)
    assert response.status == 204
    assert await closed_with(ws) == 4401


async def test_disabling_a_user_closes_their_sockets_with_4401(rt, admin, alice):
    ws = await connect(rt, alice)
    await subscribe(ws, "me")
    other = await connect(rt, admin)
    await subscribe(other, "users")
    response = await rt.patch(f"/api/v1/users/{alice.id}", json={"disabled": True}, headers=admin.headers)
    assert response.status == 200
    assert await closed_with(ws) == 4401
    assert not other.closed
    await other.close()


async def test_the_socket_closes_4401_when_the_token_expires(aiohttp_client, settings):
    client = await aiohttp_client(create_app(Settings.from_env({}, data_dir=settings.data_dir, access_token_ttl_s=30)))
    alice = await signed_up(client, "alice@example.com")
    ws = await connect(client, alice)
    await subscribe(ws, "me")
    msg = await asyncio.wait_for(ws.receive(), 45)  # the shortest lifetime the settings allow is 30 s
    assert msg.type == aiohttp.WSMsgType.CLOSE and ws.close_code == 4401


async def test_a_frame_over_64_kib_closes_1009(rt, alice):
    ws = await connect(rt, alice)
    await subscribe(ws, "me")
    await ws.send_str("x" * (64 * 1024 + 1))
    assert await closed_with(ws) == 1009


async def test_too_many_messages_close_1008(aiohttp_client, settings):
    client = await aiohttp_client(create_app(Settings.from_env({}, data_dir=settings.data_dir, ws_messages_per_minute=5)))
    alice = await signed_up(client, "alice@example.com")
    ws = await connect(client, alice)
    for _ in range(5):
        assert (await subscribe(ws, "me"))["type"] == "subscribed"
    await ws.send_json({"type": "subscribe", "topics": ["me"]})
    assert await closed_with(ws) == 1008


async def test_shutdown_closes_1001_and_the_gauge_counts_sockets(rt, alice):
    sockets = [await connect(rt, alice) for _ in range(3)]
    for ws in sockets:
        await subscribe(ws, "me")
    assert rt.app[METRICS].websockets._value.get() == 3
    closing = asyncio.create_task(rt.server.close())
    for ws in sockets:
        assert await closed_with(ws) == 1001
    await closing
    assert rt.app[METRICS].websockets._value.get() == 0


async def test_a_slow_reader_is_dropped_and_the_others_keep_up(aiohttp_client, settings, rt_settings):
    options = {"redis_url": rt_settings.redis_url, "redis_prefix": rt_settings.redis_prefix} if rt_settings.redis_url else {}
    client = await aiohttp_client(create_app(Settings.from_env({}, data_dir=settings.data_dir, ws_send_buffer=16, **options)))
    admin = await signed_up(client, "admin@example.com", "admin")
    slow, fast = await connect(client, admin), await connect(client, admin)
    for ws in (slow, fast):
        await subscribe(ws, "users")
    gateway, bus = client.app[GATEWAY], client.app[EVENTS]
    # The slow client never reads: its socket buffers fill, then its queue of 16, and it is dropped.
    count, padding = 800, "x" * 32_000
    received: list[int] = []

    async def read_fast():
        while len(received) < count:
            received.append((await receive(fast))["data"]["n"])

    reader = asyncio.create_task(read_fast())
    for n in range(count):
        await bus.publish("users", "user.updated", {"id": "u", "n": n, "padding": padding})
        # A steady pace the fast client keeps up with; the slow one falls ever further behind.
        await until(lambda: len(received) >= n - 4 or reader.done(), "the fast client to keep up", within=WAIT_S)
    await until(lambda: len(gateway.connections) == 1, "the slow reader to be dropped", within=WAIT_S)
    await asyncio.wait_for(reader, WAIT_S)
    assert received == list(range(count))
    assert not fast.closed
    await fast.close()


async def test_keys_and_sessions_are_heard_by_their_owner_alone(rt, admin, alice):
    """key.created, key.revoked and session.created reach their owner's `me`, and no one else on any topic:
    not another user, not an admin on `users`, `me` or `audit` as such events."""
    bob = await signed_up(rt, "bob@example.com")
    mine, bobs, admins = await connect(rt, alice), await connect(rt, bob), await connect(rt, admin)
    await subscribe(mine, "me")
    await subscribe(bobs, "me")
    await subscribe(admins, "me", "users")

    created = await rt.post("/api/v1/auth/api-keys", json={"name": "ci", "scopes": ["read"]}, headers=alice.headers)
    assert created.status == 201
    key = await created.json()
    event = await receive(mine)
    assert (event["topic"], event["event"]) == ("me", "key.created")
    assert event["data"] == {"id": key["id"], "user_id": alice.id, "name": "ci", "scopes": ["read"],
                             "created_at": key["created_at"], "expires_at": None, "last_used_at": None}
    assert key["key"] not in str(event)  # the secret is shown once, in the answer, never in an event

    # An admin revoking alice's key: alice hears it, the admin does not.
    assert (await rt.delete(f"/api/v1/auth/api-keys/{key['id']}", headers=admin.headers)).status == 204
    event = await receive(mine)
    assert (event["topic"], event["event"], event["data"]) == ("me", "key.revoked", {"id": key["id"], "user_id": alice.id})

    again = await login(rt, alice.email, **{"User-Agent": "second device"})
    event = await receive(mine)
    assert (event["topic"], event["event"]) == ("me", "user.updated")  # last_login_at
    event = await receive(mine)
    assert (event["topic"], event["event"]) == ("me", "session.created")
    sessions = await (await rt.get("/api/v1/auth/sessions", headers=again.headers)).json()
    [listed] = [s for s in sessions["items"] if s["current"]]
    assert event["data"] == {**{k: v for k, v in listed.items() if k != "current"}, "user_id": alice.id}

    # Nothing of that reached bob or the admin: each one's next event is its own rename (the admin's
    # `users` also carries alice's login as a user.updated, which admins may see).
    await rt.patch("/api/v1/users/me", json={"display_name": "Bob"}, headers=bob.headers)
    assert [(m["event"], m["data"]["id"]) for m in [await receive(bobs)]] == [("user.updated", bob.id)]
    await rt.patch("/api/v1/users/me", json={"display_name": "Admin"}, headers=admin.headers)
    heard = [await receive(admins) for _ in range(3)]
    assert [(m["topic"], m["event"], m["data"]["id"]) for m in heard] == [
        ("users", "user.updated", alice.id), ("users", "user.updated", bob.id), ("users", "user.updated", admin.id)
    ]
    for ws in (mine, bobs, admins):
        await ws.close()


async def test_audit_entries_are_live_for_admins_only(rt, admin, alice):
    ws = await connect(rt, alice)
    refused = await subscribe(ws, "audit")
    assert (refused["type"], refused["code"], refused["topic"]) == ("error", "forbidden", "audit")
    assert await receive(ws) == {"type": "subscribed", "topics": []}
    assert await subscribe(ws, "me") == {"type": "subscribed", "topics": ["me"]}
    admins = await connect(rt, admin)
    assert await subscribe(admins, "audit") == {"type": "subscribed", "topics": ["audit"]}

    response = await rt.post("/api/v1/auth/login", json={"email": alice.email, "password": "wrong password"})
    assert response.status == 401
    await login(rt, alice.email)
    heard = [await receive(admins) for _ in range(2)]
    assert [(m["topic"], m["event"], m["data"]["event"]) for m in heard] == [
        ("audit", "audit.recorded", "login.failed"), ("audit", "audit.recorded", "login.succeeded")
    ]
    # Each event is the entry as GET /audit lists it.
    listed = await (await rt.get("/api/v1/audit", params={"user_id": alice.id}, headers=admin.headers)).json()
    by_id = {entry["id"]: entry for entry in listed["items"]}
    assert [by_id[m["data"]["id"]] for m in heard] == [m["data"] for m in heard]
    # A key created with an admin's key that only reads may not open the audit either.
    created = await rt.post("/api/v1/auth/api-keys", json={"name": "ro", "scopes": ["read"]}, headers=admin.headers)
    readonly = await connect(rt, headers={"Authorization": f"Bearer {(await created.json())['key']}"})
    assert (await subscribe(readonly, "audit"))["code"] == "forbidden"
    assert await receive(readonly) == {"type": "subscribed", "topics": []}
    # alice's socket heard none of it: her next event is her own session, then her own rename.
    await rt.patch("/api/v1/users/me", json={"display_name": "Alice"}, headers=alice.headers)
    assert [(await receive(ws))["event"] for _ in range(3)] == ["user.updated", "session.created", "user.updated"]
    for socket in (ws, admins, readonly):
        await socket.close()


async def test_revoking_an_api_key_closes_its_sockets_with_4401(rt, alice):
    created = await rt.post("/api/v1/auth/api-keys", json={"name": "feed", "scopes": ["read"]}, headers=alice.headers)
    key = await created.json()
    ws = await connect(rt, headers={"Authorization": f"Bearer {key['key']}"})
    await subscribe(ws, "me")
    other = await connect(rt, alice)
    await subscribe(other, "me")
    assert (await rt.delete(f"/api/v1/auth/api-keys/{key['id']}", headers=alice.headers)).status == 204
    assert await closed_with(ws) == 4401
    # The session's socket stays. (With Redis, the key.created raised before it subscribed may still come
    # first: it is passed over.)
    assert (await next_event(other, "key.revoked"))["data"]["id"] == key["id"]
    await other.close()
