from __future__ import annotations

import pytest

from daemon.app import create_app
from tests.helpers import signed_up


@pytest.fixture
async def api(aiohttp_client, backend_settings):
    """The real app on SQLite and on PostgreSQL (each test runs on both)."""
    return await aiohttp_client(create_app(backend_settings))


@pytest.fixture
async def admin(api):
    return await signed_up(api, "admin@example.com", "admin")


@pytest.fixture
async def alice(api):
    return await signed_up(api, "alice@example.com")


@pytest.fixture
async def bob(api):
    return await signed_up(api, "bob@example.com")
