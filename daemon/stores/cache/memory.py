"""In-process cache: the embedded default, for one daemon process."""

from __future__ import annotations

import time
from collections.abc import Sequence

from daemon.stores.cache import RateDecision, gcra

_SWEEP_EVERY = 4096


class MemoryCache:
    name = "memory"

    def __init__(self, clock=time.monotonic) -> None:
        self._clock = clock
        self._tats: dict[str, float] = {}
        self._revoked: dict[str, float] = {}
        self._writes = 0

    def _sweep(self, now: float) -> None:
        # A key whose arrival time has passed is a full bucket again, the same as no key at all.
        self._writes += 1
        if self._writes % _SWEEP_EVERY:
            return
        self._tats = {k: v for k, v in self._tats.items() if v > now}
        self._revoked = {k: v for k, v in self._revoked.items() if v > now}

    async def hit(self, key: str, limit: int, period_s: float, cost: int = 1) -> RateDecision:
        now = self._clock()
        tat, decision = gcra(self._tats.get(key), now, limit, period_s, cost)
        if decision.allowed:
            self._tats[key] = tat
            self._sweep(now)
        return decision

    async def hit_all(self, checks: Sequence[tuple[str, int, float]], cost: int = 1) -> list[RateDecision]:
        now = self._clock()
        steps = [gcra(self._tats.get(key), now, limit, period_s, cost) for key, limit, period_s in checks]
        if all(decision.allowed for _, decision in steps):
            for (key, _, _), (tat, _) in zip(checks, steps, strict=True):
                self._tats[key] = tat
            self._sweep(now)
        return [decision for _, decision in steps]

    async def peek(self, checks: Sequence[tuple[str, int, float]]) -> list[RateDecision]:
        now = self._clock()
        return [gcra(self._tats.get(key), now, limit, period_s, 1)[1] for key, limit, period_s in checks]

    async def reset(self, key: str) -> None:
        self._tats.pop(key, None)

    async def revoke(self, name: str, ttl_s: float) -> None:
        now = self._clock()
        self._revoked[name] = now + ttl_s
        self._sweep(now)

    async def is_revoked(self, name: str) -> bool:
        until = self._revoked.get(name)
        return until is not None and until > self._clock()

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None
