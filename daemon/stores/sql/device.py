"""The SQL of device logins (RFC 8628); the rules are in services/device.py."""

from __future__ import annotations

from daemon.stores.sql import Database, Row


class DeviceRows:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def insert(self, row: Row) -> None:
        names = ", ".join(row)
        await self.db.execute(f"INSERT INTO device_grants ({names}) VALUES ({', '.join('?' for _ in row)})",
                              *row.values())

    async def by_device_code(self, code_hash: str) -> Row | None:
        return await self.db.fetch_one("SELECT * FROM device_grants WHERE device_code_hash = ?", code_hash)

    async def poll(self, code_hash: str, now: str, due_before: str) -> bool:
        """Record a poll, unless the last one was later than `due_before` (polled too fast): True when due."""
        return await self.db.execute(
            "UPDATE device_grants SET polled_at = ?"
            " WHERE device_code_hash = ? AND (polled_at IS NULL OR polled_at <= ?)",
            now, code_hash, due_before,
        ) > 0

    async def slow_down(self, code_hash: str, now: str, by_s: int) -> None:
        await self.db.execute(
            "UPDATE device_grants SET interval_s = interval_s + ?, polled_at = ? WHERE device_code_hash = ?",
            by_s, now, code_hash,
        )

    async def spend(self, code_hash: str, status: str) -> bool:
        """approved -> spent (the tokens go out once), or denied -> spent: True for the one caller that did it."""
        return await self.db.execute(
            "UPDATE device_grants SET status = 'spent' WHERE device_code_hash = ? AND status = ?", code_hash, status
        ) > 0

    async def decide(self, user_code: str, now: str, status: str, user_id: str, session_mfa: bool) -> Row | None:
        """Approve or deny the pending, unexpired request with this user code; the row, or None."""
        changed = await self.db.execute(
            "UPDATE device_grants SET status = ?, user_id = ?, session_mfa = ?, decided_at = ?"
            " WHERE user_code = ? AND status = 'pending' AND expires_at > ?",
            status, user_id, session_mfa, now, user_code, now,
        )
        if not changed:
            return None
        return await self.db.fetch_one(
            "SELECT user_code, client_name, ip, created_at, expires_at FROM device_grants WHERE user_code = ?",
            user_code,
        )

    async def pending(self, now: str, limit: int) -> list[Row]:
        return await self.db.fetch_all(
            "SELECT user_code, client_name, ip, created_at, expires_at FROM device_grants"
            " WHERE status = 'pending' AND expires_at > ? ORDER BY created_at LIMIT ?",
            now, limit,
        )

    async def purge(self, before: str) -> None:
        await self.db.execute("DELETE FROM device_grants WHERE expires_at <= ?", before)
