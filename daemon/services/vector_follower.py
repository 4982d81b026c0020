"""Each replica's vector index follows the shared table (PostgreSQL) through the event bus.

An event about a collection's vectors (from any replica) wakes the follower, which applies what changed
by reading it from SQL (daemon/stores/vectors/clock.py); it also does so every RECONCILE_S without one,
so a change whose event was lost (Redis cut between replicas, a publish that failed after its commit)
reaches this replica within that bound. Events only say when to look, so one catch-up applies a burst
of them. The figures: how long after its event a change was applied here (`bastion_vector_follow_seconds`).
"""

from __future__ import annotations

import asyncio
import logging
import time

from prometheus_client import Histogram

from daemon.clock import parse
from daemon.services.following import Follower
from daemon.stores.errors import Unavailable
from daemon.stores.events import Event, EventBus

log = logging.getLogger("bastion.vectors")

RECONCILE_S = 2.0
CHANGES = {"vectors.upserted", "vectors.deleted", "collection.deleted"}
# From the event's publication to its change applied here; the buckets are fine below 100 ms, the goal.
LAG_BUCKETS = (0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5,
               1.0, 2.5, 5.0)


class VectorFollower:
    def __init__(self, store, events: EventBus, reconcile_s: float = RECONCILE_S, registry=None) -> None:
        """`store`: a ReplicatedVectorStore (it has `reconcile`)."""
        self._store = store
        self._reconcile_s = reconcile_s
        self._wake = asyncio.Event()
        self._heard: list[float] = []  # publication times (epoch s) of the events waiting to be applied
        self._follower = Follower(events, self._hear, store.reconcile, "vector index")
        self.lag = Histogram("bastion_vector_follow_seconds",
                             "from a vector event's publication to its change applied in this replica's index",
                             buckets=LAG_BUCKETS, registry=registry)

    def _hear(self, event: Event) -> None:
        if event.event in CHANGES and event.topic.startswith("collections/"):
            self._heard.append(parse(event.at).timestamp())
            self._wake.set()

    async def run(self) -> None:
        """For as long as the daemon runs (a task of the app's)."""
        await asyncio.gather(self._follower.run(), self._apply())

    async def _apply(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self._reconcile_s)
            except TimeoutError:
                pass
            self._wake.clear()
            heard, self._heard = self._heard, []
            try:
                await self._store.reconcile()
            except Unavailable as exc:
                log.info("the vector index could not follow the table; it tries again",
                         extra={"reason": str(exc)})
                continue
            except Exception:
                log.exception("the vector index could not follow the table; it tries again")
                continue
            now = time.time()
            for at in heard:
                self.lag.observe(max(0.0, now - at))
