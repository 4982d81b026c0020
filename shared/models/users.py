"""Users, and the admin's audit trail."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, EmailStr, Field, StrictBool

from shared.models import PageQuery, Strict

Role = Literal["admin", "user"]
Password = Annotated[str, Field(min_length=10, max_length=1024)]
DisplayName = Annotated[str, Field(max_length=200)]


class User(BaseModel):
    id: str
    email: str
    display_name: str
    role: Role
    disabled: bool
    created_at: datetime
    updated_at: datetime
    last_login_at: datetime | None = None


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
    q: str | None = Field(None, max_length=200)
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


class AuditQuery(PageQuery):
    user_id: str | None = Field(None, max_length=100)
    event: str | None = Field(None, max_length=100)
    since: datetime | None = None
