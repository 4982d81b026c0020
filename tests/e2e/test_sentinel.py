"""Redis through Sentinel: a real primary, replica and Sentinel on spare ports, and a forced failover.

The client from daemon.stores.redis_connect must keep working across the failover without being
rebuilt: the next write lands on the promoted replica.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis

from daemon.settings import Settings, SettingsError
from daemon.stores.redis_connect import close, configured, connect, parse_sentinels
from tests.conftest import free_port, until
from tests.servers import redis_server, spawn, stop_all

MASTER = "bastion-test"
WAIT_S = 30.0
# Sentinel and the servers refuse or drop connections while they change roles: that counts as not yet.
SETTLING = {"within": WAIT_S, "every": 0.1, "ignoring": (OSError, aioredis.RedisError)}


@dataclass
class Cluster:
    primary: int
    replica: int
    sentinel: int


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    server = redis_server()
    c = Cluster(free_port(), free_port(), free_port())
    common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    conf = tmp_path / "sentinel.conf"
    # Sentinel rewrites its own config file, so it must be a writable file of this test's.
    conf.write_text(
        f"port {c.sentinel}\nbind 127.0.0.1\ndir {tmp_path}\n"
        f"sentinel monitor {MASTER} 127.0.0.1 {c.primary} 1\n"
        f"sentinel down-after-milliseconds {MASTER} 1000\n"
        f"sentinel failover-timeout {MASTER} 10000\n"
    )
    (tmp_path / "p").mkdir()
    (tmp_path / "r").mkdir()
    procs = [
        spawn([server, "--port", str(c.primary), "--dir", str(tmp_path / "p"), *common], tmp_path / "primary.log"),
        spawn(
            [server, "--port", str(c.replica), "--dir", str(tmp_path / "r"), "--replicaof", "127.0.0.1",
             str(c.primary), *common],
            tmp_path / "replica.log",
        ),
    ]
    # Sentinel starts once the replica is in sync: it only promotes a replica whose link it saw up.
    replica = redis.Redis(port=c.replica, decode_responses=True)
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            if replica.info("replication").get("master_link_status") == "up":
                break
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            pytest.fail("timed out waiting for the replica to sync")
        time.sleep(0.1)
    replica.close()
    procs.append(spawn([server, str(conf), "--sentinel"], tmp_path / "sentinel.log"))
    try:
        yield c
    finally:
        stop_all(procs)


def _settings(cluster: Cluster, **extra: str) -> Settings:
    return Settings.from_env(
        {"BASTION_REDIS_SENTINELS": f"127.0.0.1:{cluster.sentinel}", "BASTION_REDIS_SENTINEL_MASTER": MASTER, **extra}
    )


async def _ready_for_failover(cluster: Cluster) -> None:
    async with aioredis.Redis(port=cluster.sentinel, decode_responses=True) as sentinel:

        async def sentinel_sees_replica() -> bool:
            replicas = await sentinel.execute_command("SENTINEL", "REPLICAS", MASTER)
            return any(str(r["port"]) == str(cluster.replica) and r["master-link-status"] == "ok" for r in replicas)

        await until(sentinel_sees_replica, "Sentinel to discover the replica", **SETTLING)
        # Sentinel looks at each server every 10 s and waits 4 publish periods (8 s) before demoting the
        # old primary; short periods keep the test quick without changing what happens.
        # (A replica is only promoted if Sentinel's view of it is under 3 info periods old: 1 s, not less,
        # keeps a busy machine from refusing with NOGOODSLAVE.)
        await sentinel.execute_command("SENTINEL", "DEBUG", "info-period", 1000, "publish-period", 200)


async def _fail_over(cluster: Cluster) -> None:
    """Force a failover and wait until it is complete."""
    async with (
        aioredis.Redis(port=cluster.sentinel, decode_responses=True) as sentinel,
        aioredis.Redis(port=cluster.replica, decode_responses=True) as replica,
        aioredis.Redis(port=cluster.primary, decode_responses=True) as old_primary,
    ):

        async def failover_started() -> bool:
            try:
                await sentinel.execute_command("SENTINEL", "FAILOVER", MASTER)
            except aioredis.ResponseError as exc:
                if "NOGOODSLAVE" in str(exc):  # its view of the replica is stale for a moment: ask again
                    return False
                raise
            return True

        await until(failover_started, "Sentinel to accept the failover", **SETTLING)

        async def failed_over() -> bool:
            addr = await sentinel.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER)
            return (
                int(addr[1]) == cluster.replica
                and (await replica.info("replication"))["role"] == "master"
                and (await old_primary.info("replication"))["role"] == "slave"
            )

        # Complete when the old primary is demoted too: until then it still takes writes (Redis's own
        # split-brain window), and a client connected to it would rightly keep using it.
        await until(failed_over, "Sentinel to promote the replica and demote the old primary", **SETTLING)


async def test_a_client_through_sentinel_follows_a_forced_failover(cluster: Cluster):
    client = connect(_settings(cluster), decode_responses=True)
    try:
        await _ready_for_failover(cluster)
        await client.set("before", "1")
        assert (await client.info("server"))["tcp_port"] == cluster.primary

        await _fail_over(cluster)

        # The same client object, not rebuilt: its next write reaches the new primary.
        await client.set("after", "2")
        assert (await client.info("server"))["tcp_port"] == cluster.replica
        async with aioredis.Redis(port=cluster.replica, decode_responses=True) as new_primary:
            assert await new_primary.get("after") == "2"
        assert await client.get("before") == "1"  # replicated before the failover
    finally:
        await close(client)


def test_a_malformed_sentinel_address_is_a_clear_settings_error():
    with pytest.raises(SettingsError, match="BASTION_REDIS_SENTINELS: expected host:port, got 'redis-1'"):
        parse_sentinels(("redis-1",))
    assert parse_sentinels(("sentinel-0:26379", "[::1]:26380")) == [("sentinel-0", 26379), ("::1", 26380)]


async def test_a_url_gives_a_plain_client_and_no_settings_a_clear_error(redis_url: str):
    client = connect(Settings.from_env({"BASTION_REDIS_URL": redis_url}), decode_responses=True)
    try:
        assert await client.ping() is True
    finally:
        await close(client)
    assert configured(Settings.from_env({})) is False
    with pytest.raises(SettingsError, match="Redis is not configured"):
        connect(Settings.from_env({}))


async def test_the_daemons_rate_limits_revocations_and_events_survive_a_failover(cluster: Cluster, aiohttp_client, data_dir):
    from daemon.app import create_app
    from daemon.context import CACHE, EVENTS

    settings = Settings.from_env(
        {"BASTION_REDIS_SENTINELS": f"127.0.0.1:{cluster.sentinel}", "BASTION_REDIS_SENTINEL_MASTER": MASTER,
         "BASTION_AUTH_RATE_LIMIT_PER_MINUTE": "2"},
        data_dir=data_dir,
    )
    client = await aiohttp_client(create_app(settings))
    cache, bus = client.app[CACHE], client.app[EVENTS]
    assert cache.name == "redis"
    listener = bus.listen()

    async def login_status() -> int:
        return (await client.post("/api/v1/auth/login", json={})).status

    async def next_event():
        return await asyncio.wait_for(anext(listener), WAIT_S)

    await _ready_for_failover(cluster)
    assert [await login_status() for _ in range(3)] == [422, 422, 429]
    await cache.revoke("session-before", 600)
    await bus.publish("users", "user.created", {"id": "before"})
    assert (await next_event()).data == {"id": "before"}

    await _fail_over(cluster)

    # Within seconds the same daemon works against the new primary, with the state it had.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S
    while (status := await login_status()) == 503 and loop.time() < deadline:
        await asyncio.sleep(0.1)
    assert status == 429  # the limit's count was replicated and is still enforced
    assert await cache.is_revoked("session-before")
    await cache.revoke("session-after", 600)
    assert await cache.is_revoked("session-after")
    await bus.publish("users", "user.created", {"id": "after"})
    assert (await next_event()).data == {"id": "after"}
    listener.close()
