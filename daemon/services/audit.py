"""The audit trail: who did what to whom, from where, and when.

Each entry is announced as `audit.recorded` on the `audit` topic (admins) once it is stored: at once, or,
for an entry written inside a caller's transaction, by the caller after the commit (`announce`).
"""

from __future__ import annotations

from typing import Any

from daemon.clock import iso, iso_now
from daemon.ids import new_id
from daemon.services.pages import decode_cursor, next_cursor
from daemon.services.realtime import AUDIT
from daemon.stores.events import EventBus
from daemon.stores.sql import Connection
from daemon.stores.sql.accounts import Accounts
from shared.models import Page
from shared.models.users import AuditEvent, AuditQuery


class Audit:
    def __init__(self, accounts: Accounts, events: EventBus) -> None:
        self._accounts = accounts
        self._events = events

    async def record(
        self,
        event: str,
        *,
        actor_id: str | None = None,
        target_id: str | None = None,
        ip: str | None = None,
        conn: Connection | None = None,
        **detail: Any,
    ) -> AuditEvent:
        """Store an entry; announce it now unless it is part of `conn`'s transaction."""
        entry = {
            "id": new_id("aud"),
            "at": iso_now(),
            "event": event,
            "actor_id": actor_id,
            "target_id": target_id,
            "ip": ip,
            "detail": detail,
        }
        await self._accounts.insert_audit(entry, conn)
        recorded = AuditEvent.model_validate(entry)
        if conn is None:
            await self.announce(recorded)
        return recorded

    async def announce(self, entry: AuditEvent) -> None:
        await self._events.publish(AUDIT, "audit.recorded", entry.model_dump(mode="json"))

    async def list(self, query: AuditQuery) -> Page[AuditEvent]:
        rows = await self._accounts.audit(
            query.user_id,
            query.event,
            iso(query.since) if query.since else None,
            decode_cursor(query.cursor),
            query.limit + 1,
        )
        cursor = next_cursor(rows, query.limit)
        return Page[AuditEvent](items=[AuditEvent.model_validate(r) for r in rows], next_cursor=cursor)
