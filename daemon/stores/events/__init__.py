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

    def __init__(self, detach: Callable[[Listener], None]) -> None:
        self._queue: asyncio.Queue[Event | BaseException] = asyncio.Queue()
        self._detach = detach
        self._closed = False
        self._error: BaseException | None = None  # met while taking a batch: raised by the next call

    def feed(self, item: Event | BaseException) -> None:
        self._queue.put_nowait(item)

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
        events costs its reader one wake-up, not one each."""
        events = [await self.__anext__()]
        while len(events) < limit and not self._queue.empty():
            item = self._queue.get_nowait()
            if isinstance(item, BaseException):
                self._error = item  # the events before it are handed over first
                break
            events.append(item)
        return events

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._detach(self)


class EventBus(Protocol):
    name: str

    async def publish(self, topic: str, event: str, data: dict[str, Any]) -> Event: ...

    def listen(self) -> Listener:
        """Every event published from now on, by this process or any other sharing the bus."""

    async def since(self, event_id: str, topics: set[str]) -> list[Event] | None:
        """The events after `event_id` on these topics, in order; None if the history no longer reaches back."""

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


class Fanout:
    """The listeners of one process, and the hook that counts what is published."""

    def __init__(self, on_publish: Callable[[Event], None] | None = None) -> None:
        self.listeners: set[Listener] = set()
        self.on_publish = on_publish or (lambda event: None)

    def listen(self) -> Listener:
        listener = Listener(self.listeners.discard)
        self.listeners.add(listener)
        return listener

    def deliver(self, item: Event | BaseException) -> None:
        for listener in list(self.listeners):
            listener.feed(item)
