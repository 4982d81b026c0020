"""The user rows this process read lately, so that `GET /users/me` and the other reads by id skip SQL.

With PostgreSQL that read was the one round trip left on most requests. Every write to a user row is
announced on the event bus once committed (`changed`, `deleted`: the one way services report such a
write), and every process drops its copy when it reads the announcement; the writer's own process drops
it before re-reading, so a caller always reads back what it wrote, and the write's answer waits until its
event has come back from the bus, by which time every replica has it as well.

The cache is trusted only while it follows the bus (daemon/services/following.py); before that, and
after a gap, reads go to SQL. More guards:
- a read that was in flight while any row was dropped is not kept (it may hold the old row);
- concurrent misses for one user share one read, unless a drop came between them;
- an entry lives at most TTL_S, for a write made where this process cannot hear it (another process on
  the embedded database, an operator's SQL); one still in use is read again in the background from
  REFRESH_AFTER_S on, so that the requests for a busy user never all wait for SQL at once when it
  expires (a slow moment of the database would otherwise stall every one of them);
- with a read replica configured the cache is off: a read from a replica that lags could put the old row
  back after the announcement, and reads then leave the primary alone anyway.
"""

from __future__ import annotations

import asyncio
import time

from daemon.services.following import Follower
from daemon.stores.events import Event, EventBus
from daemon.stores.sql import Row
from daemon.stores.sql.accounts import Accounts
from shared.models.users import User

TTL_S = 10.0
REFRESH_AFTER_S = 5.0
MAX_ENTRIES = 10_000


def _retrieve(read: asyncio.Future) -> None:
    if not read.cancelled():
        read.exception()


class UserCache:
    def __init__(self, accounts: Accounts, events: EventBus, enabled: bool = True) -> None:
        self._accounts = accounts
        self._events = events
        self._enabled = enabled
        self._entries: dict[str, tuple[float, User]] = {}  # user id -> (read at, monotonic; the user)
        self._drops = 0  # counts every drop, so that a read can tell whether one happened while it ran
        self._filling: dict[str, tuple[int, asyncio.Future[User | None]]] = {}  # user id -> (drops, its read)
        self._follower = Follower(events, self._apply, self._clear, "user cache")

    async def follow(self) -> None:
        if self._enabled:
            await self._follower.run()

    async def get(self, user_id: str) -> User | None:
        """The user, or None when there is no such user."""
        if not self._follower.following:
            return await self._read(user_id)
        entry = self._entries.get(user_id)
        if entry is not None:
            age = time.monotonic() - entry[0]
            if age < TTL_S:
                if age >= REFRESH_AFTER_S and user_id not in self._filling:
                    self._start_fill(user_id)  # nobody waits for it: the entry serves until it lands
                return entry[1]
        # One read per user at a time: when an entry expired under load, every request for that user
        # went to SQL at once (256 of them held p99 at 1-2 s). A read that began before the last drop is
        # not joined: it may return the row as it was before a write this caller has to see.
        filling = self._filling.get(user_id)
        if filling is None or filling[0] != self._drops:
            filling = self._start_fill(user_id)
        return await asyncio.shield(filling[1])  # a caller that gives up does not cancel it for the others

    def _start_fill(self, user_id: str) -> tuple[int, asyncio.Future[User | None]]:
        read = asyncio.ensure_future(self._fill(user_id))
        read.add_done_callback(_retrieve)  # an error nobody waits for any more is not logged as lost
        filling = self._filling[user_id] = (self._drops, read)
        return filling

    async def _read(self, user_id: str) -> User | None:
        row = await self._accounts.user(user_id)
        return None if row is None else User.model_validate(row)

    async def _fill(self, user_id: str) -> User | None:
        drops = self._drops
        read_at = time.monotonic()
        try:
            user = await self._read(user_id)
        finally:
            if self._filling.get(user_id, (None, None))[1] is asyncio.current_task():
                del self._filling[user_id]
        if user is not None and drops == self._drops and self._follower.following:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()  # crude, and rare: the next reads fill it again
            self._entries[user_id] = (read_at, user)
        return user

    async def changed(self, event: str, user_id: str, row: Row | None = None) -> User | None:
        """After a write to a user's row has committed: the row as it is now, announced as `event`
        (user.created, user.updated). None if the user is gone meanwhile. `row`: the row as the write
        left it, when the write returned it; else it is read."""
        self._drop(user_id)
        user = User.model_validate(row) if row is not None else await self.get(user_id)
        if user is not None:
            await self._announce(event, user.model_dump(mode="json"))
        return user

    async def deleted(self, user_id: str) -> None:
        self._drop(user_id)
        await self._announce("user.deleted", {"id": user_id})

    async def _announce(self, event: str, data: dict) -> None:
        published = await self._events.publish("users", event, data)
        await self._follower.echo(published.id)

    def _drop(self, user_id: str) -> None:
        self._drops += 1
        self._entries.pop(user_id, None)

    def _apply(self, event: Event) -> None:
        if event.event.startswith("user."):
            self._drop(event.data["id"])

    async def _clear(self) -> None:
        """Catching up after a gap: whatever changed meanwhile is unknown, so everything goes."""
        self._drops += 1
        self._entries.clear()
