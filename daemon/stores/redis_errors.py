"""One rule for Redis failures, used by every Redis-backed store (the client comes from redis_connect.py).

A Redis that is down, slow or failing over surfaces as `Unavailable("redis")`: the API answers 503 with
Retry-After instead of a 500. The client's circuit breaker (redis_connect.py) remembers a failure for
about a second, so calls in that second fail at once; after it, one call sees whether Redis is back,
and from then on calls simply work again.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from redis.exceptions import ConnectionError, ReadOnlyError, TimeoutError

from daemon.stores.errors import Unavailable

# ReadOnlyError: a demoted primary after a failover, until the client reconnects to the new one.
_DOWN = (ConnectionError, TimeoutError, ReadOnlyError, OSError)


@contextmanager
def unavailable_on_error() -> Iterator[None]:
    try:
        yield
    except _DOWN as exc:
        raise Unavailable("redis", type(exc).__name__) from exc
