"""The models of docs/api.md: what the daemon validates and answers, and what the client parses."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Generic, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

T = TypeVar("T")


def _timestamp_text(value: object) -> object:
    # pydantic's lax datetime also takes a number as Unix seconds; the contract's timestamps are RFC 3339
    # text, so a number (0 would be 1970) is a 422, not a date nobody meant.
    if isinstance(value, (int, float)):
        raise ValueError("must be an RFC 3339 timestamp, such as 2026-11-25T19:00:00Z")
    return value


# Text a request gives that is stored or looked up as SQL text: PostgreSQL's text refuses the NUL character (a
# 500 from the database, where it is the input that is wrong), so it is refused here, on both backends alike,
# and the pattern tells clients so in the OpenAPI document. Metadata is stored as JSON, which escapes it.
NO_NUL = r"^[^\x00]*$"
Text = Annotated[str, Field(pattern=NO_NUL)]

# A timestamp in a request body.
Timestamp = Annotated[datetime, BeforeValidator(_timestamp_text)]


class Strict(BaseModel):
    """Request bodies refuse unknown fields, so a typo or a mass-assignment attempt is a 422."""

    model_config = ConfigDict(extra="forbid")


class FieldProblem(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details, with Bastion's stable `code`."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    request_id: str | None = None
    errors: list[FieldProblem] | None = None


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


class PageQuery(Strict):
    limit: int = Field(50, ge=1, le=200)
    cursor: str | None = Field(None, max_length=200)


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str] | None = None

