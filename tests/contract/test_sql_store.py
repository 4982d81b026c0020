"""One contract, both SQL backends: what the services may rely on."""

from __future__ import annotations

import pytest

from daemon.stores.errors import UniqueViolation
from daemon.stores.sql import open_database
from daemon.stores.sql.migrate import available, migrate, pending


@pytest.fixture
async def db(sql_backend, data_dir):
    database = await open_database(sql_backend or None, data_dir / "t.sqlite3")
    await migrate(database)
    yield database
    await database.close()


async def _user(db, uid: str, email: str) -> None:
    await db.execute(
        "INSERT INTO users (id, email, role, password_hash, created_at, updated_at) VALUES (?, ?, 'user', 'h', 't', 't')",
        uid,
        email,
    )


async def test_migrations_apply_once_and_record_their_versions(db):
    assert await pending(db) == []
    assert await migrate(db) == []
    versions = [r["version"] for r in await db.fetch_all("SELECT version FROM schema_migrations ORDER BY version")]
    assert versions == [m.version for m in available()]


async def test_parameters_are_never_interpolated(db):
    tricky = "o'brien%s?@example.com"
    await _user(db, "u1", tricky)
    row = await db.fetch_one("SELECT email FROM users WHERE email = ?", tricky)
    assert row == {"email": tricky}


async def test_unique_key_taken_raises_unique_violation(db):
    await _user(db, "u1", "a@example.com")
    with pytest.raises(UniqueViolation):
        await _user(db, "u2", "a@example.com")


async def test_a_failed_transaction_leaves_nothing(db):
    with pytest.raises(UniqueViolation):
        async with db.transaction() as tx:
            await tx.execute(
                "INSERT INTO users (id, email, role, password_hash, created_at, updated_at) VALUES ('u1', 'x@e.com', 'user', 'h', 't', 't')"
            )
            await tx.execute(
                "INSERT INTO users (id, email, role, password_hash, created_at, updated_at) VALUES ('u2', 'x@e.com', 'user', 'h', 't', 't')"
            )
    assert await db.fetch_all("SELECT id FROM users") == []


async def test_execute_returns_the_rows_touched_and_booleans_read_back(db):
    await _user(db, "u1", "a@example.com")
    await _user(db, "u2", "b@example.com")
    assert await db.execute("UPDATE users SET disabled = ? WHERE id = ?", True, "u1") == 1
    row = await db.fetch_one("SELECT disabled FROM users WHERE id = 'u1'")
    assert bool(row["disabled"]) is True
    assert await db.execute("DELETE FROM users") == 2


async def test_foreign_keys_cascade(db):
    await _user(db, "u1", "a@example.com")
    await db.execute(
        "INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at) VALUES ('s1', 'u1', 't', 't', 't')"
    )
    await db.execute("DELETE FROM users WHERE id = 'u1'")
    assert await db.fetch_all("SELECT id FROM sessions") == []
