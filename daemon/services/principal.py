"""Who is asking: the result of authentication, and what every service checks against."""

from __future__ import annotations

from typing import NamedTuple

ALL_SCOPES = frozenset({"read", "write", "admin"})
USER_SCOPES = frozenset({"read", "write"})


def scopes_for_role(role: str) -> frozenset[str]:
    return ALL_SCOPES if role == "admin" else USER_SCOPES


class Principal(NamedTuple):  # immutable; a tuple because one is built for every request
    user_id: str
    role: str
    session_id: str | None = None  # set for access tokens
    api_key_id: str | None = None  # set for API keys
    scopes: frozenset[str] = frozenset()
    expires_at: float | None = None  # epoch seconds: an access token's expiry, or an API key's if it has one

    @property
    def is_admin(self) -> bool:
        return self.role == "admin" and "admin" in self.scopes

    def can(self, scope: str) -> bool:
        return scope in self.scopes
