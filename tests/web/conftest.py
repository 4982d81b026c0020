"""Fixtures of the web view's tests: a browser-like client that keeps the session cookie and reads the
CSRF token off each page, as a browser user would."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from daemon.api.webview import COOKIE
from daemon.app import create_app
from tests.helpers import PASSWORD, create_user

_CSRF = re.compile(r'name="csrf" value="([^"]*)"')


@dataclass
class Tab:
    """One browser's view of the site: the session cookie it holds and the last page it was shown."""

    client: TestClient
    secret: str | None = None
    html: str = ""
    origin: str | None = field(default=None)

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        headers = {"Cookie": f"{COOKIE}={self.secret}"} if self.secret else {}
        return {**headers, **(extra or {})}

    def _keep(self, response: aiohttp.ClientResponse) -> None:
        if COOKIE in response.cookies:
            self.secret = response.cookies[COOKIE].value

    async def get(self, path: str, headers: dict[str, str] | None = None) -> aiohttp.ClientResponse:
        response = await self.client.get(path, headers=self._headers(headers), allow_redirects=False)
        self._keep(response)
        self.html = await response.text()
        return response

    @property
    def csrf(self) -> str:
        found = _CSRF.search(self.html)
        assert found, "the page has no form with a CSRF token"
        return found[1]

    async def post(self, path: str, data: dict[str, str], csrf: str | None = "page",
                   headers: dict[str, str] | None = None) -> aiohttp.ClientResponse:
        """Posts as the browser would: with this tab's Origin and, unless told otherwise, the token of
        the page it was last shown."""
        fields = dict(data)
        if csrf == "page":
            fields["csrf"] = self.csrf
        elif csrf is not None:
            fields["csrf"] = csrf
        base = {"Origin": self.origin or str(self.client.make_url("")).rstrip("/")}
        response = await self.client.post(path, data=fields, headers=self._headers({**base, **(headers or {})}),
                                          allow_redirects=False)
        self._keep(response)
        self.html = await response.text()
        return response

    async def log_in(self, email: str, password: str = PASSWORD) -> aiohttp.ClientResponse:
        await self.get("/ui/login")
        response = await self.post("/ui/login", {"email": email, "password": password})
        assert response.status == 303, self.html
        return response


async def _web(aiohttp_client, settings) -> TestClient:
    # No cookie jar: each Tab carries its own cookie, so two tabs are two browsers.
    client = await aiohttp_client(create_app(settings), cookie_jar=aiohttp.DummyCookieJar())
    await create_user(client, "admin@example.com", "admin")
    await create_user(client, "alice@example.com")
    return client


@pytest.fixture
async def web(aiohttp_client, settings) -> TestClient:
    """The real app on SQLite, with an admin and a user."""
    return await _web(aiohttp_client, settings)


@pytest.fixture
async def web_both(aiohttp_client, backend_settings) -> TestClient:
    """The same on SQLite and on PostgreSQL (each test runs on both)."""
    return await _web(aiohttp_client, backend_settings)
