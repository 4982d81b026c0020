"""The event bus: publish an event on a topic, hear every event (from any replica), replay from an id.

Two backends: in-process (one daemon) and Redis Streams (many replicas). Every event gets an id that
orders it: within one bus, ids are fixed-width strings, so comparing two as strings compares them in
publish order. A bounded history serves resume (`since`). `since` answers None when the history no
longer reaches back to the id, or the id is not one this bus issued (another process's, a wiped
Redis's), which the WebSocket gateway turns into a `resync` message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

# How long `Listener.batch` waits at most for this process's publishes still on their way.
SETTLE_S = 0.005


@dataclass(frozen=True)
class Event:
    id: str
    topic: str
    event: str
    at: str
    data: dict[str, Any] = field(default_factory=dict)


class Listener:
    """Every event from the moment `listen()` returns, in order. Iterating raises `Unavailable` once
    when the bus loses its backing service (events may have been missed); the next `listen()` resumes."""

    def __init__(self, detach: Callable[[Listener], None], pending: Callable[[], bool] = lambda: False) -> None:
        self._queue: asyncio.Queue[Event | BaseException] = asyncio.Queue()
        self._detach = detach
        self._pending = pending  # whether events this process published are still on their way to us
        self._wake: asyncio.Future[None] | None = None  # set while `batch` waits for them
        self._closed = False
        self._error: BaseException | None = None  # met while taking a batch: raised by the next call

    def feed(self, item: Event | BaseException) -> None:
        self._queue.put_nowait(item)
        self.nudge()

    def nudge(self) -> None:
        """Wakes a `batch` waiting for this process's publishes: one arrived, or the bus's count changed."""
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    def __aiter__(self) -> Listener:
        return self

    async def __anext__(self) -> Event:
        if self._closed:
            raise StopAsyncIteration
        if self._error is not None:
            self.close()
            raise self._error
        try:
            item = await self._queue.get()
        except asyncio.CancelledError:
            self.close()  # a task iterating with `async for` was cancelled: nobody listens any more
            raise
        if isinstance(item, BaseException):
            self.close()
            raise item
        return item

    async def batch(self, limit: int = 1000) -> list[Event]:
        """The next event and those already waiting behind it (at most `limit`), in order: a burst of
        events costs its reader one wake-up, not one each.

        With Redis, this process's own publishes come back through the stream reader, one read at a
        time. While some of them are still on their way, the batch waits for them (at most SETTLE_S):
        a burst that a request handler has already published then goes out together, instead of all
        but its first waiting for a whole WebSocket round to end."""
        events = [await self.__anext__()]
        self._take_waiting(events, limit)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SETTLE_S
        while len(events) < limit and self._error is None and self._pending() and loop.time() < deadline:
            wake = self._wake = loop.create_future()
            timer = loop.call_later(deadline - loop.time(), self.nudge)
            try:
                await wake
            except asyncio.CancelledError:
                self.close()  # as in __anext__: nobody listens any more (the events taken go with it)
                raise
            finally:
                timer.cancel()
                self._wake = None
            self._take_waiting(events, limit)
        return events

    def _take_waiting(self, events: list[Event], limit: int) -> None:
        while len(events) < limit and not self._queue.empty():
            item = self._queue.get_nowait()
            if isinstance(item, BaseException):
                self._error = item  # the events before it are handed over first
                return
            events.append(item)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._detach(self)


class EventBus(Protocol):
    name: str

    async def publish(self, topic: str, event: str, data: dict[str, Any]) -> Event: ...

    def listen(self) -> Listener:
        """Every event published from now on, by this process or any other sharing the bus."""

    async def since(self, event_id: str, topics: set[str] | None) -> list[Event] | None:
        """The events after `event_id` on these topics (None: on every topic), in order; None if the history
        no longer reaches back."""

    async def recent(self, count: int) -> list[Event]:
        """The newest `count` events of the history (fewer if it holds fewer), oldest first."""

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


class Fanout:
    """The listeners of one process, the hook that counts what is published, and (for a bus whose own
    events come back late) whether some of this process's events are still on their way."""

    def __init__(self, on_publish: Callable[[Event], None] | None = None,
                 pending: Callable[[], bool] | None = None) -> None:
        self.listeners: set[Listener] = set()
        self.on_publish = on_publish or (lambda event: None)
        self.pending = pending or (lambda: False)

    def listen(self) -> Listener:
        listener = Listener(self.listeners.discard, self.pending)
        self.listeners.add(listener)
        return listener

    def deliver(self, item: Event | BaseException) -> None:
        for listener in list(self.listeners):
            listener.feed(item)

    def nudge(self) -> None:
        """`pending` may have changed."""
        for listener in list(self.listeners):
            listener.nudge()
