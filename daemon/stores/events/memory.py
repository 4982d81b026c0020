"""In-process event bus: a bounded deque for history, delivered to this process's listeners."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from itertools import islice
from typing import Any

from daemon.clock import iso_now
from daemon.stores.events import Event, Fanout, Listener

_last_epoch = 0


class MemoryEventBus:
    name = "memory"

    def __init__(self, history: int = 10_000, on_publish: Callable[[Event], None] | None = None) -> None:
        self._history: deque[Event] = deque(maxlen=history)
        self._fanout = Fanout(on_publish)
        self._counter = 0
        # Ids carry the start time, so an id from an earlier run of the daemon is recognised as
        # foreign (resync) rather than mistaken for one of ours.
        global _last_epoch
        _last_epoch = max(time.time_ns() // 1_000_000, _last_epoch + 1)  # distinct even within one ms
        self._epoch = f"{_last_epoch:013d}-"

    def _id(self, n: int) -> str:
        return f"{self._epoch}{n:012d}"

    async def publish(self, topic: str, event: str, data: dict[str, Any]) -> Event:
        self._counter += 1
        item = Event(id=self._id(self._counter), topic=topic, event=event, at=iso_now(), data=data)
        self._history.append(item)
        self._fanout.on_publish(item)
        self._fanout.deliver(item)
        return item

    def listen(self) -> Listener:
        return self._fanout.listen()

    async def since(self, event_id: str, topics: set[str] | None) -> list[Event] | None:
        epoch, _, counter = event_id.rpartition("-")
        if f"{epoch}-" != self._epoch or not counter.isdigit() or int(counter) > self._counter:
            return None
        after = int(counter)
        oldest = self._counter + 1 - len(self._history)
        # Complete only if the event right after `event_id` is still held (or there is none yet).
        if after + 1 < oldest:
            return None
        skip = max(0, after + 1 - oldest)
        return [e for e in islice(self._history, skip, None) if topics is None or e.topic in topics]

    async def recent(self, count: int) -> list[Event]:
        return list(islice(self._history, max(0, len(self._history) - count), None))

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None
