"""The SQL of single sign-on: links to provider accounts and sign-ins under way. Rules: services/oidc.py."""

from __future__ import annotations

from daemon.stores.sql import Connection, Database


class OidcRows:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def start_flow(self, flow_id: str, now: str, expires_at: str) -> None:
        await self.db.execute("DELETE FROM oidc_flows WHERE expires_at <= ?", now)
        await self.db.execute("INSERT INTO oidc_flows (id, created_at, expires_at) VALUES (?, ?, ?)",
                              flow_id, now, expires_at)

    async def take_flow(self, flow_id: str, now: str) -> bool:
        """True for the one caller that finishes this sign-in, while it is still live."""
        return await self.db.execute("DELETE FROM oidc_flows WHERE id = ? AND expires_at > ?", flow_id, now) > 0

    async def linked_user(self, issuer: str, subject: str) -> str | None:
        row = await self.db.fetch_one(
            "SELECT user_id FROM identity_links WHERE issuer = ? AND subject = ?", issuer, subject)
        return row["user_id"] if row else None

    async def link(self, issuer: str, subject: str, user_id: str, email: str, now: str,
                   conn: Connection | None = None) -> None:
        await (conn or self.db).execute(
            "INSERT INTO identity_links (issuer, subject, user_id, email, created_at) VALUES (?, ?, ?, ?, ?)",
            issuer, subject, user_id, email, now)

    async def touch(self, issuer: str, subject: str, now: str) -> None:
        await self.db.execute("UPDATE identity_links SET last_login_at = ? WHERE issuer = ? AND subject = ?",
                              now, issuer, subject)
