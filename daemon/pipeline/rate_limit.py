"""Stage 4: rate limiting per client address and route class, through the cache store.

Classes: `api` (every API route) and `auth` (login, refresh, register, password reset: the ones worth
brute-forcing, so far tighter). Per-account login limits live in the auth service, which knows the
account. Answers carry the RateLimit-* headers; a refusal is 429 with Retry-After.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web
from multidict import istr

from daemon.context import CACHE, CLIENT_IP, METRICS
from daemon.api.routing import endpoint_of
from daemon.pipeline import Next
from daemon.settings import Settings
from daemon.stores.cache import Cache, RateDecision
from shared.errors import ApiError, Code

PERIOD_S = 60.0
BATCH_FRACTION = 100  # a batch is limit // 100 hits
LEASE_S = 1.0  # how long a process may spend a batch it took
PRUNE_AT = 10_000  # batches held before the spent and expired ones are dropped


@dataclass
class _Batch:
    left: int  # hits still to spend here
    shared_remaining: int  # what the shared limiter had left after granting the batch
    reset_at: float
    expires_at: float


class Allowance:
    """Rate-limit hits, taken from the shared cache in batches (see the module's docstring)."""

    def __init__(self, cache: Cache, period_s: float = PERIOD_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._cache = cache
        self._period_s = period_s
        self._clock = clock
        self._batches: dict[str, _Batch] = {}
        self._taking: dict[str, asyncio.Future[None]] = {}  # keys whose next batch is being taken

    def take(self, key: str, limit: int) -> RateDecision | None:
        """A hit from the batch this process holds for `key`; None when there is none to spend and `hit`
        must go to the cache. Most requests end here, without the cost of a coroutine."""
        batch = self._batches.get(key)
        if batch is None or batch.left <= 0:
            return None
        moment = self._clock()
        if batch.expires_at <= moment:
            return None
        batch.left -= 1
        return RateDecision(True, limit, batch.shared_remaining + batch.left, batch.reset_at - moment, 0.0)

    async def hit(self, key: str, limit: int) -> RateDecision:
        size = limit // BATCH_FRACTION
        if size <= 1:  # a small limit is counted exactly, one hit at a time
            return await self._cache.hit(key, limit, self._period_s)
        while True:
            decision = self.take(key, limit)
            if decision is not None:
                return decision
            taking = self._taking.get(key)
            if taking is None:
                break
            # Another request is already taking this key's next batch: wait for it rather than have every
            # request of a burst go to the cache at once (256 of them took down a Redis client's pool).
            await taking
        moment = self._clock()
        done = self._taking[key] = asyncio.get_running_loop().create_future()
        try:
            decision = await self._cache.hit(key, limit, self._period_s, cost=size)
            if not decision.allowed:
                return await self._cache.hit(key, limit, self._period_s)  # near the limit: one at a time
        finally:
            del self._taking[key]
            done.set_result(None)
        self._keep(key, _Batch(size - 1, decision.remaining, moment + decision.reset_s, moment + LEASE_S))
        return RateDecision(True, limit, decision.remaining + size - 1, decision.reset_s, 0.0)

    def _keep(self, key: str, batch: _Batch) -> None:
        if len(self._batches) >= PRUNE_AT:
            moment = self._clock()
            self._batches = {k: b for k, b in self._batches.items() if b.left > 0 and b.expires_at > moment}
        self._batches[key] = batch


_LIMIT, _REMAINING, _RESET = istr("RateLimit-Limit"), istr("RateLimit-Remaining"), istr("RateLimit-Reset")


def rate_limit_headers(limit: str, remaining: int, reset_s: float) -> list[tuple[istr, str]]:
    # Pairs with case-folded names, for one `extend`: a dict given to `update` cost 4,000 instructions
    # more per request, of the stage's 25,000 (bench.instructions).
    return [(_LIMIT, limit), (_REMAINING, str(max(0, remaining))), (_RESET, str(math.ceil(reset_s)))]


def rate_limit(settings: Settings):
    limits = {"api": settings.rate_limit_per_minute, "auth": settings.auth_rate_limit_per_minute}
    limit_values = {name: str(limit) for name, limit in limits.items()}
    allowance: Allowance | None = None  # made at the first request: the app opens its cache at start-up

    @web.middleware
    async def middleware(request: web.Request, handler: Next) -> web.StreamResponse:
        spec = endpoint_of(request.match_info.handler)
        limit = limits.get(spec.rate, 0) if spec else 0
        if not limit:
            return await handler(request)
        key = f"rl:{spec.rate}:{request[CLIENT_IP]}"
        nonlocal allowance
        if allowance is None:
            allowance = Allowance(request.app[CACHE])
        decision = allowance.take(key, limit)
        if decision is None:
            decision = await allowance.hit(key, limit)
        headers = rate_limit_headers(limit_values[spec.rate], decision.remaining, decision.reset_s)
        if not decision.allowed:
            request.app[METRICS].rate_limited.labels(spec.rate).inc()
            raise ApiError(Code.RATE_LIMITED, "too many requests from this address",
                           headers={**dict(headers), "Retry-After": decision.retry_after_header})
        try:
            response = await handler(request)
        except ApiError as exc:
            exc.headers = {**dict(headers), **exc.headers}
            raise
        if not response.prepared:
            response.headers.extend(headers)
        return response

    return middleware
