"""Fixtures shared by the contract tests."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from daemon.stores.events.memory import MemoryEventBus
from daemon.stores.events.redis import RedisEventBus
from daemon.stores.sql import open_database
from daemon.stores.sql.migrate import migrate


@pytest.fixture
async def db_with_a_user(data_dir):
    """A migrated SQLite database holding one user, `u1`, named "old"."""
    db = await open_database(None, data_dir / "t.sqlite3")
    await migrate(db)
    await db.execute("INSERT INTO users (id, email, display_name, role, password_hash, created_at, updated_at) "
                     "VALUES ('u1', 'u1@example.com', 'old', 'user', 'h', ?, ?)", "2026-11-26T00:00:00Z",
                     "2026-11-26T00:00:00Z")
    yield db
    await db.close()


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
