"""The per-process cache of user rows (daemon/services/user_cache.py): served from memory only while it
follows the bus, dropped on every announced change, never refilled with a row read before a change.
The database is a real SQLite file, counted on its way; the bus is the in-process one and Redis (two
daemon processes are tests/e2e/test_replicas.py)."""

from __future__ import annotations

import asyncio

import pytest

from daemon.services import user_cache as user_cache_module
from daemon.services.user_cache import UserCache
from daemon.stores.errors import Unavailable
from daemon.stores.events.memory import MemoryEventBus
from daemon.stores.sql.accounts import Accounts
from tests.conftest import until

WAIT_S = 10.0  # a bound on waiting, not a performance target


class CountingAccounts(Accounts):
    """Counts reads of a user; `hold` makes the next read wait until it is set."""

    def __init__(self, db) -> None:
        super().__init__(db)
        self.reads = 0
        self.hold: asyncio.Event | None = None

    async def user(self, user_id, conn=None):
        self.reads += 1
        row = await super().user(user_id, conn)
        if self.hold is not None:
            hold, self.hold = self.hold, None
            await hold.wait()
        return row


@pytest.fixture
def accounts(db_with_a_user):
    return CountingAccounts(db_with_a_user)


@pytest.fixture
async def following(accounts, buses):
    """Two caches on one database, as two replicas, both following the bus (in-process or Redis)."""
    caches = [UserCache(accounts, bus) for bus in buses]
    tasks = [asyncio.create_task(c.follow()) for c in caches]
    await until(lambda: all(c._follower.following for c in caches), "both caches follow the bus")
    yield caches, buses[1]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def heard_by(cache: UserCache, announce):
    """Await an announcement, then until `cache` has read it. The announcer returns once it has read its own
    event back, by which time the bus has sent it to the other cache, whose reader applies it when it next
    runs: on Redis, on a loaded CI machine, that was seen to come just after."""
    drops = cache._drops
    answer = await announce
    await until(lambda: cache._drops > drops, "the other cache to read the announcement")
    return answer


async def rename(accounts: Accounts, name: str) -> None:
    await accounts.update_user("u1", {"display_name": name})


async def test_reads_are_served_from_memory_while_following(following, accounts):
    (a, _), _ = following
    assert (await a.get("u1")).display_name == "old"
    reads = accounts.reads
    for _ in range(5):
        assert (await a.get("u1")).email == "u1@example.com"
    assert accounts.reads == reads
    assert await a.get("nobody") is None  # not cached: a user made later must be found
    assert accounts.reads == reads + 1


async def test_a_change_announced_by_one_is_read_back_by_the_other_when_it_returns(following, accounts):
    (a, b), _ = following
    assert (await b.get("u1")).display_name == "old"
    await rename(accounts, "new")
    assert (await heard_by(b, a.changed("user.updated", "u1"))).display_name == "new"
    assert (await b.get("u1")).display_name == "new"
    await accounts.db.execute("DELETE FROM users WHERE id = 'u1'")
    await heard_by(b, a.deleted("u1"))
    assert await b.get("u1") is None


async def test_the_announcement_carries_the_new_row(following, accounts):
    (a, _), bus = following
    listener = bus.listen()
    await rename(accounts, "announced")
    await a.changed("user.updated", "u1")
    event = await asyncio.wait_for(anext(aiter(listener)), WAIT_S)
    assert (event.topic, event.event, event.data["display_name"]) == ("users", "user.updated", "announced")
    listener.close()


async def test_a_read_in_flight_during_a_change_is_not_kept(following, accounts):
    (a, b), _ = following
    accounts.hold = hold = asyncio.Event()
    slow = asyncio.create_task(b.get("u1"))  # reads "old", then waits
    await until(lambda: accounts.reads == 1, "the slow read to start")
    await rename(accounts, "new")
    await heard_by(b, a.changed("user.updated", "u1"))  # while b's read is in flight
    hold.set()
    assert (await slow).display_name == "old"  # what it read, as any read that began before the write
    assert (await b.get("u1")).display_name == "new"  # but the old row was not kept


async def test_concurrent_misses_share_one_read(following, accounts):
    (a, _), _ = following
    accounts.hold = hold = asyncio.Event()
    waiting = [asyncio.create_task(a.get("u1")) for _ in range(20)]
    await until(lambda: accounts.reads == 1, "the first read to start")
    await asyncio.sleep(0.05)  # the other nineteen have asked by now
    hold.set()
    assert {user.display_name for user in await asyncio.gather(*waiting)} == {"old"}
    assert accounts.reads == 1


async def test_a_miss_after_a_change_does_not_share_a_read_from_before_it(following, accounts):
    (a, b), _ = following
    accounts.hold = hold = asyncio.Event()
    before = asyncio.create_task(b.get("u1"))
    await until(lambda: accounts.reads == 1, "the first read to start")
    await rename(accounts, "new")
    await heard_by(b, a.changed("user.updated", "u1"))
    after = asyncio.create_task(b.get("u1"))
    await until(lambda: accounts.reads == 3, "a read of its own")  # a's read in `changed`, then b's
    hold.set()
    assert ((await before).display_name, (await after).display_name) == ("old", "new")


async def test_while_not_following_every_read_goes_to_sql(following, accounts):
    (_, b), bus = following
    await b.get("u1")
    for listener in list(bus._fanout.listeners):  # the bus tells its listeners it lost its backing
        listener.feed(Unavailable("bus", "test"))
    await until(lambda: not b._follower.following, "the cache stops following")
    await rename(accounts, "unannounced")  # a change the bus never carried
    reads = accounts.reads
    assert (await b.get("u1")).display_name == "unannounced"
    assert (await b.get("u1")).display_name == "unannounced"
    assert accounts.reads == reads + 2


async def test_an_entry_lives_at_most_the_ttl(following, accounts, monkeypatch):
    (a, _), _ = following
    await a.get("u1")
    await rename(accounts, "unannounced")  # say, by another process on the embedded database
    assert (await a.get("u1")).display_name == "old"
    monkeypatch.setattr(user_cache_module, "TTL_S", 0.0)
    assert (await a.get("u1")).display_name == "unannounced"


async def test_an_entry_in_use_is_read_again_in_the_background_before_it_expires(following, accounts, monkeypatch):
    (a, _), _ = following
    await a.get("u1")
    await rename(accounts, "unannounced")
    monkeypatch.setattr(user_cache_module, "REFRESH_AFTER_S", 0.0)
    reads = accounts.reads
    accounts.hold = hold = asyncio.Event()  # the database is slow to answer
    for _ in range(5):  # meanwhile the entry still serves, and one read is under way for all of them
        assert (await a.get("u1")).display_name == "old"
    await until(lambda: accounts.reads == reads + 1, "one read in the background")
    hold.set()
    await until(lambda: "u1" not in a._filling, "the read to land")
    monkeypatch.setattr(user_cache_module, "REFRESH_AFTER_S", 60.0)
    assert (await a.get("u1")).display_name == "unannounced"
    assert accounts.reads == reads + 1


async def test_with_a_read_replica_nothing_is_cached(accounts):
    cache = UserCache(accounts, MemoryEventBus(), enabled=False)
    task = asyncio.create_task(cache.follow())
    try:
        for _ in range(3):
            await cache.get("u1")
        assert accounts.reads == 3
    finally:
        task.cancel()
