"""The SQL of second factors: TOTP secrets, recovery codes and pending `mfa_token`s. Rules: services/mfa.py."""

from __future__ import annotations

from daemon.stores.sql import Connection, Database, Row, marks


async def refresh_mfa_flag(conn: Connection, user_id: str, now: str) -> None:
    """users.mfa_enabled says the user has a second factor, TOTP or a passkey: the one place that decides it
    from the factors themselves, in the transaction that changed them."""
    await conn.execute(
        "UPDATE users SET updated_at = ?, mfa_enabled = ("
        " EXISTS (SELECT 1 FROM totp_factors WHERE user_id = ? AND confirmed_at IS NOT NULL)"
        " OR EXISTS (SELECT 1 FROM passkeys WHERE user_id = ?)) WHERE id = ?",
        now, user_id, user_id, user_id,
    )


async def insert_imported(conn: Connection, user_id: str, totp: Row | None, code_hashes: list[str], now: str) -> None:
    """An imported account's TOTP factor (`sealed_secret`, `confirmed_at`, `last_step`) and recovery codes."""
    if totp is not None:
        await conn.execute(
            "INSERT INTO totp_factors (user_id, sealed_secret, created_at, confirmed_at, last_step) VALUES (?, ?, ?, ?, ?)",
            user_id, totp["sealed_secret"], now, totp["confirmed_at"], totp["last_step"],
        )
    await _insert_recovery_codes(conn, user_id, code_hashes)


async def exported_totp(db: Database, user_ids: list[str]) -> list[Row]:
    """The confirmed TOTP factors of these users, their secrets sealed, as insert_imported takes them."""
    return await db.fetch_all(
        f"SELECT user_id, sealed_secret, confirmed_at, last_step FROM totp_factors "
        f"WHERE confirmed_at IS NOT NULL AND user_id IN ({marks(len(user_ids))})", *user_ids,
    )


async def exported_recovery_codes(db: Database, user_ids: list[str]) -> list[Row]:
    """The unspent recovery codes' hashes of these users (user_id, code_hash)."""
    return await db.fetch_all(
        f"SELECT user_id, code_hash FROM recovery_codes WHERE spent_at IS NULL AND user_id IN ({marks(len(user_ids))}) "
        f"ORDER BY code_hash", *user_ids,
    )


async def _insert_recovery_codes(conn: Connection, user_id: str, code_hashes: list[str]) -> None:
    if code_hashes:
        await conn.execute_many(
            "INSERT INTO recovery_codes (code_hash, user_id) VALUES (?, ?)", [(h, user_id) for h in code_hashes]
        )


class MfaRows:
    def __init__(self, db: Database) -> None:
        self.db = db

    def _c(self, conn: Connection | None) -> Connection:
        return conn or self.db

    # TOTP

    async def totp(self, user_id: str) -> Row | None:
        row = await self.db.fetch_one(
            "SELECT user_id, sealed_secret, confirmed_at, last_step FROM totp_factors WHERE user_id = ?", user_id
        )
        if row is not None:
            row["sealed_secret"] = bytes(row["sealed_secret"])  # PostgreSQL hands back a memoryview
        return row

    async def put_pending_totp(self, user_id: str, sealed: bytes, now: str) -> None:
        """A new enrolment replaces one that was never confirmed (a confirmed one is never replaced here)."""
        async with self.db.transaction() as tx:
            await tx.execute("DELETE FROM totp_factors WHERE user_id = ? AND confirmed_at IS NULL", user_id)
            await tx.execute(
                "INSERT INTO totp_factors (user_id, sealed_secret, created_at) VALUES (?, ?, ?)", user_id, sealed, now
            )

    async def take_step(self, user_id: str, step: int, conn: Connection | None = None) -> bool:
        """Record `step` as used, unless it or a later one already was: True for the one caller that may
        accept a code of this step."""
        return await self._c(conn).execute(
            "UPDATE totp_factors SET last_step = ? WHERE user_id = ? AND last_step < ?", step, user_id, step
        ) > 0

    async def confirm_totp(self, user_id: str, now: str, code_hashes: list[str], conn: Connection) -> None:
        await conn.execute("UPDATE totp_factors SET confirmed_at = ? WHERE user_id = ?", now, user_id)
        await conn.execute("DELETE FROM recovery_codes WHERE user_id = ?", user_id)
        await _insert_recovery_codes(conn, user_id, code_hashes)
        await conn.execute("UPDATE users SET mfa_enabled = ?, updated_at = ? WHERE id = ?", True, now, user_id)

    async def mark_session_mfa(self, session_id: str, conn: Connection) -> None:
        await conn.execute("UPDATE sessions SET mfa = ? WHERE id = ?", True, session_id)

    async def remove(self, user_id: str, now: str, passkeys: bool = True) -> int:
        """Every factor of the user goes (or every one but the passkeys); returns how many TOTP factors did
        (0 or 1)."""
        async with self.db.transaction() as tx:
            removed = await tx.execute("DELETE FROM totp_factors WHERE user_id = ?", user_id)
            await tx.execute("DELETE FROM recovery_codes WHERE user_id = ?", user_id)
            await tx.execute("DELETE FROM mfa_challenges WHERE user_id = ?", user_id)
            if passkeys:
                await tx.execute("DELETE FROM passkeys WHERE user_id = ?", user_id)
            await refresh_mfa_flag(tx, user_id, now)
        return removed

    # recovery codes

    async def spend_recovery_code(self, user_id: str, code_hash: str, now: str) -> bool:
        return await self.db.execute(
            "UPDATE recovery_codes SET spent_at = ? WHERE code_hash = ? AND user_id = ? AND spent_at IS NULL",
            now, code_hash, user_id,
        ) > 0

    async def recovery_codes_left(self, user_id: str) -> int:
        row = await self.db.fetch_one(
            "SELECT COUNT(*) AS n FROM recovery_codes WHERE user_id = ? AND spent_at IS NULL", user_id
        )
        return int(row["n"]) if row else 0

    # mfa_tokens

    async def insert_challenge(self, token_hash: str, user_id: str, purpose: str, now: str, expires_at: str) -> None:
        await self.db.execute(
            "INSERT INTO mfa_challenges (token_hash, user_id, purpose, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
            token_hash, user_id, purpose, now, expires_at,
        )

    async def live_challenge(self, token_hash: str, now: str, max_tries: int) -> Row | None:
        return await self.db.fetch_one(
            "SELECT token_hash, user_id, purpose FROM mfa_challenges"
            " WHERE token_hash = ? AND spent_at IS NULL AND expires_at > ? AND tries < ?",
            token_hash, now, max_tries,
        )

    async def take_challenge_try(self, token_hash: str, now: str, max_tries: int) -> bool:
        """Count one code tried with this token, unless it has had its tries: True when this one may go on."""
        return await self.db.execute(
            "UPDATE mfa_challenges SET tries = tries + 1"
            " WHERE token_hash = ? AND spent_at IS NULL AND expires_at > ? AND tries < ?",
            token_hash, now, max_tries,
        ) > 0

    async def spend_challenge(self, token_hash: str, now: str, conn: Connection | None = None) -> bool:
        return await self._c(conn).execute(
            "UPDATE mfa_challenges SET spent_at = ? WHERE token_hash = ? AND spent_at IS NULL", now, token_hash
        ) > 0

    async def purge_challenges(self, now: str) -> None:
        await self.db.execute("DELETE FROM mfa_challenges WHERE expires_at <= ?", now)
