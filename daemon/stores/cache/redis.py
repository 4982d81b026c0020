"""Redis cache: rate limits and revocations shared by every replica.

A GCRA step must read and write the stored arrival time atomically, so it runs as one Lua script. The
script only decides whether to store the new time; the decision the caller sees is computed by the
same pure `gcra()` the memory backend uses, from the very inputs the script saw (the stored value and
the clock), so the two backends cannot disagree. A peek writes nothing: one script reads the clock and
every key asked about, so checking several limits is still one round trip. The clock is Redis's own
TIME, one clock for all replicas; tests may pass a clock of their own.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import redis.asyncio as aioredis

from daemon.stores.cache import RateDecision, gcra
from daemon.stores.redis_errors import unavailable_on_error

# Sets `now` to the clock passed in ARGV[i], or to Redis's own TIME when that argument is "".
def _clock_from(i: int) -> str:
    return f"""
local now = tonumber(ARGV[{i}])
if now == nil then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
"""


# KEYS[1]: the limiter key. ARGV: limit, period_s, cost, now (or "" for Redis TIME).
# Returns {stored arrival time or "", now}, as strings: Lua numbers returned bare become integers.
_GCRA = _clock_from(4) + """
local raw = redis.call('GET', KEYS[1])
local stored = tonumber(raw)
local limit, period, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local interval = period / limit
local tat = math.max(stored or now, now)
local new_tat = tat + cost * interval
if new_tat - now <= period + 1e-9 then
  local ttl_ms = math.ceil((new_tat - now) * 1000) + 1
  redis.call('SET', KEYS[1], string.format('%.17g', new_tat), 'PX', ttl_ms)
end
return {raw or '', string.format('%.17g', now)}
"""

# KEYS: the limiter keys to peek at. ARGV[1]: now, or "" for Redis TIME.
# Returns {now, then the stored arrival time or "" of each key}.
_PEEK = _clock_from(1) + """
local out = {string.format('%.17g', now)}
for i, key in ipairs(KEYS) do
  out[i + 1] = redis.call('GET', key) or ''
end
return out
"""


class RedisCache:
    name = "redis"

    def __init__(self, client: aioredis.Redis, prefix: str = "bastion:", clock: Callable[[], float] | None = None):
        self._client = client
        self._prefix = prefix
        self._clock = clock
        self._hit = client.register_script(_GCRA)
        self._peek = client.register_script(_PEEK)

    def _limiter_key(self, key: str) -> str:
        return f"{self._prefix}rl:{key}"

    def _now(self) -> str:
        """The clock argument of the scripts: "" for Redis's own TIME."""
        return "" if self._clock is None else repr(self._clock())

    async def hit(self, key: str, limit: int, period_s: float, cost: int = 1) -> RateDecision:
        with unavailable_on_error():
            raw, now_text = await self._hit(
                keys=[self._limiter_key(key)], args=[limit, repr(float(period_s)), cost, self._now()]
            )
        stored = float(raw) if raw else None
        return gcra(stored, float(now_text), limit, period_s, cost)[1]

    async def peek(self, checks: Sequence[tuple[str, int, float]]) -> list[RateDecision]:
        with unavailable_on_error():
            now_text, *stored = await self._peek(keys=[self._limiter_key(key) for key, _, _ in checks],
                                                 args=[self._now()])
        moment = float(now_text)
        return [gcra(float(raw) if raw else None, moment, limit, period_s, 1)[1]
                for (_, limit, period_s), raw in zip(checks, stored, strict=True)]

    async def reset(self, key: str) -> None:
        with unavailable_on_error():
            await self._client.delete(self._limiter_key(key))

    async def revoke(self, name: str, ttl_s: float) -> None:
        with unavailable_on_error():
            await self._client.set(f"{self._prefix}rv:{name}", "1", px=max(1, math.ceil(ttl_s * 1000)))

    async def is_revoked(self, name: str) -> bool:
        with unavailable_on_error():
            return bool(await self._client.exists(f"{self._prefix}rv:{name}"))

    async def ping(self) -> None:
        with unavailable_on_error():
            await self._client.ping()

    async def close(self) -> None:
        """The client belongs to the app (daemon/app.py), which closes it after every user of it."""
