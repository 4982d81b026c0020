"""Ending sessions, so that their access tokens stop working at once and not at their expiry.

A revoked session is marked in SQL (authoritative: refresh checks it) and in the cache for as long as
its access tokens can live, and announced on the event bus so that open WebSockets of that session
close. Every request asks whether its session is revoked, so that answer must be cheap: each process
keeps a mirror of the sessions revoked within a token lifetime, filled from SQL at start and kept
current by following the bus (`follow()`), and answers from it without a round trip to Redis. While
the mirror is not following (before start-up finishes, or after the bus lost Redis and until the
mirror has caught up again from SQL) every check goes to the cache instead, so a gap in the bus never
lets a revoked token through. Every RECONCILE_S the mirror also re-reads SQL, for a revocation that was
committed but whose announcement failed.

Another replica learns of a revocation when it reads the event from the bus, about a millisecond
later. To make that window as small as the bus allows, `revoke` returns only once this process's own
mirror has read the event back, by which time Redis has sent it to every replica.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from daemon.clock import iso, now
from daemon.stores.cache import Cache
from daemon.stores.errors import Unavailable
from daemon.stores.events import Event, EventBus
from daemon.stores.sql import Connection
from daemon.services.following import Follower
from daemon.services.tokens import LEEWAY_S
from daemon.stores.sql.accounts import Accounts

RECONCILE_S = 30.0


def revocation_key(session_id: str) -> str:
    return f"revoked-session:{session_id}"


class RevokedMirror:
    """The sessions revoked within a token lifetime, as this process last heard; pruned as they age."""

    def __init__(self, keep_s: float) -> None:
        self._keep_s = keep_s
        self._until: dict[str, float] = {}  # session id -> when its tokens have all expired (monotonic)
        self._next_prune = 0.0

    def add(self, session_id: str) -> None:
        moment = time.monotonic()
        self._until[session_id] = moment + self._keep_s
        if moment >= self._next_prune:
            self._until = {s: t for s, t in self._until.items() if t > moment}
            self._next_prune = moment + self._keep_s

    def __contains__(self, session_id: str) -> bool:
        return session_id in self._until


class Sessions:
    def __init__(self, accounts: Accounts, cache: Cache, events: EventBus, access_ttl_s: int) -> None:
        self._accounts = accounts
        self._cache = cache
        self._events = events
        self._mark_s = access_ttl_s + LEEWAY_S
        self._revoked = RevokedMirror(self._mark_s)
        # While it follows, the mirror holds every revocation: checks may skip the cache.
        self._follower = Follower(events, self._apply, self._mirror_sql, "revocation mirror")

    async def _announce(self, session_ids: list[str], user_id: str, reason: str) -> None:
        last = None
        for session_id in session_ids:
            self._revoked.add(session_id)
            await self._cache.revoke(revocation_key(session_id), self._mark_s)
            last = await self._events.publish(
                "users", "session.revoked", {"session_id": session_id, "user_id": user_id, "reason": reason}
            )
        if last is not None:
            await self._follower.echo(last.id)

    async def revoke(self, session_id: str, user_id: str, reason: str, conn: Connection | None = None) -> bool:
        done = await self._accounts.revoke_session(session_id, reason, iso(now()), conn) > 0
        if done:
            await self._announce([session_id], user_id, reason)
        return done

    async def revoke_all(self, user_id: str, reason: str, keep: str | None = None, conn: Connection | None = None) -> list[str]:
        ids = await self._accounts.revoke_user_sessions(user_id, reason, iso(now()), keep, conn)
        await self._announce(ids, user_id, reason)
        return ids

    @property
    def following(self) -> bool:
        return self._follower.following

    async def is_revoked(self, session_id: str) -> bool:
        if session_id in self._revoked:
            return True
        if self._follower.following:
            return False
        return await self._cache.is_revoked(revocation_key(session_id))

    async def _mirror_sql(self) -> list[str]:
        """Add the sessions SQL says were revoked within a token lifetime to the mirror; returns them."""
        session_ids = await self._accounts.revoked_since(iso(now() - timedelta(seconds=self._mark_s)))
        for session_id in session_ids:
            self._revoked.add(session_id)
        return session_ids

    async def warm(self) -> None:
        """Load the sessions revoked within a token lifetime from SQL into the mirror, and into the cache
        (the in-process cache starts empty after a restart)."""
        for session_id in await self._mirror_sql():
            await self._cache.revoke(revocation_key(session_id), self._mark_s)

    async def follow(self) -> None:
        """Keep the mirror current, for as long as the daemon runs (a task of the app's)."""
        await asyncio.gather(self._follower.run(), self._reconcile())

    def _apply(self, event: Event) -> None:
        if event.event == "session.revoked":
            self._revoked.add(event.data["session_id"])

    async def _reconcile(self) -> None:
        """Re-read SQL now and then: a revocation committed whose announcement failed (Redis went away
        between the two) reaches the mirrors within RECONCILE_S instead of at its tokens' expiry."""
        while True:
            await asyncio.sleep(RECONCILE_S)
            try:
                await self._mirror_sql()
            except Unavailable:
                pass  # the database is down: nothing new can have been revoked either
