"""Who may hear which events: the rules of the WebSocket gateway, with no HTTP in them.

Services publish on two kinds of topic: `users` (user.* and session.revoked) and
`collections/<name>`. `me` is not published to: it is the part of `users` about the subscriber.
"""

from __future__ import annotations

from typing import Protocol

from daemon.services.principal import Principal
from daemon.stores.events import Event

USERS = "users"
ME = "me"
COLLECTIONS = "collections/"


class CollectionReader(Protocol):
    async def can_read(self, principal: Principal, name: str) -> bool: ...


async def may_read(principal: Principal, topic: str, collections: CollectionReader) -> bool:
    if not principal.can("read"):
        return False
    if topic == ME:
        return True
    if topic == USERS:
        return principal.is_admin
    if topic.startswith(COLLECTIONS):
        return await collections.can_read(principal, topic.removeprefix(COLLECTIONS))
    return False


def concerns(principal: Principal, event: Event) -> bool:
    """Whether a `users` event is about the principal (its `me` topic)."""
    if event.topic != USERS:
        return False
    return principal.user_id in (event.data.get("id"), event.data.get("user_id"))


def delivered_as(principal: Principal, topics: set[str], event: Event) -> str | None:
    """The subscribed topic under which the event reaches this subscriber, if any (each event once)."""
    if event.topic in topics:
        return event.topic
    if ME in topics and concerns(principal, event):
        return ME
    return None


def sources(topics: set[str]) -> set[str]:
    """The published topics that feed these subscribed ones (for replaying history)."""
    return {USERS if topic == ME else topic for topic in topics}


def ends_access(principal: Principal, event: Event) -> bool:
    """Whether the event means the principal's credential is no good any more (close with 4401)."""
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
