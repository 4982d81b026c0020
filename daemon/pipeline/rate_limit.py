"""Stage 4: rate limiting per client address and route class, through the cache store.

Classes: `api` (every API route) and `auth` (login, refresh, register, password reset: the ones worth
brute-forcing, so far tighter). Per-account login limits live in the auth service, which knows the
account. Answers carry the RateLimit-* headers; a refusal is 429 with Retry-After.
"""

from __future__ import annotations

import math

from aiohttp import web

from daemon.context import CACHE, CLIENT_IP, METRICS
from daemon.api.routing import endpoint_of
from daemon.pipeline import Next
from daemon.settings import Settings
from shared.errors import ApiError, Code

PERIOD_S = 60.0


def rate_limit_headers(limit: int, remaining: int, reset_s: float) -> dict[str, str]:
    return {
        "RateLimit-Limit": str(limit),
        "RateLimit-Remaining": str(max(0, remaining)),
        "RateLimit-Reset": str(math.ceil(reset_s)),
    }


def rate_limit(settings: Settings):
    limits = {"api": settings.rate_limit_per_minute, "auth": settings.auth_rate_limit_per_minute}

    @web.middleware
    async def middleware(request: web.Request, handler: Next) -> web.StreamResponse:
        spec = endpoint_of(request.match_info.handler)
        limit = limits.get(spec.rate, 0) if spec else 0
        if not limit:
            return await handler(request)
        key = f"rl:{spec.rate}:{request[CLIENT_IP]}"
        decision = await request.app[CACHE].hit(key, limit, PERIOD_S)
        headers = rate_limit_headers(limit, decision.remaining, decision.reset_s)
        if not decision.allowed:
            request.app[METRICS].rate_limited.labels(spec.rate).inc()
            headers["Retry-After"] = decision.retry_after_header
            raise ApiError(Code.RATE_LIMITED, "too many requests from this address", headers=headers)
        try:
            response = await handler(request)
        except ApiError as exc:
            exc.headers = {**headers, **exc.headers}
            raise
        if not response.prepared:
            response.headers.update(headers)
        return response

    return middleware
