"""Redis event bus: one stream shared by every replica, read by one task per process.

Publishing is one Lua script: it numbers the event from a counter and appends it to the stream under
the id `<n>-0`, trimmed with `MAXLEN ~`. Numbering events ourselves is what makes `since` exact: the
history reaches back to event n exactly when event n+1 is still in the stream, which the first entry
tells us. (Redis's own `ms-seq` ids would not show whether entries were trimmed between two ids.)
An event's id is `<incarnation>-<n>`: the incarnation is a mark (the time it was made) that lives as
long as the Redis data does, so after Redis lost its data, when numbering starts again from 1, an
old id is recognised as foreign (resync) instead of being mistaken for a new one.

Each process runs one XREAD BLOCK loop and hands every entry to its local listeners, so a thousand
WebSockets cost one Redis connection, not a thousand. A blocked XREAD is answered with the first new
entry alone, so a burst comes back a read at a time; the bus counts its own publishes not yet read
back, and `Listener.batch` waits for them (briefly) so that such a burst is handed over together.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from daemon.clock import iso_now
from daemon.stores.errors import Unavailable
from daemon.stores.events import Event, Fanout, Listener
from daemon.stores.redis_errors import unavailable_on_error

log = logging.getLogger("bastion.events")

# KEYS: stream, counter, incarnation. ARGV: max length, topic, event, at, data, a new incarnation.
# If the counter was lost while the stream survived, it continues from the stream's last entry, since
# a stream refuses an id at or below its last one. Returns {incarnation, entry id}.
_PUBLISH = """
redis.call('SET', KEYS[3], ARGV[6], 'NX')
local incarnation = redis.call('GET', KEYS[3])
local n = redis.call('INCR', KEYS[2])
if n == 1 then
  local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
  if last[1] then
    n = tonumber(string.match(last[1][1], '^(%d+)')) + 1
    redis.call('SET', KEYS[2], n)
  end
end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], n .. '-0',
  'topic', ARGV[2], 'event', ARGV[3], 'at', ARGV[4], 'data', ARGV[5], 'incarnation', incarnation)
return {incarnation, id}
"""

_BLOCK_MS = 1000
_RETRY_S = 0.5


def _number(entry_id: str) -> int:
    return int(entry_id.split("-", 1)[0])


def _event_id(incarnation: str, entry_id: str) -> str:
    # The same fixed-width shape as the in-process bus's ids, so ids compare as strings in order.
    return f"{incarnation}-{_number(entry_id):012d}"


def _new_incarnation() -> str:
    return f"{time.time_ns() // 1_000_000:013d}"


def _event(entry_id: str, fields: dict[str, str]) -> Event:
    return Event(
        id=_event_id(fields["incarnation"], entry_id),
        topic=fields["topic"],
        event=fields["event"],
        at=fields["at"],
        data=orjson.loads(fields["data"]),
    )


class RedisEventBus:
    name = "redis"

    def __init__(
        self,
        client: aioredis.Redis,
        prefix: str = "bastion:",
        history: int = 10_000,
        on_publish: Callable[[Event], None] | None = None,
    ) -> None:
        self._client = client
        self._stream = f"{prefix}events"
        self._counter = f"{prefix}events:n"
        self._incarnation_key = f"{prefix}events:incarnation"
        self._history = history
        self._fanout = Fanout(on_publish, self._pending)
        self._publish = client.register_script(_PUBLISH)
        self._reader: asyncio.Task | None = None
        self._started = asyncio.Event()
        self._closing = False
        # This process's publishes on their way back through the reader: sent and not yet answered, or
        # answered with an entry number past the last one read (within the current incarnation).
        self._in_flight = 0
        self._published = 0
        self._published_in: str | None = None  # the incarnation `_published` counts in
        self._read_up_to = 0

    @classmethod
    async def open(cls, client: aioredis.Redis, prefix: str = "bastion:", history: int = 10_000, **options: Any):
        """Starts the reader; once this returns, `listen()` hears every event published after it."""
        bus = cls(client, prefix, history, **options)
        bus._reader = asyncio.create_task(bus._read(), name="redis-event-reader")
        # Wait for the reader to learn where the stream ends; if Redis is down it keeps trying.
        try:
            await asyncio.wait_for(bus._started.wait(), 2.0)
        except TimeoutError:
            log.warning("Redis did not answer; the event reader keeps trying")
        return bus

    async def publish(self, topic: str, event: str, data: dict[str, Any]) -> Event:
        at = iso_now()
        self._in_flight += 1
        try:
            with unavailable_on_error():
                incarnation, entry_id = await self._publish(
                    keys=[self._stream, self._counter, self._incarnation_key],
                    args=[self._history, topic, event, at, orjson.dumps(data).decode(), _new_incarnation()],
                )
            # Answers to concurrent publishes come back in any order, so the highest number counts; but
            # after Redis lost its data (a new incarnation) numbers start again from 1.
            if incarnation != self._published_in:
                self._published_in, self._published = incarnation, _number(entry_id)
            else:
                self._published = max(self._published, _number(entry_id))
        finally:
            self._in_flight -= 1
            self._fanout.nudge()
        item = Event(id=_event_id(incarnation, entry_id), topic=topic, event=event, at=at, data=data)
        self._fanout.on_publish(item)
        return item

    def listen(self) -> Listener:
        return self._fanout.listen()

    def _pending(self) -> bool:
        return self._in_flight > 0 or self._published > self._read_up_to

    async def since(self, event_id: str, topics: set[str] | None) -> list[Event] | None:
        incarnation, _, number = event_id.rpartition("-")
        if len(incarnation) != 13 or not incarnation.isdigit() or len(number) != 12 or not number.isdigit():
            return None  # not an id of ours
        after = int(number)
        with unavailable_on_error():
            # One transaction, so no trimming can fall between reading the range and its first entry.
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.get(self._incarnation_key)
                pipe.get(self._counter)
                pipe.xrange(self._stream, "-", "+", count=1)
                pipe.xrange(self._stream, f"({after}-0", "+")
                current, last, first, entries = await pipe.execute()
        if current != incarnation or last is None or after > int(last):
            return None
        oldest = _number(first[0][0]) if first else int(last) + 1
        if after + 1 < oldest:
            return None
        return [e for e in (_event(i, f) for i, f in entries) if topics is None or e.topic in topics]

    async def recent(self, count: int) -> list[Event]:
        with unavailable_on_error():
            entries = await self._client.xrevrange(self._stream, "+", "-", count=count)
        return [_event(i, f) for i, f in reversed(entries)]

    async def _incarnation(self) -> str:
        await self._client.set(self._incarnation_key, _new_incarnation(), nx=True)
        return await self._client.get(self._incarnation_key)

    async def _read(self) -> None:
        position: str | None = None
        incarnation = None
        failing = False
        while not self._closing:
            try:
                with unavailable_on_error():
                    if position is None:
                        incarnation = await self._incarnation()
                        last = await self._client.xrevrange(self._stream, "+", "-", count=1)
                        position = last[0][0] if last else "0-0"
                        self._read_up_to = _number(position)
                        self._started.set()
                    elif failing and await self._incarnation() != incarnation:
                        # Redis lost its data: its stream numbers from 1 again, so read it from the start.
                        incarnation = await self._incarnation()
                        position = "0-0"
                        self._published = self._read_up_to = 0
                    reply = await self._client.xread({self._stream: position}, count=1000, block=_BLOCK_MS)
                if failing:
                    log.info("Redis is back; the event reader resumes")
                    failing = False
                for _stream, entries in reply or []:
                    for entry_id, fields in entries:
                        position = entry_id
                        self._read_up_to = _number(entry_id)
                        self._fanout.deliver(_event(entry_id, fields))
            except asyncio.CancelledError:
                raise
            except (Unavailable, ResponseError) as exc:
                if not failing:
                    log.warning("the event reader lost Redis", extra={"error": str(exc)})
                    failing = True
                    self._fanout.deliver(Unavailable("redis", "the event stream was interrupted"))
                await asyncio.sleep(_RETRY_S)

    async def ping(self) -> None:
        with unavailable_on_error():
            await self._client.ping()

    async def close(self) -> None:
        if self._reader is None:
            return
        # redis-py can swallow a cancellation that lands mid-reply; the flag ends the loop regardless,
        # at the latest when the blocking read returns.
        self._closing = True
        self._reader.cancel()
        await asyncio.wait([self._reader], timeout=_BLOCK_MS / 1000 + 5)
        self._reader = None
