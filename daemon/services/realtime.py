"""Who may hear which events: the rules of the WebSocket gateway, with no HTTP in them.

Services publish on `users` (user.* and session.revoked), `audit` (audit.recorded),
`collections/<name>`, and `private` (key.created, key.revoked, session.created: only their owner hears
them, so no one subscribes to `private` itself). `me` is not published to: it gathers the events about
the subscriber, its own user.* events and its sessions' session.revoked from `users`, its keys' and
sessions' events from `private`, and the creation and deletion of the collections it owns (no one can
subscribe to a collection before it exists). Every event names its owner (`user_id`, or `id` for a user,
`owner_id` for a collection), so that whom it concerns is read from the event alone.
"""

from __future__ import annotations

import time
from typing import Protocol

from daemon.services.principal import Principal, scopes_for_role
from daemon.stores.cache import gcra
# Event and Unavailable are named here for the gateway (daemon/api/realtime.py), which reaches the stores
# only through this module.
from daemon.stores.errors import Unavailable
from daemon.stores.events import Event, EventBus, Listener

USERS = "users"
AUDIT = "audit"
PRIVATE = "private"
ME = "me"
COLLECTIONS = "collections/"


class CollectionReader(Protocol):
    async def can_read(self, principal: Principal, name: str) -> bool: ...


async def may_read(principal: Principal, topic: str, collections: CollectionReader) -> bool:
    if not principal.can("read"):
        return False
    if topic == ME:
        return True
    if topic in (USERS, AUDIT):
        return principal.is_admin
    if topic.startswith(COLLECTIONS):
        return await collections.can_read(principal, topic.removeprefix(COLLECTIONS))
    return False


OWNERS_HEAR = frozenset({"collection.created", "collection.deleted"})  # through `me`


def concerns(principal: Principal, event: Event) -> bool:
    """Whether an event is about the principal (its `me` topic)."""
    if event.topic == USERS:
        return principal.user_id in (event.data.get("id"), event.data.get("user_id"))
    if event.topic == PRIVATE:
        return principal.user_id == event.data.get("user_id")
    return event.event in OWNERS_HEAR and event.data.get("owner_id") == principal.user_id


def may_hear(principal: Principal, event: Event) -> bool:
    """Whether the subscriber may hear this event on its own topic: checked for every event delivered,
    live or replayed, against the subscriber's rights now and the event's owner when it happened. A
    subscription alone proves nothing: rights change after it (a demotion), and a topic's name outlives
    its owner (a collection deleted and made again by someone else, whose `since` replay then held the
    first owner's events). A topic with no rule here is heard by no one."""
    if not principal.can("read"):
        return False
    if event.topic in (USERS, AUDIT):
        return principal.is_admin
    if event.topic.startswith(COLLECTIONS):
        return principal.is_admin or event.data.get("owner_id") == principal.user_id
    return False


def delivered_as(principal: Principal, topics: set[str], event: Event) -> str | None:
    """The subscribed topic under which the event reaches this subscriber, if any (each event once)."""
    if event.topic in topics and may_hear(principal, event):
        return event.topic
    if ME in topics and concerns(principal, event):
        return ME
    return None


def narrowed(principal: Principal, event: Event) -> Principal:
    """The principal as the event leaves its rights: an admin demoted keeps only a user's scopes (an API
    key's socket outlives the demotion; a token's session is revoked with it). Never widened: a
    promotion applies from the next login."""
    if (principal.role == "admin" and event.event == "user.updated" and event.topic == USERS
            and event.data.get("id") == principal.user_id and event.data.get("role") != "admin"):
        return principal._replace(role="user", scopes=principal.scopes & scopes_for_role("user"))
    return principal


def topics_still_allowed(principal: Principal, topics: set[str]) -> set[str]:
    """The subscribed topics a narrowed principal may keep (collections are checked per event)."""
    return {topic for topic in topics if topic not in (USERS, AUDIT) or principal.is_admin}


def sources(topics: set[str]) -> set[str] | None:
    """The published topics that feed these subscribed ones (for replaying history); None for every topic,
    which `me` needs: its collection events come from topics of any name."""
    return None if ME in topics else topics


def ends_access(principal: Principal, event: Event) -> bool:
    """Whether the event means the principal's credential is no good any more (close with 4401)."""
    if event.event == "key.revoked":
        return principal.api_key_id is not None and event.data.get("id") == principal.api_key_id
    if event.topic != USERS:
        return False
    data = event.data
    if event.event == "session.revoked":
        return principal.session_id is not None and data.get("session_id") == principal.session_id
    if data.get("id") != principal.user_id:
        return False
    return event.event == "user.deleted" or (event.event == "user.updated" and bool(data.get("disabled")))


def ends_topic(event: Event) -> bool:
    """Whether the event ends its topic, so that subscribers must be checked again to hear more."""
    return event.event == "collection.deleted"


async def recent(events: EventBus, principal: Principal, topics: set[str], limit: int, scan: int = 1000) -> list[Event]:
    """The newest events (at most `limit`, newest first) that a subscriber to these topics would have
    heard, among the history's last `scan`: what a page shows before its live updates begin."""
    heard = [e for e in await events.recent(scan) if delivered_as(principal, topics, e) is not None]
    return heard[::-1][:limit]


class Feed:
    """The event bus as the WebSocket gateway uses it: live events, and a subscription's history with
    each event authorised as it would have been delivered live."""

    def __init__(self, bus: EventBus) -> None:
        self._bus = bus

    def listen(self) -> Listener:
        return self._bus.listen()

    async def replay(self, principal: Principal, topics: set[str], since: str) -> list[tuple[Event, str]] | None:
        """The events after `since` this subscriber may hear on `topics`, each with the topic it goes out
        under; None when the history no longer reaches back (the client must resync)."""
        events = await self._bus.since(since, sources(topics))
        if events is None:
            return None
        return [(event, topic) for event in events if (topic := delivered_as(principal, topics, event)) is not None]


class MessageAllowance:
    """A client's own messages on its socket, at most `per_minute` (in-process: a socket lives in one)."""

    def __init__(self, per_minute: int) -> None:
        self._per_minute = per_minute
        self._tat: float | None = None

    def allow(self) -> bool:
        tat, decision = gcra(self._tat, time.monotonic(), self._per_minute, 60.0, 1)
        if decision.allowed:
            self._tat = tat
        return decision.allowed
