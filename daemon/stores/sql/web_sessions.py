"""The SQL of the web view's browser sessions; the rules are in services/web_sessions.py."""

from __future__ import annotations

from daemon.stores.sql import Database, Row


class WebSessionRows:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def insert(self, session_id: str, user_id: str, sealed: bytes, created_at: str, expires_at: str) -> None:
        await self.db.execute(
            "INSERT INTO web_sessions (id, user_id, sealed_tokens, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
            session_id, user_id, sealed, created_at, expires_at,
        )

    async def get(self, session_id: str, moment: str) -> Row | None:
        row = await self.db.fetch_one(
            "SELECT id, user_id, sealed_tokens FROM web_sessions WHERE id = ? AND expires_at > ?", session_id, moment
        )
        if row is not None:
            row["sealed_tokens"] = bytes(row["sealed_tokens"])  # PostgreSQL hands back a memoryview
        return row

    async def reseal(self, session_id: str, sealed: bytes) -> None:
        await self.db.execute("UPDATE web_sessions SET sealed_tokens = ? WHERE id = ?", sealed, session_id)

    async def delete(self, session_id: str) -> None:
        await self.db.execute("DELETE FROM web_sessions WHERE id = ?", session_id)

    async def purge(self, moment: str) -> None:
        await self.db.execute("DELETE FROM web_sessions WHERE expires_at <= ?", moment)
