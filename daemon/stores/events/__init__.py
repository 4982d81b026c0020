"""The event bus: publish an event on a topic, hear every event (from any replica), replay from an id.

Two backends: in-process (one daemon) and Redis Streams (many replicas). Every event gets an id that
orders it; a bounded history serves resume (`since`). `since` answers None when the id is older than
the history holds, which the WebSocket gateway turns into a `resync` message.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Event:
    id: str
    topic: str
    event: str
    at: str
    data: dict[str, Any] = field(default_factory=dict)


class EventBus(Protocol):
    name: str

    async def publish(self, topic: str, event: str, data: dict[str, Any]) -> Event: ...

    def listen(self) -> AsyncIterator[Event]:
        """Every event published from now on, by this process or any other sharing the bus."""

    async def since(self, event_id: str, topics: set[str]) -> list[Event] | None:
        """The events after `event_id` on these topics, in order; None if the history no longer reaches back."""

    async def ping(self) -> None: ...

    async def close(self) -> None: ...
