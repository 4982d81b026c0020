"""The WebSocket dispatcher's rounds (daemon/api/realtime.py): a round of a few hundred sockets runs
through without giving up the loop, so nothing published meanwhile waits for it to end; only a long
round (past _TURN_S) lets the rest of the loop run. Fake connections, no sockets: what is checked is
the order of things on the loop, not how long they take."""

from __future__ import annotations

import asyncio

from daemon.api import realtime
from daemon.services.principal import Principal
from daemon.stores.events import Event

SOCKETS = 300  # three slices of 100: a round that yields would do it between them


class FakeConnection:
    def __init__(self, writes: list[int], n: int) -> None:
        self.principal = Principal(user_id=f"u{n}", role="admin", scopes=frozenset({"read", "admin"}))
        self.topics = {"users"}
        self.closing = False
        self.held = None
        self.last_id = ""
        self.writes, self.n = writes, n

    def write(self, frames: list[bytes]) -> None:
        self.writes.append(self.n)

    def end(self, code: int, reason: str) -> None:
        raise AssertionError("nobody's access ends here")


async def round_seen_from_another_task() -> tuple[list[int], int]:
    """Dispatches one event to SOCKETS fakes; returns the writes and how many had been made when a task
    scheduled just before the round first ran."""
    gateway = realtime.Gateway()
    writes: list[int] = []
    gateway.connections = {FakeConnection(writes, n) for n in range(SOCKETS)}
    seen: list[int] = []

    async def other() -> None:
        seen.append(len(writes))

    task = asyncio.create_task(other())
    await gateway.dispatch([Event(id="1", topic="users", event="user.updated", at="", data={"id": "x"})])
    await task
    return writes, seen[0]


async def test_a_round_of_a_few_hundred_sockets_runs_through():
    writes, seen = await round_seen_from_another_task()
    assert sorted(writes) == list(range(SOCKETS))
    assert seen == SOCKETS


async def test_a_long_round_lets_the_loop_run_and_still_reaches_every_socket(monkeypatch):
    monkeypatch.setattr(realtime, "_TURN_S", 0.0)  # every round counts as long
    writes, seen = await round_seen_from_another_task()
    assert sorted(writes) == list(range(SOCKETS))
    assert seen < SOCKETS
