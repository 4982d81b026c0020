"""Who is asking: the result of authentication, and what every service checks against."""

from __future__ import annotations

from dataclasses import dataclass, field

ALL_SCOPES = frozenset({"read", "write", "admin"})


def scopes_for_role(role: str) -> frozenset[str]:
    return ALL_SCOPES if role == "admin" else frozenset({"read", "write"})


@dataclass(frozen=True)
class Principal:
    user_id: str
    role: str
    session_id: str | None = None  # set for access tokens
    api_key_id: str | None = None  # set for API keys
    scopes: frozenset[str] = field(default_factory=frozenset)
    expires_at: float | None = None  # epoch seconds, for access tokens

    @property
    def is_admin(self) -> bool:
        return self.role == "admin" and "admin" in self.scopes

    def can(self, scope: str) -> bool:
        return scope in self.scopes
