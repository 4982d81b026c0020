"""The SQL of passkeys: credentials and the challenges handed out for them. Rules: services/passkeys.py."""

from __future__ import annotations

from daemon.stores.sql import Connection, Database, Row, marks
from daemon.stores.sql.mfa import refresh_mfa_flag

_COLUMNS = "id, user_id, credential_id, public_key, sign_count, name, aaguid, transports, backed_up, created_at, last_used_at"
_NAMES = _COLUMNS.split(", ")


def _row(row: Row | None) -> Row | None:
    if row is not None:
        row["public_key"] = bytes(row["public_key"])  # PostgreSQL hands back a memoryview
    return row


async def insert_rows(conn: Connection, rows: list[Row]) -> None:
    """Passkeys as they are (a registration, an imported account's); a credential id registered already fails
    the transaction (UniqueViolation)."""
    if not rows:
        return
    await conn.execute_many(f"INSERT INTO passkeys ({_COLUMNS}) VALUES ({marks(len(_NAMES))})",
                            [tuple(row[c] for c in _NAMES) for row in rows])


async def of_users(db: Database, user_ids: list[str]) -> list[Row]:
    """The passkeys of these users, oldest first, as insert_rows takes them."""
    rows = await db.fetch_all(f"SELECT {_COLUMNS} FROM passkeys WHERE user_id IN ({marks(len(user_ids))}) ORDER BY created_at, id",
                              *user_ids)
    return [_row(r) for r in rows]


class PasskeyRows:
    def __init__(self, db: Database) -> None:
        self.db = db

    # challenges

    async def insert_challenge(self, challenge_hash: str, purpose: str, browser: str, user_id: str | None,
                               now: str, expires_at: str) -> None:
        await self.db.execute("DELETE FROM webauthn_challenges WHERE expires_at <= ?", now)
        await self.db.execute(
            "INSERT INTO webauthn_challenges (challenge_hash, purpose, browser, user_id, created_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            challenge_hash, purpose, browser, user_id, now, expires_at,
        )

    async def spend_challenge(self, challenge_hash: str, purpose: str, browser: str, now: str) -> Row | None:
        """The challenge, spent by this call, if it is live, of this purpose and this browser's; else None.
        One UPDATE decides, so two requests racing with one challenge cannot both have it."""
        spent = await self.db.execute(
            "UPDATE webauthn_challenges SET spent_at = ? WHERE challenge_hash = ? AND purpose = ? AND browser = ?"
            " AND spent_at IS NULL AND expires_at > ?",
            now, challenge_hash, purpose, browser, now,
        )
        if not spent:
            return None
        return await self.db.fetch_one(
            "SELECT challenge_hash, purpose, user_id FROM webauthn_challenges WHERE challenge_hash = ?", challenge_hash
        )

    # credentials

    async def of_user(self, user_id: str) -> list[Row]:
        rows = await self.db.fetch_all(f"SELECT {_COLUMNS} FROM passkeys WHERE user_id = ? ORDER BY created_at, id",
                                       user_id)
        return [_row(r) for r in rows]

    async def by_credential_id(self, credential_id: str) -> Row | None:
        return _row(await self.db.fetch_one(f"SELECT {_COLUMNS} FROM passkeys WHERE credential_id = ?", credential_id))

    async def insert(self, row: Row, most: int) -> str:
        """"added"; "taken" when the credential id is registered already (to anyone); "full" when the user
        holds `most` passkeys already. The user's row is locked first (an UPDATE that changes nothing still
        holds it on PostgreSQL until the commit; SQLite's writes are one at a time anyway), so two
        registrations of one account count each other's passkeys: counted outside the lock, two racing at
        most - 1 both passed, and an account over the cap is one `bastiond import` refuses."""
        async with self.db.transaction() as tx:
            await tx.execute("UPDATE users SET updated_at = updated_at WHERE id = ?", row["user_id"])
            if await tx.fetch_one("SELECT 1 AS x FROM passkeys WHERE credential_id = ?", row["credential_id"]):
                return "taken"
            held = await tx.fetch_one("SELECT COUNT(*) AS n FROM passkeys WHERE user_id = ?", row["user_id"])
            if held is not None and held["n"] >= most:
                return "full"
            await insert_rows(tx, [row])
            await refresh_mfa_flag(tx, row["user_id"], row["created_at"])
        return "added"

    async def take_count(self, passkey_id: str, sign_count: int, now: str) -> bool:
        """Record a use whose signature counter is `sign_count`: True unless the counter did not go up.

        An authenticator that keeps no counter always says 0, and 0 after 0 is fine (WebAuthn section 6.1.1);
        otherwise the new counter must pass the stored one, decided in one UPDATE so that two assertions
        racing with the same counter cannot both pass."""
        return await self.db.execute(
            "UPDATE passkeys SET sign_count = ?, last_used_at = ? WHERE id = ?"
            " AND (sign_count < ? OR (sign_count = 0 AND ? = 0))",
            sign_count, now, passkey_id, sign_count, sign_count,
        ) > 0

    async def delete(self, passkey_id: str, user_id: str, now: str) -> bool:
        """Only the owner's: False when `user_id` has no passkey of that id."""
        async with self.db.transaction() as tx:
            removed = await tx.execute("DELETE FROM passkeys WHERE id = ? AND user_id = ?", passkey_id, user_id)
            if removed:
                await refresh_mfa_flag(tx, user_id, now)
        return removed > 0
