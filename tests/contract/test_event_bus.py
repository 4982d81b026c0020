"""One contract for every event bus: in-process and Redis Streams (the real server, a prefix of this
test's own). Resume must be exact: every missed event, in order, no duplicates, or None (resync)."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from daemon.stores import events as events_module
from daemon.stores.events import Event, EventBus
from daemon.stores.events.memory import MemoryEventBus
from daemon.stores.events.redis import RedisEventBus

WAIT_S = 10


@pytest.fixture(params=["memory", "redis"])
async def make_bus(request: pytest.FixtureRequest):
    """`await make_bus(history)`: buses of the backend under test; Redis ones share one stream, like replicas."""
    buses: list[EventBus] = []
    clients: list[aioredis.Redis] = []

    async def make(history: int = 100, **options) -> EventBus:
        if request.param == "memory":
            bus: EventBus = MemoryEventBus(history, **options)
        else:
            client = aioredis.Redis.from_url(request.getfixturevalue("redis_url"), decode_responses=True)
            clients.append(client)
            bus = await RedisEventBus.open(client, request.getfixturevalue("redis_prefix"), history, **options)
        buses.append(bus)
        return bus

    async def lose_data() -> EventBus:
        """What a restart without persistence does: a fresh in-process bus, or a Redis with no keys."""
        if request.param == "memory":
            return await make()
        client = clients[0]
        keys = [key async for key in client.scan_iter(match=request.getfixturevalue("redis_prefix") + "*")]
        await client.delete(*keys)
        return buses[0]

    make.backend = request.param
    make.lose_data = lose_data
    yield make
    for bus in buses:
        await bus.close()
    for client in clients:
        await client.aclose()


async def _take(listener, n: int) -> list[Event]:
    return [await asyncio.wait_for(anext(listener), WAIT_S) for _ in range(n)]


async def test_listeners_hear_every_event_in_publish_order(make_bus):
    bus = await make_bus()
    first, second = bus.listen(), bus.listen()
    published = [await bus.publish("users", "user.created", {"n": i}) for i in range(5)]
    for listener in (first, second):
        heard = await _take(listener, 5)
        assert heard == published
    assert [e.data["n"] for e in published] == list(range(5))
    assert sorted(e.id for e in published) == [e.id for e in published]
    assert len({e.id for e in published}) == 5


async def test_a_burst_is_taken_in_batches_in_order(make_bus):
    bus = await make_bus()
    listener = bus.listen()
    published = [await bus.publish("users", "user.updated", {"n": i}) for i in range(20)]
    heard: list[Event] = []
    while len(heard) < 20:
        heard += await asyncio.wait_for(listener.batch(limit=8), WAIT_S)
    assert heard == published


async def test_a_batch_hands_over_the_events_before_an_interruption_then_raises_it():
    # The interruption comes from the backend (Redis lost); the in-process fan-out shows the order.
    from daemon.stores.errors import Unavailable
    from daemon.stores.events import Fanout

    fanout = Fanout()
    listener = fanout.listen()
    events = [Event(id=str(n), topic="users", event="user.updated", at="") for n in range(2)]
    for item in (*events, Unavailable("redis", "gone"), Event(id="9", topic="users", event="user.updated", at="")):
        fanout.deliver(item)
    assert await listener.batch() == events
    with pytest.raises(Unavailable):
        await listener.batch()
    assert listener not in fanout.listeners  # closed: the next listen() starts afresh


async def test_a_burst_published_at_once_is_heard_in_one_batch(make_bus, monkeypatch):
    # With Redis a blocked read is answered with the first entry alone, and the rest would come a read
    # later; the batch waits for this process's publishes still on their way. SETTLE_S is raised so
    # that only the bus's own count ends the wait (a count that stayed up would time out here).
    monkeypatch.setattr(events_module, "SETTLE_S", 60.0)
    bus = await make_bus()
    listener = bus.listen()
    publishing = asyncio.gather(*(bus.publish("users", "user.updated", {"n": i}) for i in range(5)))
    heard = await asyncio.wait_for(listener.batch(), WAIT_S)
    published = await publishing
    assert heard == sorted(published, key=lambda e: e.id)


async def test_a_burst_whose_answers_come_back_out_of_order_is_still_heard_in_one_batch(
    redis_url, redis_prefix, monkeypatch
):
    # Concurrent publishes go out on separate connections and their answers can come back in any order.
    # Here the first-numbered event's answer is held until the others are in, and the reader hands over
    # nothing past that event until every answer is in: the bus must still count the later events as on
    # their way. (It once kept the number of the last answer, and the batch ended with the first event.)
    monkeypatch.setattr(events_module, "SETTLE_S", 60.0)
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    bus = await RedisEventBus.open(client, redis_prefix, 100)
    publish_script, read = bus._publish, client.xread
    others_answered, all_answered = asyncio.Event(), asyncio.Event()
    answered = 0

    async def first_answered_last(**kwargs):
        nonlocal answered
        incarnation, entry_id = await publish_script(**kwargs)
        if entry_id.startswith("1-"):
            await others_answered.wait()
        answered += 1
        if answered == 4:
            others_answered.set()
        return incarnation, entry_id

    async def later_entries_after_every_answer(*args, **kwargs):
        reply = await read(*args, **kwargs)
        if any(not entry_id.startswith("1-") for _stream, entries in reply or [] for entry_id, _ in entries):
            await all_answered.wait()
        return reply

    monkeypatch.setattr(bus, "_publish", first_answered_last)
    monkeypatch.setattr(client, "xread", later_entries_after_every_answer)
    try:
        listener = bus.listen()
        taking = asyncio.create_task(listener.batch())
        published = await asyncio.gather(*(bus.publish("users", "user.updated", {"n": i}) for i in range(5)))
        await asyncio.sleep(0.05)  # a batch that thought nothing more was coming has returned by now
        all_answered.set()
        heard = await asyncio.wait_for(taking, WAIT_S)
        assert heard == sorted(published, key=lambda e: e.id)
    finally:
        await bus.close()
        await client.aclose()


async def test_a_batch_waits_for_events_on_their_way_and_stops_when_none_are(monkeypatch):
    monkeypatch.setattr(events_module, "SETTLE_S", 60.0)
    on_their_way = True
    fanout = events_module.Fanout(pending=lambda: on_their_way)
    listener = fanout.listen()
    events = [Event(id=str(n), topic="users", event="user.updated", at="") for n in range(3)]

    def arrive() -> None:
        nonlocal on_their_way
        fanout.deliver(events[1])
        on_their_way = False
        fanout.deliver(events[2])

    fanout.deliver(events[0])
    asyncio.get_running_loop().call_soon(arrive)
    assert await asyncio.wait_for(listener.batch(), WAIT_S) == events
    # Nothing on its way: the next batch is what is waiting, at once.
    fanout.deliver(events[0])
    assert await asyncio.wait_for(listener.batch(), WAIT_S) == events[:1]


async def test_a_batch_stops_waiting_when_the_bus_says_nothing_more_is_coming(monkeypatch):
    monkeypatch.setattr(events_module, "SETTLE_S", 60.0)
    on_their_way = True
    fanout = events_module.Fanout(pending=lambda: on_their_way)
    listener = fanout.listen()
    event = Event(id="1", topic="users", event="user.updated", at="")

    def failed() -> None:  # e.g. the publish failed: no event, only the count going down
        nonlocal on_their_way
        on_their_way = False
        fanout.nudge()

    fanout.deliver(event)
    asyncio.get_running_loop().call_soon(failed)
    assert await asyncio.wait_for(listener.batch(), WAIT_S) == [event]


async def test_a_batch_waits_for_events_on_their_way_only_so_long():
    fanout = events_module.Fanout(pending=lambda: True)  # a count that never comes down
    listener = fanout.listen()
    event = Event(id="1", topic="users", event="user.updated", at="")
    fanout.deliver(event)
    assert await asyncio.wait_for(listener.batch(), WAIT_S) == [event]


async def test_a_closed_listener_hears_nothing_more(make_bus):
    bus = await make_bus()
    listener = bus.listen()
    listener.close()
    await bus.publish("users", "user.created", {})
    with pytest.raises(StopAsyncIteration):
        await anext(listener)


async def test_since_replays_exactly_the_missed_events_of_the_topics(make_bus):
    bus = await make_bus()
    events = [await bus.publish("users" if i % 2 else "collections/a", "user.updated", {"n": i}) for i in range(10)]
    replay = await bus.since(events[3].id, {"users"})
    assert replay == [e for e in events[4:] if e.topic == "users"]
    assert await bus.since(events[3].id, {"users", "collections/a"}) == events[4:]
    assert await bus.since(events[3].id, None) == events[4:]  # every topic
    assert await bus.since(events[-1].id, {"users"}) == []


async def test_recent_is_the_newest_events_oldest_first(make_bus):
    bus = await make_bus()
    assert await bus.recent(5) == []
    events = [await bus.publish("users" if i % 2 else "collections/a", "user.updated", {"n": i}) for i in range(8)]
    assert await bus.recent(3) == events[-3:]
    assert await bus.recent(100) == events


async def test_since_older_than_the_history_is_none(make_bus):
    bus = await make_bus(history=10)
    # Redis trims `MAXLEN ~` in whole stream nodes (100 entries by default): the history holds at
    # least ten events, and far fewer than 250.
    events = [await bus.publish("users", "user.updated", {"n": i}) for i in range(250)]
    assert await bus.since(events[0].id, {"users"}) is None
    # The newest ten are always held, so resuming from the event before them is exact.
    assert await bus.since(events[-11].id, {"users"}) == events[-10:]
    # Exact at the edge: every id before the oldest held event's predecessor resyncs, and from that
    # predecessor on, the replay is complete.
    answers = [await bus.since(e.id, {"users"}) for e in events]
    edge = next(i for i, answer in enumerate(answers) if answer is not None)
    assert edge > 0
    assert all(answer == events[i + 1 :] for i, answer in enumerate(answers) if i >= edge)


async def test_since_an_id_the_bus_never_issued_is_none(make_bus):
    bus = await make_bus()
    event = await bus.publish("users", "user.created", {})
    other = await make_bus() if make_bus.backend == "memory" else None
    for foreign in ("", "garbage", "9" * 20, event.id + "0"):
        assert await bus.since(foreign, {"users"}) is None
    if other is not None:  # an id from another in-process bus (an earlier run of the daemon)
        assert await other.since(event.id, {"users"}) is None


async def test_an_id_from_before_the_data_was_lost_resyncs(make_bus):
    bus = await make_bus()
    old = [await bus.publish("users", "user.updated", {"n": n}) for n in range(3)]
    bus = await make_bus.lose_data()
    new = [await bus.publish("users", "user.updated", {"n": n}) for n in range(5)]
    # Numbering starts again, so a bare counter would take old[0] for new[0] and skip events.
    assert await bus.since(old[0].id, {"users"}) is None
    assert await bus.since(new[0].id, {"users"}) == new[1:]
    assert new[0].id > old[-1].id  # and ids still order across the loss


async def test_events_from_one_bus_reach_listeners_of_another_sharing_the_backend(make_bus):
    if make_bus.backend == "memory":
        pytest.skip("the in-process bus is one process's own")
    a, b = await make_bus(), await make_bus()
    listener = b.listen()
    sent = [await a.publish("users", "user.created", {"n": i}) for i in range(3)]
    assert await _take(listener, 3) == sent
    assert await b.since(sent[0].id, {"users"}) == sent[1:]


async def test_publishing_counts_through_the_hook(make_bus):
    seen: list[str] = []
    bus = await make_bus(on_publish=lambda e: seen.append(e.event))
    await bus.publish("users", "user.deleted", {"id": "u1"})
    assert seen == ["user.deleted"]


async def test_ping_answers(make_bus):
    await (await make_bus()).ping()
