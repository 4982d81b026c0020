"""Following the event bus, for what a process keeps a copy of and must hear every change to.

A copy (the revoked sessions, the cached user rows) may be trusted only while it follows: from the moment
the bus answers and the copy has caught up with what it may have missed, until the bus reports a gap.
`Follower` runs that cycle for one copy and says whether it is following; while it is not, the copy's
owner must ask the authority (the cache, SQL) instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from daemon.stores.errors import Unavailable
from daemon.stores.events import Event, EventBus

log = logging.getLogger("bastion.following")

RETRY_S = 1.0  # between attempts to follow the bus again after it failed
ECHO_WAIT_S = 1.0  # how long a write waits to read its own event back before answering anyway


class Follower:
    def __init__(self, events: EventBus, apply: Callable[[Event], None], catch_up: Callable[[], Awaitable[object]],
                 what: str) -> None:
        """`apply` takes each event; `catch_up` runs once listening and before following, to read from the
        authority what the copy may have missed; `what` names the copy in the logs."""
        self._events = events
        self._apply = apply
        self._catch_up = catch_up
        self._what = what
        self.following = False
        self._last_seen = ""  # the id of the last event read; ids of one bus sort in order
        self._echoes: list[tuple[str, asyncio.Future[None]]] = []

    async def run(self) -> None:
        """For as long as the daemon runs (a task of the app's)."""
        while True:
            try:
                # Only once the bus answers: an outage is told to listeners once, so a copy started while
                # it lasts would hear nothing, yet believe itself current.
                await self._events.ping()
                listener = self._events.listen()  # before catching up, so no change falls between the two
                try:
                    await self._catch_up()
                    self.following = True
                    async for event in listener:
                        self._last_seen = event.id
                        self._apply(event)
                        self._wake_echoes()
                finally:
                    self.following = False
                    listener.close()
                    for _, waiter in self._echoes:
                        if not waiter.done():
                            waiter.set_result(None)
            except Unavailable as exc:
                log.info("the %s asks the authority until the event bus is back", self._what, extra={"reason": str(exc)})
            except Exception:
                log.exception("the %s stopped following the event bus; it asks the authority until it is back", self._what)
            await asyncio.sleep(RETRY_S)

    async def echo(self, event_id: str) -> None:
        """Return once this process has read back the event it published, by which time the bus has sent it
        to every other process too: a write announced this way is known everywhere when its caller hears
        back. Returns at once while not following (there is nothing to wait for)."""
        if not self.following or self._last_seen >= event_id:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._echoes.append((event_id, waiter))
        try:
            await asyncio.wait_for(waiter, ECHO_WAIT_S)
        except TimeoutError:
            log.warning("the %s did not read its own event back from the bus in time", self._what)
        finally:
            self._echoes = [(i, w) for i, w in self._echoes if w is not waiter]

    def _wake_echoes(self) -> None:
        for event_id, waiter in self._echoes:
            if event_id <= self._last_seen and not waiter.done():
                waiter.set_result(None)
