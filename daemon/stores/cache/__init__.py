"""Shared, short-lived state: rate limits and revocations (in-process, or Redis for many replicas).

The limiter is GCRA (the generic cell rate algorithm): one stored number per key, the theoretical
arrival time, which both backends update atomically. `limit` requests per `period_s`, with bursts up
to `limit`. A negative cost gives hits back (never past a full bucket): the guess limits
(daemon/services/guesses.py) reserve a guess before checking it and return it when it was right.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple, Protocol


class RateDecision(NamedTuple):  # a tuple: made on every request, and a frozen dataclass costs 3x to build
    allowed: bool
    limit: int
    remaining: int
    reset_s: float  # until the bucket is full again
    retry_after_s: float  # 0 when allowed

    @property
    def retry_after_header(self) -> str:
        """Retry-After in whole seconds, at least 1."""
        return str(max(1, math.ceil(self.retry_after_s)))


def gcra(stored_tat: float | None, now: float, limit: int, period_s: float, cost: int) -> tuple[float, RateDecision]:
    """One GCRA step: the new stored value and the decision. Pure, so both backends share the rule
    (the Redis backend runs the same arithmetic in Lua)."""
    interval = period_s / limit
    tat = max(stored_tat or now, now)
    new_tat = max(tat + cost * interval, now)  # a refund fills the bucket at most
    if new_tat - now <= period_s + 1e-9:
        remaining = math.floor((period_s - (new_tat - now)) / interval + 1e-9)
        return new_tat, RateDecision(True, limit, remaining, new_tat - now, 0.0)
    remaining = max(0, math.floor((period_s - (tat - now)) / interval + 1e-9))
    return tat, RateDecision(False, limit, remaining, tat - now, new_tat - now - period_s)


class Cache(Protocol):
    name: str

    async def hit(self, key: str, limit: int, period_s: float, cost: int = 1) -> RateDecision:
        """Count `cost` against the key; denied hits are not counted. The one-key case of `hit_all`."""

    async def hit_all(self, checks: Sequence[tuple[str, int, float]], cost: int = 1) -> list[RateDecision]:
        """Count `cost` against every (key, limit, period_s) if every one allows it, else against none, as
        one atomic step (one round trip); a decision for each key, in order. A negative cost gives back."""

    async def peek(self, checks: Sequence[tuple[str, int, float]]) -> list[RateDecision]:
        """For each (key, limit, period_s): whether one more hit would be allowed, changing nothing. Many
        keys at once, as one round trip: a login checks two before its password is verified."""

    async def reset(self, key: str) -> None: ...

    async def revoke(self, name: str, ttl_s: float) -> None:
        """Remember `name` as revoked for `ttl_s` seconds (e.g. a session id, for its tokens' lifetime)."""

    async def is_revoked(self, name: str) -> bool: ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...
