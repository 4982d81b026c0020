"""One contract for every cache backend: the in-process one and Redis (the real server, a key prefix
of this test's own). The clock is the test's, so both backends are held to the same arithmetic."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from daemon.stores.cache import Cache, gcra
from daemon.stores.cache.memory import MemoryCache
from daemon.stores.cache.redis import RedisCache


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


async def peek(cache: Cache, key: str, limit: int, period_s: float):
    """One key's peek (the contract's peek takes several)."""
    [decision] = await cache.peek([(key, limit, period_s)])
    return decision


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["memory", "redis"])
async def make_cache(request: pytest.FixtureRequest):
    """Builds caches of the backend under test: `make_cache(clock)`; without a clock, real time."""
    if request.param == "memory":
        yield lambda clock=None: MemoryCache(clock=clock) if clock else MemoryCache()
        return
    url = request.getfixturevalue("redis_url")
    prefix = request.getfixturevalue("redis_prefix")
    client = aioredis.Redis.from_url(url, decode_responses=True)
    yield lambda clock=None: RedisCache(client, prefix, clock=clock)
    await client.aclose()


async def test_allows_the_limit_then_refuses_with_retry_after(make_cache, clock):
    cache: Cache = make_cache(clock)
    decisions = [await cache.hit("k", 10, 900) for _ in range(11)]
    assert [d.allowed for d in decisions] == [True] * 10 + [False]
    assert [d.remaining for d in decisions[:10]] == list(range(9, -1, -1))
    assert decisions[10].retry_after_s == pytest.approx(90)
    assert decisions[10].reset_s == pytest.approx(900)


async def test_a_refused_hit_is_not_counted_and_the_bucket_refills(make_cache, clock):
    cache = make_cache(clock)
    for _ in range(3):
        assert (await cache.hit("k", 3, 60)).allowed
    assert not (await cache.hit("k", 3, 60)).allowed
    clock.now += 20  # one interval
    assert (await cache.hit("k", 3, 60)).allowed
    assert not (await cache.hit("k", 3, 60)).allowed
    clock.now += 60
    assert (await cache.hit("k", 3, 60)).remaining == 2


async def test_cost_counts_several_and_a_cost_over_the_limit_is_refused(make_cache, clock):
    cache = make_cache(clock)
    assert (await cache.hit("k", 5, 50, cost=3)).remaining == 2
    assert not (await cache.hit("k", 5, 50, cost=3)).allowed
    assert (await cache.hit("k", 5, 50, cost=2)).allowed
    assert not (await cache.hit("other", 5, 50, cost=6)).allowed


async def test_peek_changes_nothing_and_reset_clears(make_cache, clock):
    cache = make_cache(clock)
    for _ in range(5):
        assert (await peek(cache, "k", 2, 60)).allowed
    await cache.hit("k", 2, 60)
    await cache.hit("k", 2, 60)
    assert not (await peek(cache, "k", 2, 60)).allowed
    await cache.reset("k")
    assert (await peek(cache, "k", 2, 60)).remaining == 1
    assert (await cache.hit("k", 2, 60)).remaining == 1


async def test_a_peek_at_several_keys_answers_each_in_order_and_changes_nothing(make_cache, clock):
    cache = make_cache(clock)
    await cache.hit("full", 1, 60)
    await cache.hit("half", 4, 60, cost=2)
    checks = [("half", 4, 60), ("never", 3, 60), ("full", 1, 60)]
    first = await cache.peek(checks)
    assert [(d.allowed, d.remaining) for d in first] == [(True, 1), (True, 2), (False, 0)]
    assert await cache.peek(checks) == first
    assert await cache.peek([]) == []


async def test_hit_all_counts_every_key_or_none(make_cache, clock):
    cache = make_cache(clock)
    await cache.hit("full", 1, 60)
    refused = await cache.hit_all([("fresh", 3, 60), ("full", 1, 60)])
    assert [d.allowed for d in refused] == [True, False]
    assert (await peek(cache, "fresh", 3, 60)).remaining == 2  # not counted: another key refused
    granted = await cache.hit_all([("fresh", 3, 60), ("other", 2, 60)])
    assert [(d.allowed, d.remaining) for d in granted] == [(True, 2), (True, 1)]
    assert (await peek(cache, "fresh", 3, 60)).remaining == 1


async def test_a_negative_cost_gives_back_but_never_past_a_full_bucket(make_cache, clock):
    cache = make_cache(clock)
    for _ in range(3):
        await cache.hit("k", 3, 60)
    assert not (await peek(cache, "k", 3, 60)).allowed
    [back] = await cache.hit_all([("k", 3, 60)], cost=-1)
    assert back.allowed and back.remaining == 1
    await cache.hit_all([("k", 3, 60)], cost=-1)
    await cache.hit_all([("k", 3, 60), ("untouched", 3, 60)], cost=-1)
    await cache.hit_all([("k", 3, 60)], cost=-1)  # already full: nothing more to give back
    assert [(await cache.hit("k", 3, 60)).allowed for _ in range(4)] == [True, True, True, False]
    assert (await peek(cache, "untouched", 3, 60)).remaining == 2


async def test_concurrent_hit_alls_never_exceed_any_limit(make_cache):
    cache = make_cache()
    decisions = await asyncio.gather(*(cache.hit_all([("pair", 10, 3600), ("wide", 25, 3600)]) for _ in range(60)))
    assert sum(all(d.allowed for d in pair) for pair in decisions) == 10


async def test_keys_are_independent(make_cache, clock):
    cache = make_cache(clock)
    await cache.hit("a", 1, 60)
    assert not (await cache.hit("a", 1, 60)).allowed
    assert (await cache.hit("b", 1, 60)).allowed


async def test_decisions_match_the_pure_gcra_step_for_a_random_walk(make_cache, clock):
    """Both backends agree with gcra() itself over irregular arrivals, costs and fractional periods."""
    import random

    rng = random.Random(7)
    cache = make_cache(clock)
    stored = None
    for _ in range(60):
        clock.now += rng.choice([0, 0.01, 0.3, 1.7, 4.0])
        cost = rng.choice([1, 1, 2])
        new, expected = gcra(stored, clock.now, 4, 7.5, cost)
        if expected.allowed:
            stored = new
        got = await cache.hit("walk", 4, 7.5, cost)
        assert (got.allowed, got.remaining) == (expected.allowed, expected.remaining)
        assert got.retry_after_s == pytest.approx(expected.retry_after_s, abs=1e-6)


async def test_concurrent_hits_never_exceed_the_limit(make_cache):
    cache = make_cache()  # real time: the limit is far from refilling during the test
    decisions = await asyncio.gather(*(cache.hit("burst", 20, 3600) for _ in range(60)))
    assert sum(d.allowed for d in decisions) == 20


async def test_revocation_holds_for_its_ttl_then_lapses(make_cache):
    cache = make_cache()
    assert not await cache.is_revoked("s1")
    await cache.revoke("s1", 60)
    await cache.revoke("s2", 0.2)
    assert await cache.is_revoked("s1") and await cache.is_revoked("s2")
    deadline = asyncio.get_running_loop().time() + 10
    while await cache.is_revoked("s2"):
        assert asyncio.get_running_loop().time() < deadline, "a revocation outlived its ttl"
        await asyncio.sleep(0.05)
    assert await cache.is_revoked("s1")


async def test_ping_answers(make_cache):
    await make_cache().ping()


# The rate-limit stage spends hits in batches taken from the cache (daemon/pipeline/rate_limit.py).


async def test_allowance_spends_a_batch_locally_and_reports_what_is_left(make_cache, clock):
    from daemon.pipeline.rate_limit import Allowance

    cache: Cache = make_cache(clock)
    allowance = Allowance(cache, 60.0, clock=clock)
    decisions = [await allowance.hit("k", 1000) for _ in range(10)]
    assert all(d.allowed for d in decisions)
    assert [d.remaining for d in decisions] == list(range(999, 989, -1))
    # One batch of 10 was counted in the cache for the ten hits (a peek tells what one more would leave).
    assert (await peek(cache, "k", 1000, 60.0)).remaining == 989
    await allowance.hit("k", 1000)
    assert (await peek(cache, "k", 1000, 60.0)).remaining == 979


async def test_take_spends_only_a_batch_held_here_and_never_asks_the_cache(make_cache, clock):
    """The rate-limit stage's path without a coroutine: None sends the request on to `hit`."""
    from daemon.pipeline.rate_limit import LEASE_S, Allowance

    cache: Cache = make_cache(clock)
    allowance = Allowance(cache, 60.0, clock=clock)
    assert allowance.take("k", 1000) is None  # no batch yet
    await allowance.hit("k", 1000)  # takes a batch of 10 and spends one
    assert [allowance.take("k", 1000).remaining for _ in range(9)] == list(range(998, 989, -1))
    assert allowance.take("k", 1000) is None  # spent
    assert (await peek(cache, "k", 1000, 60.0)).remaining == 989  # the cache counted one batch, no more
    await allowance.hit("k", 1000)
    clock.now += LEASE_S + 0.01
    assert allowance.take("k", 1000) is None  # a batch not spent in time is not spent later
    assert allowance.take("other", 1000) is None


async def test_two_replicas_taking_batches_never_exceed_the_shared_limit(make_cache, clock):
    from daemon.pipeline.rate_limit import Allowance

    cache: Cache = make_cache(clock)
    replicas = [Allowance(cache, 60.0, clock=clock), Allowance(cache, 60.0, clock=clock)]
    allowed = 0
    for n in range(700):
        decision = await replicas[n % 2].hit("k", 500)
        allowed += decision.allowed
        if not decision.allowed:
            assert decision.retry_after_s > 0
    # At most the limit; at least the limit less one unspent batch (of 5) per replica.
    assert 490 <= allowed <= 500


async def test_a_batch_not_spent_in_time_is_dropped(make_cache, clock):
    from daemon.pipeline.rate_limit import LEASE_S, Allowance

    cache: Cache = make_cache(clock)
    allowance = Allowance(cache, 6000.0, clock=clock)  # one hit per 6 s: the time that passes hardly counts
    await allowance.hit("k", 1000)
    clock.now += LEASE_S + 0.01
    await allowance.hit("k", 1000)  # takes a new batch: the old one's 9 hits are not spent any more
    assert (await peek(cache, "k", 1000, 6000.0)).remaining == 979


async def test_a_burst_on_a_key_takes_one_batch_not_one_per_request(make_cache, clock):
    from daemon.pipeline.rate_limit import Allowance

    cache: Cache = make_cache(clock)
    calls = 0
    hit = cache.hit

    async def counted(*args, **kwargs):
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)  # a round trip, during which the rest of the burst arrives
        return await hit(*args, **kwargs)

    cache.hit = counted  # type: ignore[method-assign]
    allowance = Allowance(cache, 60.0, clock=clock)
    decisions = await asyncio.gather(*(allowance.hit("k", 10_000) for _ in range(50)))
    assert all(d.allowed for d in decisions)
    assert calls == 1  # one batch of 100 served all 50
