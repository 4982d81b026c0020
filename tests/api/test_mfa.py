"""TOTP with recovery codes (API.md, "Auth for operators"), on SQLite and PostgreSQL; the abuse cases first."""

from __future__ import annotations

import asyncio
import time

import pyotp
import pytest

from daemon.app import create_app
from daemon.context import MFA
from daemon.services import auth as auth_service
from daemon.services import mfa as mfa_service
from daemon.services.guesses import GuessLimit, GuessPolicy
from daemon.settings import Settings
from tests.helpers import PASSWORD, Actor, create_user, login, problem

LOGIN = "/api/v1/auth/login"
VERIFY = "/api/v1/auth/mfa/verify"
TOTP = "/api/v1/auth/mfa/totp"
CONFIRM = "/api/v1/auth/mfa/totp/confirm"


def code_at(secret: str, steps_ahead: int = 0) -> str:
    """The code of the current time step, or of one either side (the server accepts one step of drift)."""
    totp = pyotp.TOTP(secret)
    return totp.generate_otp(totp.timecode(time.time()) + steps_ahead)


async def enrol(api, actor: Actor) -> tuple[str, list[str]]:
    """Turn TOTP on for `actor`; its secret and recovery codes. The code used is the previous step's, so
    that the current and next steps' codes remain for the test."""
    started = await api.post(TOTP, json={"password": actor.password}, headers=actor.headers)
    assert started.status == 201, await started.text()
    secret = (await started.json())["secret"]
    confirmed = await api.post(CONFIRM, json={"code": code_at(secret, -1)}, headers=actor.headers)
    assert confirmed.status == 200, await confirmed.text()
    return secret, (await confirmed.json())["recovery_codes"]


async def mfa_token(api, email: str, expect: str = "mfa_required", password: str = PASSWORD) -> str:
    response = await api.post(LOGIN, json={"email": email, "password": password})
    body = await problem(response)
    assert response.status == 401 and body["code"] == expect, body
    return body["mfa_token"]


async def test_enrolment_turns_mfa_on_and_login_then_needs_a_code(api, alice):
    started = await api.post(TOTP, json={"password": PASSWORD}, headers=alice.headers)
    body = await started.json()
    assert started.status == 201
    assert body["otpauth_uri"].startswith("otpauth://totp/") and body["secret"] in body["otpauth_uri"]
    assert not (await (await api.get("/api/v1/users/me", headers=alice.headers)).json())["mfa_enabled"]

    confirmed = await api.post(CONFIRM, json={"code": code_at(body["secret"])}, headers=alice.headers)
    codes = (await confirmed.json())["recovery_codes"]
    assert confirmed.status == 200 and len(codes) == 10 and len(set(codes)) == 10
    assert (await (await api.get("/api/v1/users/me", headers=alice.headers)).json())["mfa_enabled"]

    token = await mfa_token(api, alice.email)
    verified = await api.post(VERIFY, json={"mfa_token": token, "code": code_at(body["secret"], 1)})
    pair = await verified.json()
    assert verified.status == 200 and pair["user"]["id"] == alice.id and pair["user"]["mfa_enabled"]
    assert (await api.get("/api/v1/users/me", headers={"Authorization": f"Bearer {pair['access_token']}"})).status == 200


async def test_a_code_is_never_accepted_twice(api, alice):
    secret, _ = await enrol(api, alice)
    code = code_at(secret)
    first = await api.post(VERIFY, json={"mfa_token": await mfa_token(api, alice.email), "code": code})
    assert first.status == 200
    again = await api.post(VERIFY, json={"mfa_token": await mfa_token(api, alice.email), "code": code})
    assert again.status == 401 and (await problem(again))["code"] == "invalid_mfa_code"
    # An older step's code is refused too once a later one was used.
    older = await api.post(VERIFY, json={"mfa_token": await mfa_token(api, alice.email), "code": code_at(secret, -1)})
    assert (await problem(older))["code"] == "invalid_mfa_code"


async def test_the_same_code_sent_at_once_by_many_logins_is_accepted_once(api, alice):
    secret, _ = await enrol(api, alice)
    tokens = [await mfa_token(api, alice.email) for _ in range(6)]
    code = code_at(secret, 1)
    answers = await asyncio.gather(*(api.post(VERIFY, json={"mfa_token": t, "code": code}) for t in tokens))
    assert sorted(a.status for a in answers) == [200] + [401] * 5


async def test_the_mfa_token_is_spent_by_its_login(api, alice):
    secret, codes = await enrol(api, alice)
    token = await mfa_token(api, alice.email)
    assert (await api.post(VERIFY, json={"mfa_token": token, "code": codes[0]})).status == 200
    again = await api.post(VERIFY, json={"mfa_token": token, "code": codes[1]})
    assert again.status == 401 and (await problem(again))["code"] == "unauthorized"


async def test_five_wrong_codes_kill_the_mfa_token(api, alice):
    secret, _ = await enrol(api, alice)
    token = await mfa_token(api, alice.email)
    for _ in range(5):
        wrong = await api.post(VERIFY, json={"mfa_token": token, "code": "000000"})
        assert (await problem(wrong))["code"] == "invalid_mfa_code"
    right = await api.post(VERIFY, json={"mfa_token": token, "code": code_at(secret, 1)})
    assert right.status == 401 and (await problem(right))["code"] == "unauthorized"
    # A new login gets a new token, and the right code works with it.
    fresh = await api.post(VERIFY, json={"mfa_token": await mfa_token(api, alice.email), "code": code_at(secret, 1)})
    assert fresh.status == 200


async def test_concurrent_guesses_get_no_more_than_five_tries_of_one_token(api, alice):
    secret, _ = await enrol(api, alice)
    token = await mfa_token(api, alice.email)
    guesses = [f"{n:06d}" for n in range(100000, 100030) if f"{n:06d}" not in
               {code_at(secret, d) for d in (-1, 0, 1)}]
    answers = await asyncio.gather(*(api.post(VERIFY, json={"mfa_token": token, "code": g}) for g in guesses))
    codes = [(await problem(a))["code"] for a in answers]
    assert codes.count("invalid_mfa_code") == 5
    assert codes.count("unauthorized") == len(guesses) - 5


async def test_wrong_codes_count_toward_the_accounts_failure_limit(api, alice, monkeypatch):
    secret, _ = await enrol(api, alice)
    # The login's own policy, with a smaller limit for the test, where the login and the codes read it.
    smaller = GuessPolicy("login", "too many", (GuessLimit(("account",), 3, 900),))
    monkeypatch.setattr(auth_service, "LOGIN", smaller)
    monkeypatch.setattr(mfa_service, "LOGIN", smaller)
    tokens = [await mfa_token(api, alice.email) for _ in range(2)]
    for _ in range(3):  # the right password's login was forgiven; these three wrong codes are not
        wrong = await api.post(VERIFY, json={"mfa_token": tokens[0], "code": "000000"})
        assert (await problem(wrong))["code"] == "invalid_mfa_code"
    limited = await api.post(VERIFY, json={"mfa_token": tokens[1], "code": code_at(secret, 1)})
    assert limited.status == 429 and int(limited.headers["Retry-After"]) > 0
    # The password, right as it is, is refused too: the account is locked for a while.
    locked = await api.post(LOGIN, json={"email": alice.email, "password": PASSWORD})
    assert locked.status == 429


async def test_a_recovery_code_works_once(api, alice):
    _, codes = await enrol(api, alice)
    first = await api.post(VERIFY, json={"mfa_token": await mfa_token(api, alice.email),
                                         "code": codes[3].lower().replace("-", " ")})
    assert first.status == 200
    again = await api.post(VERIFY, json={"mfa_token": await mfa_token(api, alice.email), "code": codes[3]})
    assert (await problem(again))["code"] == "invalid_mfa_code"


async def test_one_users_recovery_code_does_not_open_another_account(api, alice, bob):
    _, alice_codes = await enrol(api, alice)
    await enrol(api, bob)
    answer = await api.post(VERIFY, json={"mfa_token": await mfa_token(api, bob.email), "code": alice_codes[0]})
    assert (await problem(answer))["code"] == "invalid_mfa_code"


async def test_an_enrolment_token_cannot_stand_in_for_a_code(aiohttp_client, backend_settings):
    api = await aiohttp_client(create_app(Settings(**{**backend_settings.__dict__, "mfa_required_roles": ("admin",)})))
    await create_user(api, "root@example.com", "admin")
    token = await mfa_token(api, "root@example.com", "mfa_enrolment_required")
    answer = await api.post(VERIFY, json={"mfa_token": token, "code": "123456"})
    assert answer.status == 401 and (await problem(answer))["code"] == "unauthorized"


async def test_a_required_role_is_led_through_enrolment_at_login(aiohttp_client, backend_settings):
    api = await aiohttp_client(create_app(Settings(**{**backend_settings.__dict__, "mfa_required_roles": ("admin",)})))
    await create_user(api, "root@example.com", "admin")
    await create_user(api, "plain@example.com", "user")
    assert (await login(api, "plain@example.com")).user["role"] == "user"  # other roles log in as before

    token = await mfa_token(api, "root@example.com", "mfa_enrolment_required")
    started = await api.post(TOTP, json={"mfa_token": token})
    secret = (await started.json())["secret"]
    assert started.status == 201
    done = await api.post(CONFIRM, json={"mfa_token": token, "code": code_at(secret)})
    body = await done.json()
    assert done.status == 200 and len(body["recovery_codes"]) == 10
    session = {"Authorization": f"Bearer {body['session']['access_token']}"}
    assert (await (await api.get("/api/v1/users/me", headers=session)).json())["mfa_enabled"]
    # The enrolment token is spent; the next login asks for a code.
    assert (await api.post(CONFIRM, json={"mfa_token": token, "code": code_at(secret, 1)})).status == 401
    await mfa_token(api, "root@example.com", "mfa_required")


async def test_an_admin_resets_a_users_mfa_and_it_is_audited(api, admin, alice):
    await enrol(api, alice)
    assert (await api.delete(f"/api/v1/users/{alice.id}/mfa", headers=alice.headers)).status == 403
    reset = await api.delete(f"/api/v1/users/{alice.id}/mfa", headers=admin.headers)
    assert reset.status == 204
    assert not (await login(api, alice.email)).user["mfa_enabled"]
    audit = await (await api.get("/api/v1/audit", params={"event": "mfa.reset"}, headers=admin.headers)).json()
    assert [(e["actor_id"], e["target_id"]) for e in audit["items"]] == [(admin.id, alice.id)]
    missing = await api.delete("/api/v1/users/usr_nobody/mfa", headers=admin.headers)
    assert missing.status == 404


async def test_turning_totp_off_needs_the_password_and_a_code(api, alice):
    secret, _ = await enrol(api, alice)
    headers = alice.headers
    wrong = await api.delete(TOTP, json={"password": "not the password", "code": code_at(secret)}, headers=headers)
    assert (await problem(wrong))["code"] == "invalid_credentials"
    bad_code = await api.delete(TOTP, json={"password": PASSWORD, "code": "000000"}, headers=headers)
    assert (await problem(bad_code))["code"] == "invalid_mfa_code"
    assert (await api.delete(TOTP, json={"password": PASSWORD, "code": code_at(secret)}, headers=headers)).status == 204
    assert not (await login(api, alice.email)).user["mfa_enabled"]


async def test_enrolment_refuses_a_wrong_password_an_api_key_and_a_second_factor_twice(api, alice):
    wrong = await api.post(TOTP, json={"password": "not the password"}, headers=alice.headers)
    assert wrong.status == 401 and (await problem(wrong))["code"] == "invalid_credentials"
    key = await (await api.post("/api/v1/auth/api-keys", json={"name": "k", "scopes": ["read", "write"]},
                                headers=alice.headers)).json()
    by_key = await api.post(TOTP, json={"password": PASSWORD}, headers={"Authorization": f"Bearer {key['key']}"})
    assert by_key.status == 403
    await enrol(api, alice)
    twice = await api.post(TOTP, json={"password": PASSWORD}, headers=alice.headers)
    assert twice.status == 409


@pytest.mark.parametrize(("path", "body", "status"), [
    (TOTP, {}, 401),                                     # neither a bearer token nor an mfa_token
    (TOTP, {"mfa_token": "made-up"}, 401),
    (CONFIRM, {"code": "123456"}, 401),
    (CONFIRM, {"code": "123456", "mfa_token": "made-up"}, 401),
    (VERIFY, {"mfa_token": "made-up", "code": "123456"}, 401),
    (VERIFY, {"mfa_token": "t"}, 422),
    (VERIFY, {"mfa_token": "t", "code": ""}, 422),
    (VERIFY, {"mfa_token": "t", "code": "1" * 65}, 422),
    (VERIFY, {"mfa_token": 5, "code": "123456"}, 422),
    (VERIFY, {"mfa_token": "t", "code": "123456", "extra": 1}, 422),
])
async def test_bad_input_is_refused_cleanly(api, alice, path, body, status):
    response = await api.post(path, json=body)
    assert response.status == status and (await problem(response))["status"] == status


async def test_confirming_without_an_enrolment_is_a_conflict_and_changes_nothing(api, alice):
    response = await api.post(CONFIRM, json={"code": "123456"}, headers=alice.headers)
    assert response.status == 409
    assert not (await login(api, alice.email)).user["mfa_enabled"]


async def test_the_secret_is_not_stored_in_the_clear(api, alice):
    started = await (await api.post(TOTP, json={"password": PASSWORD}, headers=alice.headers)).json()
    row = await api.app[MFA]._rows.totp(alice.id)
    assert started["secret"].encode() not in row["sealed_secret"]
