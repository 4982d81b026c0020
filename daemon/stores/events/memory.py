"""In-process event bus: a bounded deque for history and one asyncio.Queue per listener."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from daemon.clock import iso_now
from daemon.stores.events import Event


class MemoryEventBus:
    name = "memory"

    def __init__(self, history: int = 10_000) -> None:
        self._history: deque[Event] = deque(maxlen=history)
        self._listeners: set[asyncio.Queue[Event]] = set()
        self._counter = 0

    async def publish(self, topic: str, event: str, data: dict[str, Any]) -> Event:
        self._counter += 1
        # Zero-padded so ids compare as strings in the same order as numbers.
        item = Event(id=f"{self._counter:020d}", topic=topic, event=event, at=iso_now(), data=data)
        self._history.append(item)
        for queue in self._listeners:
            queue.put_nowait(item)
        return item

    async def listen(self) -> AsyncIterator[Event]:
        queue: asyncio.Queue[Event] = asyncio.Queue()
        self._listeners.add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._listeners.discard(queue)

    async def since(self, event_id: str, topics: set[str]) -> list[Event] | None:
        if not self._history:
            return [] if event_id >= f"{self._counter:020d}" else None
        oldest = self._history[0].id
        # The history reaches back to `event_id` only if the event right after it is still held.
        if event_id < oldest and f"{int(event_id or 0) + 1:020d}" < oldest:
            return None
        return [e for e in self._history if e.id > event_id and e.topic in topics]

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None
