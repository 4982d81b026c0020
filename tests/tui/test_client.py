"""shared.client against a real daemon: typed answers, problem+json as ApiError, token refresh, logout."""

from __future__ import annotations

import pytest

from shared.client import Client, Tokens, Unreachable
from shared.errors import ApiError, Code
from shared.models.users import User
from tests.conftest import free_port
from tests.daemon_process import ADMIN_EMAIL, ADMIN_PASSWORD, Daemon


async def test_health_is_read_without_a_token(daemon: Daemon) -> None:
    async with Client(daemon.url) as client:
        assert (await client.health()).status == "ok"


async def test_a_problem_answer_raises_the_api_error_with_its_code(daemon: Daemon) -> None:
    async with Client(daemon.url) as client:
        with pytest.raises(ApiError) as failed:
            await client.login(ADMIN_EMAIL, "not the password at all")
    assert failed.value.code == Code.INVALID_CREDENTIALS
    assert failed.value.detail


async def test_a_request_without_a_login_is_unauthorized(daemon: Daemon) -> None:
    async with Client(daemon.url) as client:
        with pytest.raises(ApiError) as failed:
            await client.me()
    assert failed.value.code == Code.UNAUTHORIZED


async def test_a_server_that_does_not_answer_raises_unreachable() -> None:
    async with Client(f"127.0.0.1:{free_port()}") as client:
        with pytest.raises(Unreachable, match="cannot reach http://127.0.0.1"):
            await client.health()


async def test_login_answers_the_user_and_hands_the_tokens_over(daemon: Daemon) -> None:
    heard: list[Tokens | None] = []
    async with Client(daemon.url, on_tokens=heard.append) as client:
        answer = await client.login(ADMIN_EMAIL, ADMIN_PASSWORD)
        me = await client.me()
    assert isinstance(me, User) and me.email == ADMIN_EMAIL == answer.user.email
    assert heard and heard[-1] is not None and heard[-1].access_token == answer.access_token


async def test_the_access_token_is_refreshed_before_it_expires(daemon: Daemon) -> None:
    heard: list[Tokens | None] = []
    async with Client(daemon.url, on_tokens=heard.append) as client:
        await client.login(ADMIN_EMAIL, ADMIN_PASSWORD)
        first = client.tokens
        assert first is not None
        first.refresh_at = 0  # as if the refresh moment had come
        await client.me()
        assert client.tokens is not None and client.tokens.refresh_token != first.refresh_token
        assert heard[-1] is client.tokens
        # The old refresh token is spent: the server hands back the same successor within the grace window.
        replay = daemon.call("POST", "/api/v1/auth/refresh", {"refresh_token": first.refresh_token})
        assert replay["refresh_token"] == client.tokens.refresh_token


async def test_concurrent_requests_share_one_refresh(daemon: Daemon) -> None:
    import asyncio

    heard: list[Tokens | None] = []
    async with Client(daemon.url, on_tokens=heard.append) as client:
        await client.login(ADMIN_EMAIL, ADMIN_PASSWORD)
        assert client.tokens is not None
        client.tokens.refresh_at = 0
        await asyncio.gather(*(client.me() for _ in range(5)))
    assert len(heard) == 2  # the login's pair and one refreshed pair


async def test_logout_revokes_the_session_and_forgets_the_tokens(daemon: Daemon) -> None:
    heard: list[Tokens | None] = []
    async with Client(daemon.url, on_tokens=heard.append) as client:
        await client.login(ADMIN_EMAIL, ADMIN_PASSWORD)
        access = client.tokens.access_token if client.tokens else ""
        await client.logout()
        assert client.tokens is None and heard[-1] is None
    async with Client(daemon.url, api_key=access) as stale:
        with pytest.raises(ApiError) as failed:
            await stale.me()
    assert failed.value.code == Code.UNAUTHORIZED


def test_tokens_never_show_in_a_repr() -> None:
    tokens = Tokens("secret-access", "secret-refresh", 1.0, 0.5)
    client = Client("http://example.invalid", tokens=tokens, api_key="secret-key")
    shown = repr(tokens) + repr(client) + str(client)
    assert "secret" not in shown


async def test_users_are_created_listed_and_paged(daemon: Daemon, unique: str) -> None:
    async with Client(daemon.url) as client:
        await client.login(ADMIN_EMAIL, ADMIN_PASSWORD)
        created = [await client.create_user(f"page-{unique}-{i}@example.com", ADMIN_PASSWORD) for i in range(3)]
        page = await client.users(q=f"page-{unique}", limit=2)
        assert len(page.items) == 2 and page.next_cursor
        walked = [u.id async for u in client.iter_users(q=f"page-{unique}")]
    assert sorted(walked) == sorted(u.id for u in created)


async def test_a_validation_failure_names_the_field(daemon: Daemon) -> None:
    async with Client(daemon.url) as client:
        await client.login(ADMIN_EMAIL, ADMIN_PASSWORD)
        with pytest.raises(ApiError) as failed:
            await client.create_user("not-an-email", ADMIN_PASSWORD)
    assert failed.value.code == Code.VALIDATION_FAILED
    assert any("email" in e.field for e in failed.value.errors)
