"""The SQL of accounts: users, sessions, refresh tokens, API keys, password resets, the audit trail.

Services hold the rules; this module only reads and writes rows. Every method takes an optional
connection so that a service can run several of them in one transaction.
"""

from __future__ import annotations

import json
from typing import Any

from daemon.stores.sql import Batch, Connection, Database, Row, marks

USER_COLUMNS = "id, email, display_name, role, disabled, created_at, updated_at, last_login_at, mfa_enabled, email_verified"


async def exported_users(db: Database, after: str, limit: int) -> list[Row]:
    """Users by id after `after`, with what `bastiond export users` writes of them (password hash too)."""
    return await db.fetch_all(
        "SELECT id, email, display_name, role, disabled, password_hash, created_at, email_verified FROM users "
        "WHERE id > ? ORDER BY id LIMIT ?", after, limit,
    )


async def count_users_after(db: Database, after: str) -> int:
    return (await db.fetch_one("SELECT count(*) AS n FROM users WHERE id > ?", after))["n"]


class Accounts:
    def __init__(self, db: Database) -> None:
        self.db = db

    def _c(self, conn: Connection | None) -> Connection:
        return conn or self.db

    # users

    async def user(self, user_id: str, conn: Connection | None = None) -> Row | None:
        return await self._c(conn).fetch_one(f"SELECT {USER_COLUMNS} FROM users WHERE id = ?", user_id)

    async def user_with_hash_by_email(self, email: str) -> Row | None:
        return await self.db.fetch_one(f"SELECT {USER_COLUMNS}, password_hash FROM users WHERE email = ?", email)

    async def password_hash(self, user_id: str) -> str | None:
        row = await self.db.fetch_one("SELECT password_hash FROM users WHERE id = ?", user_id)
        return row["password_hash"] if row else None

    async def insert_user(self, row: Row, conn: Connection | None = None) -> None:
        names = ", ".join(row)
        await self._c(conn).execute(f"INSERT INTO users ({names}) VALUES ({marks(len(row))})", *row.values())

    async def update_user(self, user_id: str, changes: Row, conn: Connection | None = None) -> int:
        assignments = ", ".join(f"{name} = ?" for name in changes)
        return await self._c(conn).execute(
            f"UPDATE users SET {assignments} WHERE id = ?", *changes.values(), user_id
        )

    def record_login(self, user_id: str, at: str, batch: Batch) -> None:
        """The batch's last statement: its `row` is then the user as the login left it."""
        batch.returning(f"UPDATE users SET last_login_at = ? WHERE id = ? RETURNING {USER_COLUMNS}", at, user_id)

    async def delete_user(self, user_id: str, conn: Connection | None = None) -> int:
        return await self._c(conn).execute("DELETE FROM users WHERE id = ?", user_id)

    async def count_users(self) -> int:
        row = await self.db.fetch_one("SELECT COUNT(*) AS n FROM users")
        return int(row["n"]) if row else 0

    async def lock_admins(self, conn: Connection) -> None:
        """Serialises changes to the set of admins inside a transaction (SQLite's writer lock already
        does; PostgreSQL needs an explicit lock, or two admins could demote each other at once)."""
        if self.db.dialect == "postgresql":
            await conn.execute("SELECT pg_advisory_xact_lock(84200002)")

    async def active_admin_ids(self, conn: Connection | None = None) -> list[str]:
        rows = await self._c(conn).fetch_all(
            "SELECT id FROM users WHERE role = 'admin' AND disabled = ?", False
        )
        return [r["id"] for r in rows]

    async def list_users(
        self, q: str | None, role: str | None, disabled: bool | None, after: str | None, limit: int
    ) -> list[Row]:
        where, params = ["1 = 1"], []
        if q:
            pattern = "%" + q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            where.append("(LOWER(email) LIKE ? ESCAPE '\\' OR LOWER(display_name) LIKE ? ESCAPE '\\')")
            params += [pattern, pattern]
        if role:
            where.append("role = ?")
            params.append(role)
        if disabled is not None:
            where.append("disabled = ?")
            params.append(disabled)
        if after:
            where.append("id > ?")
            params.append(after)
        return await self.db.fetch_all(
            f"SELECT {USER_COLUMNS} FROM users WHERE {' AND '.join(where)} ORDER BY id LIMIT ?", *params, limit
        )

    # sessions and refresh tokens

    async def insert_session(self, row: Row, conn: Connection | None = None) -> None:
        await self._c(conn).execute(
            "INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, user_agent, ip, mfa)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            row["id"], row["user_id"], row["created_at"], row["last_used_at"], row["expires_at"], row["user_agent"], row["ip"],
            row.get("mfa", False),
        )

    async def session(self, session_id: str) -> Row | None:
        return await self.db.fetch_one("SELECT * FROM sessions WHERE id = ?", session_id)

    async def live_sessions(self, user_id: str, now: str, after: str | None, limit: int) -> list[Row]:
        return await self.db.fetch_all(
            "SELECT * FROM sessions WHERE user_id = ? AND revoked_at IS NULL AND expires_at > ? AND id > ?"
            " ORDER BY id LIMIT ?",
            user_id,
            now,
            after or "",
            limit,
        )

    async def revoke_session(self, session_id: str, reason: str, now: str, conn: Connection | None = None) -> int:
        return await self._c(conn).execute(
            "UPDATE sessions SET revoked_at = ?, revoked_reason = ? WHERE id = ? AND revoked_at IS NULL",
            now,
            reason,
            session_id,
        )

    async def revoke_user_sessions(
        self, user_id: str, reason: str, now: str, keep: str | None = None, conn: Connection | None = None
    ) -> list[str]:
        c = self._c(conn)
        rows = await c.fetch_all(
            "SELECT id FROM sessions WHERE user_id = ? AND revoked_at IS NULL AND id <> ?", user_id, keep or ""
        )
        ids = [r["id"] for r in rows]
        for session_id in ids:
            await c.execute(
                "UPDATE sessions SET revoked_at = ?, revoked_reason = ? WHERE id = ?", now, reason, session_id
            )
        return ids

    async def revoked_since(self, since: str) -> list[str]:
        rows = await self.db.fetch_all("SELECT id FROM sessions WHERE revoked_at > ?", since)
        return [r["id"] for r in rows]

    async def touch_session(self, session_id: str, now: str, conn: Connection | None = None) -> None:
        await self._c(conn).execute("UPDATE sessions SET last_used_at = ? WHERE id = ?", now, session_id)

    async def insert_refresh(self, token_hash: str, session_id: str, now: str, expires_at: str, conn: Connection | None = None) -> None:
        await self._c(conn).execute(
            "INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
            token_hash,
            session_id,
            now,
            expires_at,
        )

    async def refresh_token(self, token_hash: str, conn: Connection | None = None) -> Row | None:
        return await self._c(conn).fetch_one(
            "SELECT r.token_hash, r.session_id, r.expires_at, r.spent_at, r.successor,"
            " s.user_id, s.revoked_at, s.expires_at AS session_expires_at"
            " FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id WHERE r.token_hash = ?",
            token_hash,
        )

    async def spend_refresh(self, token_hash: str, now: str, successor: bytes, conn: Connection | None = None) -> int:
        """Marks the token spent unless someone else did first; returns 1 for the winner."""
        return await self._c(conn).execute(
            "UPDATE refresh_tokens SET spent_at = ?, successor = ? WHERE token_hash = ? AND spent_at IS NULL",
            now,
            successor,
            token_hash,
        )

    # API keys

    async def insert_api_key(self, row: Row, conn: Connection | None = None) -> None:
        names = ", ".join(row)
        await self._c(conn).execute(f"INSERT INTO api_keys ({names}) VALUES ({marks(len(row))})", *row.values())

    async def api_key_by_hash(self, key_hash: str) -> Row | None:
        return await self.db.fetch_one(
            "SELECT k.id, k.user_id, k.scopes, k.expires_at, k.last_used_at, k.revoked_at, u.role, u.disabled"
            " FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.key_hash = ?",
            key_hash,
        )

    async def api_keys(self, user_id: str, after: str | None, limit: int) -> list[Row]:
        return await self.db.fetch_all(
            "SELECT id, name, scopes, created_at, expires_at, last_used_at FROM api_keys"
            " WHERE user_id = ? AND revoked_at IS NULL AND id > ? ORDER BY id LIMIT ?",
            user_id,
            after or "",
            limit,
        )

    async def api_key_owner(self, key_id: str) -> str | None:
        row = await self.db.fetch_one("SELECT user_id FROM api_keys WHERE id = ? AND revoked_at IS NULL", key_id)
        return row["user_id"] if row else None

    async def revoke_api_key(self, key_id: str, now: str, conn: Connection | None = None) -> int:
        return await self._c(conn).execute(
            "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", now, key_id
        )

    async def touch_api_key(self, key_id: str, now: str) -> None:
        await self.db.execute("UPDATE api_keys SET last_used_at = ? WHERE id = ?", now, key_id)

    # password resets

    async def insert_reset(self, token_hash: str, user_id: str, now: str, expires_at: str) -> None:
        await self.db.execute(
            "INSERT INTO password_resets (token_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
            token_hash,
            user_id,
            now,
            expires_at,
        )

    async def spend_reset(self, token_hash: str, now: str, conn: Connection | None = None) -> str | None:
        """The user id if the token was good (unspent, unexpired); it is spent either way from now on."""
        c = self._c(conn)
        row = await c.fetch_one(
            "SELECT user_id FROM password_resets WHERE token_hash = ? AND spent_at IS NULL AND expires_at > ?",
            token_hash,
            now,
        )
        if row is None:
            return None
        taken = await c.execute(
            "UPDATE password_resets SET spent_at = ? WHERE token_hash = ? AND spent_at IS NULL", now, token_hash
        )
        return row["user_id"] if taken else None

    async def spend_user_resets(self, user_id: str, now: str, conn: Connection | None = None) -> None:
        """Every reset token of the user still open is spent: a password just set by one leaves no other working."""
        await self._c(conn).execute(
            "UPDATE password_resets SET spent_at = ? WHERE user_id = ? AND spent_at IS NULL", now, user_id)

    # audit

    async def insert_audit(self, row: Row, conn: Connection | None = None) -> None:
        await self._c(conn).execute(
            "INSERT INTO audit_events (id, at, event, actor_id, target_id, ip, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
            row["id"], row["at"], row["event"], row["actor_id"], row["target_id"], row["ip"], json.dumps(row["detail"]),
        )

    async def audit(
        self, user_id: str | None, event: str | None, since: str | None, after: str | None, limit: int
    ) -> list[dict[str, Any]]:
        where, params = ["1 = 1"], []
        if user_id:
            where.append("(actor_id = ? OR target_id = ?)")
            params += [user_id, user_id]
        if event:
            where.append("event = ?")
            params.append(event)
        if since:
            where.append("at >= ?")
            params.append(since)
        if after:
            where.append("id > ?")
            params.append(after)
        rows = await self.db.fetch_all(
            f"SELECT * FROM audit_events WHERE {' AND '.join(where)} ORDER BY id LIMIT ?", *params, limit
        )
        for row in rows:
            row["detail"] = json.loads(row["detail"] or "{}")
        return rows
