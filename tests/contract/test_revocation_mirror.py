"""Each process answers "is this session revoked?" from its own mirror, kept current by the event bus
(daemon/services/sessions.py). Two Sessions services stand for two replicas: one SQL database, one
cache, and one bus (the in-process bus shared between them, or two Redis bus clients on one Redis).
The cache is the real one, wrapped to count the questions that reach it."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from daemon.clock import iso_now
from daemon.services import following as following_module
from daemon.services import sessions as sessions_module
from daemon.services.sessions import Sessions
from daemon.stores.cache.memory import MemoryCache
from daemon.stores.errors import Unavailable
from daemon.stores.events.memory import MemoryEventBus
from daemon.stores.events.redis import RedisEventBus
from daemon.stores.sql.accounts import Accounts
from tests.conftest import until

WAIT_S = 10.0  # a bound on waiting, not a performance target


class CountingCache(MemoryCache):
    def __init__(self) -> None:
        super().__init__()
        self.revocation_checks = 0

    async def is_revoked(self, name: str) -> bool:
        self.revocation_checks += 1
        return await super().is_revoked(name)


@pytest.fixture
async def accounts(db_with_a_user):
    for sid in ("s1", "s2", "s3"):
        await db_with_a_user.execute(
            "INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, user_agent, ip) "
            "VALUES (?, 'u1', 't', 't', '9999', 'test', '127.0.0.1')", sid)
    return Accounts(db_with_a_user)


@pytest.fixture
async def replicas(accounts, buses):
    cache = CountingCache()
    a, b = (Sessions(accounts, cache, bus, access_ttl_s=900) for bus in buses)
    tasks = [asyncio.create_task(s.follow()) for s in (a, b)]
    await until(lambda: a.following and b.following, "both mirrors follow the bus")
    yield a, b, cache
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_revocation_on_one_replica_reaches_the_other_from_the_bus(replicas):
    a, b, cache = replicas
    assert not await b.is_revoked("s1")
    assert await a.revoke("s1", "u1", "logout")
    # `revoke` waited for its own event to come back, so Redis has sent it to the other replica too; that
    # replica's reader applies it when its loop gets to it (here the same loop: a CI run found B one step
    # behind, as a second process may be).
    await until(lambda: b.is_revoked("s1"), "the other replica reads the revocation", within=WAIT_S)
    assert await a.is_revoked("s1")
    assert not await b.is_revoked("s2")
    assert cache.revocation_checks == 0  # every answer came from the mirrors


async def test_revoking_every_session_of_a_user_reaches_the_other_replica(replicas):
    a, b, cache = replicas
    revoked = await a.revoke_all("u1", "password changed", keep="s3")
    assert sorted(revoked) == ["s1", "s2"]
    await until(lambda: b.is_revoked("s2"), "the other replica reads the last revocation", within=WAIT_S)
    assert [await b.is_revoked(s) for s in ("s1", "s2", "s3")] == [True, True, False]


async def test_while_the_bus_is_lost_checks_go_to_the_cache_and_the_mirror_catches_up_from_sql(
    replicas, accounts, monkeypatch
):
    a, b, cache = replicas
    monkeypatch.setattr(following_module, "RETRY_S", 2.0)  # long enough to look at the gap
    for listener in list(b._events._fanout.listeners):  # the bus tells its listeners it lost its backing
        listener.feed(Unavailable("redis", "test"))
    await until(lambda: not b.following, "the mirror stops following")
    # A revocation the bus never carried: only SQL and the cache know of it.
    await accounts.revoke_session("s2", "test", iso_now())
    await cache.revoke(sessions_module.revocation_key("s2"), 900)
    assert not b.following
    checks = cache.revocation_checks
    assert await b.is_revoked("s2")
    assert cache.revocation_checks == checks + 1  # asked the cache, not a mirror with a gap
    await until(lambda: b.following, "the mirror follows again")
    checks = cache.revocation_checks
    assert await b.is_revoked("s2")  # read back from SQL when it caught up
    assert not await b.is_revoked("s1")
    assert cache.revocation_checks == checks


async def test_a_revocation_that_was_never_announced_reaches_the_mirror_from_sql(accounts, monkeypatch):
    # Committed in SQL, then Redis went away before the event was published: the periodic re-read finds it.
    monkeypatch.setattr(sessions_module, "RECONCILE_S", 0.05)
    cache = CountingCache()
    mirror = Sessions(accounts, cache, MemoryEventBus(), access_ttl_s=900)
    task = asyncio.create_task(mirror.follow())
    try:
        await until(lambda: mirror.following, "the mirror follows the bus")
        await accounts.revoke_session("s3", "test", iso_now())
        async with asyncio.timeout(WAIT_S):
            while not await mirror.is_revoked("s3"):
                await asyncio.sleep(0.02)
        assert cache.revocation_checks == 0
    finally:
        task.cancel()


async def test_a_mirror_does_not_follow_a_bus_that_does_not_answer(accounts):
    # Redis is down when the daemon starts: the bus can tell no listener of an outage it had before them,
    # so the mirror must not take silence for "nothing was revoked".
    from tests.conftest import free_port

    client = aioredis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.5)
    bus = await RedisEventBus.open(client, "bastion-test-dead:")
    cache = CountingCache()
    mirror = Sessions(accounts, cache, bus, access_ttl_s=900)
    task = asyncio.create_task(mirror.follow())
    try:
        await asyncio.sleep(1.5)  # more than one attempt to follow (RETRY_S)
        assert not mirror.following
        assert not await mirror.is_revoked("s1")
        assert cache.revocation_checks == 1
    finally:
        task.cancel()
        await bus.close()
        await client.aclose()
