"""The WebSocket messages of docs/api.md (Realtime): what a client sends, and what the server sends back."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, TypeAdapter

# `users` and `audit` (admins), `me` (events about the caller), `collections/<name>` (its owner and admins).
Topic = Annotated[str, Field(pattern=r"^(users|audit|me|collections/[a-z0-9][a-z0-9-]{0,62})$")]
EventName = Literal[
    "user.created",
    "user.updated",
    "user.deleted",
    "session.created",
    "session.revoked",
    "key.created",
    "key.revoked",
    "audit.recorded",
    "collection.created",
    "collection.deleted",
    "vectors.upserted",
    "vectors.deleted",
]

# Close codes: 4401 authentication missing, failed, revoked or expired; 1001 the server is going
# away; 1008 a policy was broken (too many messages, or too slow to read what was sent); 1009 a frame
# over 64 KiB; 1013 a backing service is down, reconnect later.
CLOSE_UNAUTHORIZED = 4401
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_TRY_AGAIN = 1013
MAX_FRAME_BYTES = 64 * 1024
AUTH_TIMEOUT_S = 5.0


class _Message(BaseModel):
    model_config = {"extra": "forbid"}


class Auth(_Message):
    type: Literal["auth"]
    token: str = Field(min_length=1, max_length=8192)


class Subscribe(_Message):
    type: Literal["subscribe"]
    topics: list[Topic] = Field(min_length=1, max_length=50)
    since: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[0-9-]+$")


ClientMessage = Annotated[Auth | Subscribe, Field(discriminator="type")]
CLIENT_MESSAGE: TypeAdapter[Auth | Subscribe] = TypeAdapter(ClientMessage)


class Subscribed(BaseModel):
    type: Literal["subscribed"] = "subscribed"
    topics: list[str]


class EventMessage(BaseModel):
    type: Literal["event"] = "event"
    id: str
    topic: str
    event: EventName
    at: str
    data: dict[str, Any]


class Resync(BaseModel):
    """`since` is older than the history: reload what you show, then carry on from the live events."""

    type: Literal["resync"] = "resync"


class ErrorMessage(BaseModel):
    type: Literal["error"] = "error"
    code: str
    detail: str = ""
    topic: str | None = None


SERVER_MESSAGE: TypeAdapter[Subscribed | EventMessage | Resync | ErrorMessage] = TypeAdapter(
    Annotated[Subscribed | EventMessage | Resync | ErrorMessage, Field(discriminator="type")]
)
