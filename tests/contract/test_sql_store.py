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


INSERT_USER = "INSERT INTO users (id, email, role, password_hash, created_at, updated_at) VALUES (?, ?, 'user', 'h', 't', 't')"


async def test_a_batch_writes_everything_with_its_values_untouched(db):
    tricky = "o'brien%s?;COMMIT;@example.com"
    async with db.batch() as batch:
        await batch.execute(INSERT_USER, "u1", tricky)
        await batch.execute_many(INSERT_USER, [("u2", "b@example.com"), ("u3", "c@example.com")])
        await batch.execute("UPDATE users SET display_name = ? WHERE id = ?", "50% off?", "u2")
        assert await db.fetch_all("SELECT id FROM users") == []  # nothing runs before the block ends
    assert await db.fetch_all("SELECT id, email, display_name FROM users ORDER BY id") == [
        {"id": "u1", "email": tricky, "display_name": ""},
        {"id": "u2", "email": "b@example.com", "display_name": "50% off?"},
        {"id": "u3", "email": "c@example.com", "display_name": ""},
    ]


async def test_a_failed_batch_leaves_nothing_and_the_database_usable(db):
    with pytest.raises(UniqueViolation):
        async with db.batch() as batch:
            await batch.execute(INSERT_USER, "u1", "x@example.com")
            await batch.execute(INSERT_USER, "u2", "x@example.com")
    assert await db.fetch_all("SELECT id FROM users") == []
    async with db.batch() as batch:  # and the connection it ran on is not left inside that transaction
        await batch.execute(INSERT_USER, "u3", "y@example.com")
    assert await db.fetch_all("SELECT id FROM users") == [{"id": "u3"}]


async def test_a_batch_returns_the_row_of_its_last_statement(db):
    async with db.batch() as batch:
        await batch.execute(INSERT_USER, "u1", "a@example.com")
        batch.returning("UPDATE users SET display_name = ? WHERE id = ? RETURNING id, display_name, disabled",
                        "fresh", "u1")
        with pytest.raises(TypeError):  # `returning` is the last statement
            await batch.execute(INSERT_USER, "u2", "b@example.com")
        with pytest.raises(TypeError):
            await batch.execute_many(INSERT_USER, [("u2", "b@example.com")])
    assert batch.row["id"] == "u1" and batch.row["display_name"] == "fresh" and not batch.row["disabled"]
    assert await db.fetch_all("SELECT id, display_name FROM users") == [{"id": "u1", "display_name": "fresh"}]
    async with db.batch() as batch:
        batch.returning("UPDATE users SET display_name = ? WHERE id = ? RETURNING id", "x", "nobody")
    assert batch.row is None
    with pytest.raises(UniqueViolation):  # all or nothing, as any batch
        async with db.batch() as batch:
            await batch.execute(INSERT_USER, "u3", "c@example.com")
            batch.returning(INSERT_USER + " RETURNING id", "u4", "a@example.com")
    assert batch.row is None
    assert await db.fetch_all("SELECT id FROM users") == [{"id": "u1"}]


async def test_a_batch_does_not_read(db):
    async with db.batch() as batch:
        with pytest.raises(TypeError):
            await batch.fetch_one("SELECT 1 AS ok")


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


async def test_two_registrations_racing_for_an_accounts_last_passkey_place_add_one(db):
    """PasskeyRows.insert counts under the user's row lock: counted outside it, both of two registrations at
    most - 1 passed on PostgreSQL, and the account then held more passkeys than `bastiond import` carries."""
    import asyncio

    from daemon.stores.sql.passkeys import PasskeyRows, insert_rows

    rows = PasskeyRows(db)

    def passkey(user_id: str, name: str) -> dict:
        return {"id": f"pk_{name}", "user_id": user_id, "credential_id": f"cred-{name}", "public_key": b"\x01",
                "sign_count": 0, "name": name, "aaguid": "", "transports": "", "backed_up": False,
                "created_at": "2026-12-07T00:00:00.000000Z", "last_used_at": None}

    for round_ in range(5):
        user_id = f"u{round_}"
        await _user(db, user_id, f"{user_id}@example.com")
        async with db.transaction() as tx:
            await insert_rows(tx, [passkey(user_id, f"{round_}-{i}") for i in range(4)])
        outcomes = await asyncio.gather(rows.insert(passkey(user_id, f"{round_}-a"), 5),
                                        rows.insert(passkey(user_id, f"{round_}-b"), 5))
        assert sorted(outcomes) == ["added", "full"]
        assert len(await rows.of_user(user_id)) == 5
    # A credential registered already is "taken", to anyone, and adds nothing.
    await _user(db, "other", "other@example.com")
    assert await rows.insert(passkey("other", "0-a") | {"id": "pk_other"}, 5) == "taken"
    assert await rows.of_user("other") == []
