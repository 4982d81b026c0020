"""The one store of client state (the part Redux played in the seed's front end).

Every API answer and every WebSocket event becomes a `Change`; `Store.apply` folds it into `State` in
one function and tells the watchers which parts changed. Screens read `store.state` and redraw when told;
they never fetch or patch data themselves (they ask the app, which does the network work in workers and
applies what comes back).
"""

from __future__ import annotations

from collections import deque
from itertools import islice
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the models load with the first answer: the first screen does not wait for pydantic
    from pydantic import BaseModel

    from shared.models import Health
    from shared.models.auth import ApiKey, Session
    from shared.models.users import AuditEvent, User
    from shared.models.vectors import Collection, QueryResult

FEED_LENGTH = 200
AUDIT_LENGTH = 200  # the entries the audit screen loads and keeps


@dataclass
class State:
    server: str = ""
    me: User | None = None
    health: Health | None = None
    not_ready: str = ""  # what /readyz said is down, or ""
    users: dict[str, User] = field(default_factory=dict)  # the pages loaded so far, in the server's order
    users_cursor: str | None = None  # where the next page starts; None when the last one is loaded
    users_query: str = ""  # the `/` filter the server was asked with
    sessions: list[Session] = field(default_factory=list)
    api_keys: list[ApiKey] = field(default_factory=list)
    collections: dict[str, Collection] = field(default_factory=dict)
    audit: list[AuditEvent] = field(default_factory=list)
    search: QueryResult | None = None  # the last query's answer
    feed: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=FEED_LENGTH))
    live: str = "off"  # off | connecting | live | reconnecting
    last_event_id: str | None = None
    events_seen: int = 0  # how many events arrived since connecting (see Fetched)


# -- the changes (Redux's actions); each names the parts of State it touches ----------------------------


@dataclass
class Connected:
    server: str
    me: User


@dataclass
class Disconnected:
    pass


@dataclass
class HealthLoaded:
    health: Health
    not_ready: str


@dataclass
class UsersLoaded:
    """A page of users: the first (replacing what was loaded) or, with `more`, the next one."""

    users: list[User]
    cursor: str | None = None
    query: str = ""
    more: bool = False


@dataclass
class UserSaved:
    user: User


@dataclass
class UserRemoved:
    user_id: str


@dataclass
class SessionsLoaded:
    sessions: list[Session]


@dataclass
class SessionSaved:
    session: Session


@dataclass
class SessionRevoked:
    session_id: str


@dataclass
class KeysLoaded:
    keys: list[ApiKey]


@dataclass
class KeySaved:
    key: ApiKey


@dataclass
class KeyRevoked:
    key_id: str


@dataclass
class CollectionsLoaded:
    collections: list[Collection]


@dataclass
class CollectionSaved:
    collection: Collection


@dataclass
class CollectionRemoved:
    name: str


@dataclass
class AuditLoaded:
    events: list[AuditEvent]


@dataclass
class AuditRecorded:
    event: AuditEvent


@dataclass
class SearchAnswered:
    answer: QueryResult


@dataclass
class LiveStatus:
    status: str


@dataclass
class EventArrived:
    """One `{"type": "event", ...}` message of the WebSocket."""

    event: dict[str, Any]


@dataclass
class Fetched:
    """A load's answer, and how many events had arrived when it was asked for. Events that arrive while it is
    on its way may be newer than the answer: they are folded in again on top of it, so that a user created
    just as the Users screen opens does not vanish under the list fetched a moment before."""

    change: Change
    events_seen: int


Change = (Fetched | Connected | Disconnected | HealthLoaded | UsersLoaded | UserSaved | UserRemoved | SessionsLoaded
          | SessionSaved | SessionRevoked | KeysLoaded | KeySaved | KeyRevoked | CollectionsLoaded | CollectionSaved
          | CollectionRemoved | AuditLoaded | AuditRecorded | SearchAnswered | LiveStatus | EventArrived)

Watcher = Callable[[set[str]], None]


class Store:
    def __init__(self, state: State | None = None) -> None:
        self.state = state or State()
        self._watchers: dict[object, Watcher] = {}

    def watch(self, owner: object, watcher: Watcher) -> None:
        self._watchers[owner] = watcher

    def unwatch(self, owner: object) -> None:
        self._watchers.pop(owner, None)

    def apply(self, change: Change) -> set[str]:
        changed = reduce(self.state, change)
        if changed:
            for watcher in list(self._watchers.values()):
                watcher(changed)
        return changed


# The parts a new connection or a disconnection reports as changed (both replace the whole state).
_STATE_RESET = frozenset({"server", "me", "users", "sessions", "api_keys", "collections", "audit", "feed", "live"})


def reduce(state: State, change: Change) -> set[str]:
    """Fold one change into the state; answer the names of the parts that changed."""
    match change:
        case Fetched(answer, seen):
            changed = reduce(state, answer)
            meanwhile = list(islice(state.feed, max(0, state.events_seen - seen)))
            for event in reversed(meanwhile):  # oldest first, as they came
                changed |= _fold_event(state, event)
            return changed
        case Connected(server, me):
            fresh = State(server=server, me=me, live="connecting")
            state.__dict__.update(fresh.__dict__)
            return set(_STATE_RESET)
        case Disconnected():
            state.__dict__.update(State().__dict__)
            return set(_STATE_RESET)
        case HealthLoaded(health, not_ready):
            state.health, state.not_ready = health, not_ready
            return {"health"}
        case UsersLoaded(users, cursor, query, more):
            if more:
                state.users.update((u.id, u) for u in users)
            else:
                state.users = {u.id: u for u in users}
            state.users_cursor, state.users_query = cursor, query
            return {"users"}
        case UserSaved(user):
            state.users[user.id] = user
            if state.me and state.me.id == user.id:
                state.me = user
                return {"users", "me"}
            return {"users"}
        case UserRemoved(user_id):
            return {"users"} if state.users.pop(user_id, None) else set()
        case SessionsLoaded(sessions):
            state.sessions = sessions
            return {"sessions"}
        case SessionSaved(session):
            state.sessions = [s for s in state.sessions if s.id != session.id] + [session]
            return {"sessions"}
        case SessionRevoked(session_id):
            before = len(state.sessions)
            state.sessions = [s for s in state.sessions if s.id != session_id]
            return {"sessions"} if len(state.sessions) != before else set()
        case KeysLoaded(keys):
            state.api_keys = keys
            return {"api_keys"}
        case KeySaved(key):
            state.api_keys = [k for k in state.api_keys if k.id != key.id] + [key]
            return {"api_keys"}
        case KeyRevoked(key_id):
            state.api_keys = [k for k in state.api_keys if k.id != key_id]
            return {"api_keys"}
        case CollectionsLoaded(collections):
            state.collections = {c.name: c for c in collections}
            return {"collections"}
        case CollectionSaved(collection):
            state.collections[collection.name] = collection
            return {"collections"}
        case CollectionRemoved(name):
            return {"collections"} if state.collections.pop(name, None) is not None else set()
        case AuditLoaded(events):
            state.audit = events
            return {"audit"}
        case AuditRecorded(event):
            if any(e.id == event.id for e in state.audit):
                return set()
            state.audit = [event] + state.audit[:AUDIT_LENGTH - 1]  # newest first, as the server lists them
            return {"audit"}
        case SearchAnswered(answer):
            state.search = answer
            return {"search"}
        case LiveStatus(status):
            if state.live == status:
                return set()
            state.live = status
            return {"live"}
        case EventArrived(event):
            state.feed.appendleft(event)
            state.events_seen += 1
            state.last_event_id = event.get("id") or state.last_event_id
            return {"feed"} | _fold_event(state, event)
    return set()


def _fold_event(state: State, event: dict[str, Any]) -> set[str]:
    """What an event says about the data already in the state (a payload we cannot read changes nothing)."""
    from shared.models.auth import ApiKey, Session
    from shared.models.users import AuditEvent, User
    from shared.models.vectors import Collection

    kind, data = event.get("event"), event.get("data") or {}
    if kind in ("user.created", "user.updated"):
        user = _parse(User, data.get("user", data))
        return reduce(state, UserSaved(user)) if user else set()
    if kind == "user.deleted":
        return reduce(state, UserRemoved(str(data.get("id") or data.get("user_id") or "")))
    if kind == "session.created":
        # The event leaves `current` out: the session this console uses was listed before it subscribed.
        session = _parse(Session, {**data, "current": False})
        return reduce(state, SessionSaved(session)) if session else set()
    if kind == "session.revoked":
        return reduce(state, SessionRevoked(str(data.get("id") or data.get("session_id") or "")))
    if kind == "key.created":
        key = _parse(ApiKey, data)
        return reduce(state, KeySaved(key)) if key else set()
    if kind == "key.revoked":
        return reduce(state, KeyRevoked(str(data.get("id") or "")))
    if kind == "audit.recorded":
        entry = _parse(AuditEvent, data)
        return reduce(state, AuditRecorded(entry)) if entry else set()
    if kind == "collection.created":
        collection = _parse(Collection, data.get("collection", data))
        return reduce(state, CollectionSaved(collection)) if collection else set()
    if kind == "collection.deleted":
        return reduce(state, CollectionRemoved(str(data.get("name") or "")))
    return set()


def _parse(model: type[BaseModel], data: Any) -> Any:
    from pydantic import ValidationError

    try:
        return model.model_validate(data)
    except ValidationError:
        return None
