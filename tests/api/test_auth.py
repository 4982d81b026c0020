"""The /auth routes of docs/api.md, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest

from daemon.app import create_app
from daemon.settings import Settings
from tests.helpers import PASSWORD, create_user, login, problem, signed_up

LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"


async def test_login_returns_a_token_pair_and_the_user(api, alice):
    me = await api.get("/api/v1/users/me", headers=alice.headers)
    assert me.status == 200
    assert (await me.json())["email"] == "alice@example.com"
    assert alice.refresh_token.startswith("brt_") and len(alice.refresh_token) > 40


async def test_unknown_email_and_wrong_password_look_the_same(api, alice):
    answers = []
    for email, password in (("nobody@example.com", PASSWORD), ("alice@example.com", "wrong password!")):
        response = await api.post(LOGIN, json={"email": email, "password": password})
        body = await problem(response)
        body.pop("request_id")
        answers.append((response.status, body))
    assert answers[0] == answers[1]
    assert answers[0][0] == 401 and answers[0][1]["code"] == "invalid_credentials"


async def test_login_email_is_case_insensitive(api, alice):
    actor = await login(api, "ALICE@Example.com")
    assert actor.id == alice.id


async def test_a_disabled_user_cannot_log_in(api, admin, alice):
    await api.patch(f"/api/v1/users/{alice.id}", json={"disabled": True}, headers=admin.headers)
    response = await api.post(LOGIN, json={"email": alice.email, "password": PASSWORD})
    assert (await problem(response))["code"] == "invalid_credentials"


async def test_refresh_rotates_and_the_old_token_is_spent(api, alice):
    first = await api.post(REFRESH, json={"refresh_token": alice.refresh_token})
    pair = await first.json()
    assert first.status == 200 and pair["refresh_token"] != alice.refresh_token
    second = await api.post(REFRESH, json={"refresh_token": pair["refresh_token"]})
    assert second.status == 200


async def test_replay_within_the_grace_window_returns_the_same_pair(api, alice):
    first = await (await api.post(REFRESH, json={"refresh_token": alice.refresh_token})).json()
    again = await (await api.post(REFRESH, json={"refresh_token": alice.refresh_token})).json()
    assert again["refresh_token"] == first["refresh_token"]
    assert again["access_token"] == first["access_token"]


async def test_concurrent_refreshes_of_one_token_all_get_the_same_pair(api, alice):
    responses = await asyncio.gather(
        *(api.post(REFRESH, json={"refresh_token": alice.refresh_token}) for _ in range(4))
    )
    bodies = [await r.json() for r in responses]
    assert {r.status for r in responses} == {200}
    assert len({b["refresh_token"] for b in bodies}) == 1


async def test_replay_after_the_grace_window_revokes_the_whole_session(aiohttp_client, backend_settings):
    from dataclasses import replace

    api = await aiohttp_client(create_app(replace(backend_settings, refresh_reuse_grace_s=0)))
    alice = await signed_up(api, "alice@example.com")
    successor = await (await api.post(REFRESH, json={"refresh_token": alice.refresh_token})).json()
    await asyncio.sleep(0.01)
    replay = await api.post(REFRESH, json={"refresh_token": alice.refresh_token})
    assert replay.status == 401 and (await problem(replay))["code"] == "token_reused"
    # every token of that session is now refused: the successor refresh token and both access tokens
    assert (await api.post(REFRESH, json={"refresh_token": successor["refresh_token"]})).status == 401
    for token in (alice.access_token, successor["access_token"]):
        response = await api.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status == 401


@pytest.mark.parametrize("token", ["", "brt_nothing", "x" * 200])
async def test_an_unknown_refresh_token_is_401(api, token):
    response = await api.post(REFRESH, json={"refresh_token": token})
    assert response.status in (401, 422)


async def test_logout_ends_the_session_at_once(api, alice):
    response = await api.post("/api/v1/auth/logout", headers=alice.headers)
    assert response.status == 204
    me = await api.get("/api/v1/users/me", headers=alice.headers)
    assert (await problem(me))["code"] == "unauthorized"
    assert (await api.post(REFRESH, json={"refresh_token": alice.refresh_token})).status == 401


async def test_sessions_list_own_with_user_agent_ip_and_current(api, alice):
    other = await login(api, alice.email, **{"User-Agent": "second-device/1.0"})
    sessions = (await (await api.get("/api/v1/auth/sessions", headers=alice.headers)).json())["items"]
    assert len(sessions) == 2
    current = [s for s in sessions if s["current"]]
    assert len(current) == 1
    second = next(s for s in sessions if not s["current"])
    assert second["user_agent"] == "second-device/1.0" and second["ip"] == "127.0.0.1"
    assert (await api.delete(f"/api/v1/auth/sessions/{second['id']}", headers=alice.headers)).status == 204
    assert (await api.get("/api/v1/users/me", headers=other.headers)).status == 401
    assert (await api.get("/api/v1/users/me", headers=alice.headers)).status == 200


async def test_someone_elses_session_is_404_for_a_user_and_revocable_by_an_admin(api, admin, alice, bob):
    bob_session = (await (await api.get("/api/v1/auth/sessions", headers=bob.headers)).json())["items"][0]["id"]
    response = await api.delete(f"/api/v1/auth/sessions/{bob_session}", headers=alice.headers)
    assert response.status == 404
    assert (await api.delete(f"/api/v1/auth/sessions/{bob_session}", headers=admin.headers)).status == 204
    assert (await api.get("/api/v1/users/me", headers=bob.headers)).status == 401


async def test_password_change_keeps_this_session_and_ends_the_others(api, alice):
    other = await login(api, alice.email)
    new = "a brand new passphrase"
    wrong = await api.post("/api/v1/auth/password", json={"current_password": "not it at all", "new_password": new}, headers=alice.headers)
    assert (await problem(wrong))["code"] == "invalid_credentials"
    response = await api.post("/api/v1/auth/password", json={"current_password": PASSWORD, "new_password": new}, headers=alice.headers)
    assert response.status == 204
    assert (await api.get("/api/v1/users/me", headers=alice.headers)).status == 200
    assert (await api.get("/api/v1/users/me", headers=other.headers)).status == 401
    await login(api, alice.email, new)


@pytest.mark.parametrize(
    ("password", "field"),
    [("short", "new_password"), ("qwertyuiop", "new_password"), ("x" * 1025, "new_password")],
)
async def test_weak_new_passwords_are_422(api, alice, password, field):
    response = await api.post("/api/v1/auth/password", json={"current_password": PASSWORD, "new_password": password}, headers=alice.headers)
    body = await problem(response)
    assert response.status == 422 and body["errors"][0]["field"] == field


async def test_passwords_are_any_unicode_and_never_case_folded(api):
    password = "Ünïcödé pässwörd 🔑"
    await create_user(api, "u@example.com", password=password)
    await login(api, "u@example.com", password)
    response = await api.post(LOGIN, json={"email": "u@example.com", "password": password.lower()})
    assert response.status == 401


async def test_password_reset_token_is_one_use_and_ends_every_session(api, admin, alice):
    issued = await api.post(f"/api/v1/users/{alice.id}/password-reset", headers=admin.headers)
    assert issued.status == 201
    token = (await issued.json())["reset_token"]
    body = {"reset_token": token, "new_password": "reset passphrase here"}
    assert (await api.post("/api/v1/auth/password-reset", json=body)).status == 204
    assert (await api.get("/api/v1/users/me", headers=alice.headers)).status == 401
    again = await api.post("/api/v1/auth/password-reset", json=body)
    assert (await problem(again))["code"] == "unauthorized"
    await login(api, alice.email, "reset passphrase here")


async def test_registration_is_closed_by_default(api):
    response = await api.post("/api/v1/auth/register", json={"email": "new@example.com", "password": PASSWORD})
    assert (await problem(response))["code"] == "forbidden"


async def test_open_registration_creates_a_user_once(aiohttp_client, backend_settings):
    from dataclasses import replace

    api = await aiohttp_client(create_app(replace(backend_settings, registration="open")))
    body = {"email": "new@example.com", "password": PASSWORD, "display_name": "New"}
    response = await api.post("/api/v1/auth/register", json=body)
    assert response.status == 201 and (await response.json())["role"] == "user"
    again = await api.post("/api/v1/auth/register", json={**body, "email": "NEW@example.com"})
    assert (await problem(again))["code"] == "conflict"


async def test_failed_logins_per_account_are_limited_then_429(api, alice):
    for _ in range(10):
        response = await api.post(LOGIN, json={"email": alice.email, "password": "wrong password!"})
        assert response.status == 401
    response = await api.post(LOGIN, json={"email": alice.email, "password": PASSWORD})
    assert response.status == 429 and int(response.headers["Retry-After"]) > 0
    assert (await problem(response))["code"] == "rate_limited"


async def test_a_successful_login_clears_the_account_s_failures(api, alice):
    for _ in range(2):  # 18 failures in all, never 10 in a row without a success between
        for _ in range(9):
            assert (await api.post(LOGIN, json={"email": alice.email, "password": "wrong password!"})).status == 401
        assert (await api.post(LOGIN, json={"email": alice.email, "password": PASSWORD})).status == 200


async def test_x_forwarded_for_counts_only_from_a_trusted_proxy(aiohttp_client, backend_settings):
    from dataclasses import replace

    import ipaddress

    trusted = replace(backend_settings, trusted_proxies=(ipaddress.ip_network("127.0.0.1/32"),))
    api = await aiohttp_client(create_app(trusted))
    await signed_up(api, "alice@example.com")
    actor = await login(api, "alice@example.com", **{"X-Forwarded-For": "203.0.113.7"})
    sessions = (await (await api.get("/api/v1/auth/sessions", headers=actor.headers)).json())["items"]
    assert {s["ip"] for s in sessions} >= {"203.0.113.7"}

    untrusted = await aiohttp_client(create_app(replace(backend_settings, data_dir=backend_settings.data_dir / "b")))
    await signed_up(untrusted, "carol@example.com")
    actor = await login(untrusted, "carol@example.com", **{"X-Forwarded-For": "203.0.113.7"})
    sessions = (await (await untrusted.get("/api/v1/auth/sessions", headers=actor.headers)).json())["items"]
    assert "203.0.113.7" not in {s["ip"] for s in sessions}


async def test_jwks_publishes_the_signing_key(api, alice):
    import jwt

    jwks = await (await api.get("/.well-known/jwks.json")).json()
    header = jwt.get_unverified_header(alice.access_token)
    assert header["alg"] == "EdDSA"
    assert header["kid"] in {k["kid"] for k in jwks["keys"]}
    assert all(k["kty"] == "OKP" and k["crv"] == "Ed25519" and "d" not in k for k in jwks["keys"])
