"""Redis cache: rate limits and revocations shared by every replica.

A GCRA step must read and write the stored arrival times atomically, so it runs as one Lua script (for
one key, or for several counted all or nothing). The script only decides whether to store the new
times; the decision the caller sees is computed by the same pure `gcra()` the memory backend uses,
from the very inputs the script saw (the stored values and the clock), so the two backends cannot
disagree. A peek writes nothing: one script reads the clock and
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


# KEYS: the limiter keys. ARGV: cost, now (or "" for Redis TIME), then limit and period_s of each key.
# Stores every key's new arrival time only when all of them allow the cost (all or nothing).
# Returns {now, then each key's stored arrival time or ""}, as strings: Lua numbers returned bare
# become integers.
_GCRA = _clock_from(2) + """
local cost = tonumber(ARGV[1])
local out = {string.format('%.17g', now)}
local new_tats = {}
local allowed = true
for i, key in ipairs(KEYS) do
  local raw = redis.call('GET', key)
  out[i + 1] = raw or ''
  local limit, period = tonumber(ARGV[2 * i + 1]), tonumber(ARGV[2 * i + 2])
  local interval = period / limit
  local tat = math.max(tonumber(raw) or now, now)
  local new_tat = math.max(tat + cost * interval, now)
  if new_tat - now > period + 1e-9 then
    allowed = false
  end
  new_tats[i] = new_tat
end
if allowed then
  for i, key in ipairs(KEYS) do
    local ttl_ms = math.ceil((new_tats[i] - now) * 1000) + 1
    redis.call('SET', key, string.format('%.17g', new_tats[i]), 'PX', ttl_ms)
  end
end
return out
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
        return (await self.hit_all([(key, limit, period_s)], cost))[0]

    async def hit_all(self, checks: Sequence[tuple[str, int, float]], cost: int = 1) -> list[RateDecision]:
        args: list = [cost, self._now()]
        for _, limit, period_s in checks:
            args += [limit, repr(float(period_s))]
        with unavailable_on_error():
            now_text, *stored = await self._hit(keys=[self._limiter_key(key) for key, _, _ in checks], args=args)
        return self._decisions(checks, now_text, stored, cost)

    @staticmethod
    def _decisions(checks: Sequence[tuple[str, int, float]], now_text: str, stored: list[str], cost: int) -> list[RateDecision]:
        """The decisions, by the same `gcra()` as the memory backend, from what the script saw."""
        moment = float(now_text)
        return [gcra(float(raw) if raw else None, moment, limit, period_s, cost)[1]
                for (_, limit, period_s), raw in zip(checks, stored, strict=True)]

    async def peek(self, checks: Sequence[tuple[str, int, float]]) -> list[RateDecision]:
        with unavailable_on_error():
            now_text, *stored = await self._peek(keys=[self._limiter_key(key) for key, _, _ in checks],
                                                 args=[self._now()])
        return self._decisions(checks, now_text, stored, 1)

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
