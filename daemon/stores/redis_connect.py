"""One place that turns the settings into a redis.asyncio client: a plain URL, or Sentinel.

Every Redis-backed store (cache, event bus) gets its client here, so all of them follow a Sentinel
failover the same way: the client asks the Sentinels for the current primary whenever it opens a
connection, a connection to a demoted primary fails with READONLY and is dropped (redis-py's
SentinelManagedConnection), and the retry policy below reconnects, which finds the new primary.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError, TimeoutError

from daemon.settings import Settings, SettingsError

# A reply slower than this is a Redis that hangs. It must exceed the event reader's blocking read (1 s),
# which waits on the same kind of socket; replies to everything else take a millisecond.
SOCKET_TIMEOUT_S = 2.5
# Redis sits on the same network: a connection is made in milliseconds, or the host is not there.
CONNECT_TIMEOUT_S = 1.0
# One quick retry after a connection error: enough for a pooled connection that went stale (a Redis
# restart) and for a demoted primary's READONLY (the retry reconnects through Sentinel to the new one).
# A timeout is not retried: a Redis that did not answer in SOCKET_TIMEOUT_S will not in the next one
# either, and the request it holds has waited enough. More retries only make every request wait while
# Redis is down; the caller answers 503 + Retry-After and its client retries.
RETRIES = 1
# After a call finds Redis unreachable, calls fail at once for this long, then one goes through to see
# whether it is back. Without it, a Redis that hangs (a stopped process, a host dropping packets) held
# every request for its socket timeouts before the 503.
OPEN_S = 1.0


def configured(settings: Settings) -> bool:
    """Whether Redis is selected at all (else the in-process backends are used)."""
    return bool(settings.redis_url or settings.redis_sentinels)


def parse_sentinels(entries: tuple[str, ...]) -> list[tuple[str, int]]:
    addresses = []
    for entry in entries:
        host, sep, port = entry.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise SettingsError(f"BASTION_REDIS_SENTINELS: expected host:port, got {entry!r}")
        addresses.append((host.strip("[]"), int(port)))
    return addresses


class _Breaker:
    """A circuit breaker: closed, open for OPEN_S after a failure, then one probe decides."""

    def __init__(self) -> None:
        self.tripped = False
        self.open_until = 0.0
        self.probing = False

    def __deepcopy__(self, memo: dict) -> _Breaker:
        return self  # redis-py deep-copies the retry policy into every connection: they share one state

    def admit(self) -> bool:
        """Raise while open (or while the probe is out); return whether this call is the probe."""
        if not self.tripped:
            return False
        if self.probing or time.monotonic() < self.open_until:
            raise ConnectionError("Redis did not answer a moment ago")
        self.probing = True
        return True

    def record(self, up: bool | None, probe: bool) -> None:
        """`up`: Redis answered (True), did not (False), or the call was cancelled (None)."""
        if probe:
            self.probing = False
        if up is True:
            self.tripped = False
        elif up is False:
            self.tripped, self.open_until = True, time.monotonic() + OPEN_S


# Set while a call is under the breaker: a reconnect inside it is part of that call, not a new one.
_in_call: ContextVar[bool] = ContextVar("redis_in_call", default=False)


class _GuardedRetry(Retry):
    """redis-py's retry policy, behind the breaker. Every command, pipeline, pub/sub read and connect
    goes through `call_with_retry`, so this one place sees every success and failure."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.breaker = _Breaker()

    async def call_with_retry(self, do, fail, *args: Any, **kwargs: Any):  # type: ignore[override]
        if _in_call.get():
            return await super().call_with_retry(do, fail, *args, **kwargs)
        probe = self.breaker.admit()
        token = _in_call.set(True)
        up = None
        try:
            result = await super().call_with_retry(do, fail, *args, **kwargs)
            up = True
            return result
        except (*self._supported_errors, TimeoutError, OSError):
            up = False
            raise
        except Exception:
            up = True  # an error reply: Redis answered
            raise
        finally:
            _in_call.reset(token)
            self.breaker.record(up, probe)


def _retry() -> Retry:
    return _GuardedRetry(
        ExponentialBackoff(cap=0.2, base=0.05), RETRIES, supported_errors=(ConnectionError,)
    )


def connect(settings: Settings, **options: Any) -> Redis:
    """A client for the configured Redis; `options` go to redis.asyncio (e.g. decode_responses).

    No connection is made here: the first command connects. Sentinel settings win over a URL.
    Close it with `close()` below, which also closes the connections to the Sentinels.
    """
    common: dict[str, Any] = {
        "socket_timeout": SOCKET_TIMEOUT_S,
        "socket_connect_timeout": CONNECT_TIMEOUT_S,
        "retry": _retry(),
        "retry_on_error": [ConnectionError],
        "health_check_interval": 15,
        **options,
    }
    if settings.redis_sentinels:
        sentinel = Sentinel(
            parse_sentinels(settings.redis_sentinels),
            sentinel_kwargs={"socket_timeout": SOCKET_TIMEOUT_S, "socket_connect_timeout": CONNECT_TIMEOUT_S},
        )
        return sentinel.master_for(settings.redis_sentinel_master, **common)
    if settings.redis_url:
        return Redis.from_url(settings.redis_url, **common)
    raise SettingsError("Redis is not configured: set BASTION_REDIS_URL or BASTION_REDIS_SENTINELS")


async def close(client: Redis) -> None:
    """Close a client from `connect()`; `client.aclose()` alone would leave the Sentinel connections open."""
    pool = client.connection_pool
    await client.aclose()
    if isinstance(pool, SentinelConnectionPool):
        for sentinel in pool.sentinel_manager.sentinels:
            await sentinel.aclose()
