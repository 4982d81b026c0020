"""Ending sessions, so that their access tokens stop working at once and not at their expiry.

A revoked session is marked in SQL (authoritative: refresh checks it) and in the cache for as long as
its access tokens can live (every request checks it there: one dictionary or Redis lookup), and
announced on the event bus so that open WebSockets of that session close.
"""

from __future__ import annotations

from datetime import timedelta

from daemon.clock import iso, now
from daemon.stores.cache import Cache
from daemon.stores.events import EventBus
from daemon.stores.sql import Connection
from daemon.services.tokens import LEEWAY_S
from daemon.stores.sql.accounts import Accounts


def revocation_key(session_id: str) -> str:
    return f"revoked-session:{session_id}"


class Sessions:
    def __init__(self, accounts: Accounts, cache: Cache, events: EventBus, access_ttl_s: int) -> None:
        self._accounts = accounts
        self._cache = cache
        self._events = events
        self._mark_s = access_ttl_s + LEEWAY_S

    async def _announce(self, session_ids: list[str], user_id: str, reason: str) -> None:
        for session_id in session_ids:
            await self._cache.revoke(revocation_key(session_id), self._mark_s)
            await self._events.publish(
                "users", "session.revoked", {"session_id": session_id, "user_id": user_id, "reason": reason}
            )

    async def revoke(self, session_id: str, user_id: str, reason: str, conn: Connection | None = None) -> bool:
        done = await self._accounts.revoke_session(session_id, reason, iso(now()), conn) > 0
        if done:
            await self._announce([session_id], user_id, reason)
        return done

    async def revoke_all(self, user_id: str, reason: str, keep: str | None = None, conn: Connection | None = None) -> list[str]:
        ids = await self._accounts.revoke_user_sessions(user_id, reason, iso(now()), keep, conn)
        await self._announce(ids, user_id, reason)
        return ids

    async def is_revoked(self, session_id: str) -> bool:
        return await self._cache.is_revoked(revocation_key(session_id))

    async def warm(self) -> None:
        """After a restart with the in-process cache, re-mark sessions revoked within a token lifetime."""
        since = iso(now() - timedelta(seconds=self._mark_s))
        for session_id in await self._accounts.revoked_since(since):
            await self._cache.revoke(revocation_key(session_id), self._mark_s)
