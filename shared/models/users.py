"""Users, and the admin's audit trail."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, EmailStr, Field, StrictBool

from shared.models import PageQuery, Strict, Text

Role = Literal["admin", "user"]
Password = Annotated[str, Field(min_length=10, max_length=1024)]
DisplayName = Annotated[Text, Field(max_length=200)]


class User(BaseModel):
    id: str
    email: str
    display_name: str
    role: Role
    disabled: bool
    created_at: datetime
    updated_at: datetime
    last_login_at: datetime | None = None
    mfa_enabled: bool = False
    email_verified: bool = False


class UpdateMe(Strict):
    display_name: DisplayName | None = None


class CreateUser(Strict):
    email: EmailStr
    password: Password
    role: Role = "user"
    display_name: DisplayName = ""


class UpdateUser(Strict):
    display_name: DisplayName | None = None
    role: Role | None = None
    # Strict: JSON has booleans, so 0, 1 or "yes" is a client's mistake, not a way to lock someone out.
    disabled: StrictBool | None = None


class UserQuery(PageQuery):
    q: Text | None = Field(None, max_length=200)
    role: Role | None = None
    disabled: bool | None = None


class ResetToken(BaseModel):
    reset_token: str
    expires_at: datetime


class AuditEvent(BaseModel):
    id: str
    at: datetime
    event: str
    actor_id: str | None
    target_id: str | None
    ip: str | None
    detail: dict[str, Any]


def _rfc3339(value: object) -> object:
    # pydantic would also read a bare number as Unix time; the contract says RFC 3339.
    if isinstance(value, str) and not re.fullmatch(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:\d{2})?", value):
        raise ValueError("expected an RFC 3339 time such as 2026-11-25T19:00:00Z")
    return value


class AuditQuery(PageQuery):
    user_id: str | None = Field(None, max_length=100)
    event: str | None = Field(None, max_length=100)
    since: Annotated[datetime | None, BeforeValidator(_rfc3339)] = None
