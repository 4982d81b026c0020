"""The SQL of email verification links. Rules: services/mail.py."""

from __future__ import annotations

from daemon.stores.sql import Database


class MailRows:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def insert_verification(self, token_hash: str, user_id: str, email: str, now: str, expires_at: str) -> None:
        await self.db.execute("DELETE FROM email_verifications WHERE expires_at <= ?", now)
        await self.db.execute(
            "INSERT INTO email_verifications (token_hash, user_id, email, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
            token_hash, user_id, email, now, expires_at)

    async def verify(self, token_hash: str, now: str) -> str | None:
        """Spends a live link and marks its address verified, if it is still the account's: the user id, or None."""
        async with self.db.transaction() as tx:
            row = await tx.fetch_one(
                "SELECT user_id, email FROM email_verifications WHERE token_hash = ? AND spent_at IS NULL "
                "AND expires_at > ?", token_hash, now)
            if row is None or not await tx.execute(
                    "UPDATE email_verifications SET spent_at = ? WHERE token_hash = ? AND spent_at IS NULL",
                    now, token_hash):
                return None
            changed = await tx.execute("UPDATE users SET email_verified = ?, updated_at = ? WHERE id = ? AND email = ?",
                                       True, now, row["user_id"], row["email"])
            return row["user_id"] if changed else None
