from daemon.stores.cache import gcra
from daemon.stores.cache.memory import MemoryCache


class FakeClock:
    """A clock the test advances; the limiter's arithmetic is what is under test, not time."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_allows_the_limit_then_refuses_with_retry_after():
    clock = FakeClock()
    cache = MemoryCache(clock=clock)
    decisions = [await cache.hit("k", 10, 900) for _ in range(11)]
    assert [d.allowed for d in decisions] == [True] * 10 + [False]
    assert [d.remaining for d in decisions[:10]] == list(range(9, -1, -1))
    assert decisions[10].retry_after_s == 90


async def test_a_refused_hit_is_not_counted_and_the_bucket_refills():
    clock = FakeClock()
    cache = MemoryCache(clock=clock)
    for _ in range(3):
        await cache.hit("k", 3, 60)
    assert not (await cache.hit("k", 3, 60)).allowed
    clock.now += 20  # one interval
    assert (await cache.hit("k", 3, 60)).allowed
    assert not (await cache.hit("k", 3, 60)).allowed


async def test_peek_changes_nothing_and_reset_clears():
    clock = FakeClock()
    cache = MemoryCache(clock=clock)
    for _ in range(5):
        assert (await cache.peek("k", 2, 60)).allowed
    await cache.hit("k", 2, 60)
    await cache.hit("k", 2, 60)
    assert not (await cache.peek("k", 2, 60)).allowed
    await cache.reset("k")
    assert (await cache.peek("k", 2, 60)).allowed


async def test_revocations_expire():
    clock = FakeClock()
    cache = MemoryCache(clock=clock)
    await cache.revoke("sid", 5)
    assert await cache.is_revoked("sid")
    clock.now += 6
    assert not await cache.is_revoked("sid")


def test_gcra_keys_are_independent_of_order_of_cost():
    tat, first = gcra(None, 0.0, 4, 4.0, 4)
    assert first.allowed and first.remaining == 0
    _, second = gcra(tat, 0.0, 4, 4.0, 1)
    assert not second.allowed and second.retry_after_s == 1.0
