"""Helpers for tests that act as users of a real app: create accounts, log in, call with a token."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp.test_utils import TestClient

from daemon.context import USERS

PASSWORD = "correct horse battery staple"


@dataclass
class Actor:
    """A logged-in user: the user as the API returned it, and the tokens of its session."""

    user: dict[str, Any]
    access_token: str
    refresh_token: str
    password: str = PASSWORD

    @property
    def id(self) -> str:
        return self.user["id"]

    @property
    def email(self) -> str:
        return self.user["email"]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


async def create_user(client: TestClient, email: str, role: str = "user", password: str = PASSWORD) -> dict[str, Any]:
    user = await client.app[USERS].create(email, password, role, "", None, "test")
    return user.model_dump(mode="json")


async def login(client: TestClient, email: str, password: str = PASSWORD, **headers: str) -> Actor:
    response = await client.post("/api/v1/auth/login", json={"email": email, "password": password}, headers=headers)
    assert response.status == 200, await response.text()
    body = await response.json()
    return Actor(body["user"], body["access_token"], body["refresh_token"], password)


async def signed_up(client: TestClient, email: str, role: str = "user") -> Actor:
    await create_user(client, email, role)
    return await login(client, email)


async def problem(response) -> dict[str, Any]:
    assert response.content_type == "application/problem+json", await response.text()
    return await response.json(content_type=None)
