"""Fixtures shared by the contract tests."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from daemon.stores.events.memory import MemoryEventBus
from daemon.stores.events.redis import RedisEventBus


@pytest.fixture(params=["memory", "redis"])
async def buses(request):
    """Two buses that hear each other: `buses()` gives the pair."""
    if request.param == "memory":
        bus = MemoryEventBus()
        yield bus, bus
        return
    prefix = request.getfixturevalue("redis_prefix")
    client = aioredis.Redis.from_url(request.getfixturevalue("redis_url"), decode_responses=True)
    pair = (await RedisEventBus.open(client, prefix), await RedisEventBus.open(client, prefix))
    yield pair
    for bus in pair:
        await bus.close()
    await client.aclose()
