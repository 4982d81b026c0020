"""Guessing secrets, as an attacker would: many guesses at once, from one address or many, with a
stolen token. Every guess is counted before it is checked (daemon/services/guesses.py), so racing the
limit checks no more guesses than the limit allows; the owner, elsewhere, can still log in."""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import replace

import pytest

from daemon.app import create_app
from daemon.services.guesses import LOGIN, PASSWORD_CHANGE
from tests.helpers import PASSWORD, create_user, login, problem

RACE = 40
RIGHT_GUESS = 34  # the attack: the right password was guess 34 of 40, and it won


@pytest.fixture(params=["memory", "redis"])
async def api(request: pytest.FixtureRequest, aiohttp_client, settings):
    """The real app, its guess counters in-process or in the real Redis. The per-address request limit
    is off: these attacks are about the per-account counters."""
    options = {"auth_rate_limit_per_minute": 0, "trusted_proxies": (ipaddress.ip_network("127.0.0.1/32"),)}
    if request.param == "redis":
        options |= {"redis_url": request.getfixturevalue("redis_url"),
                    "redis_prefix": request.getfixturevalue("redis_prefix")}
    return await aiohttp_client(create_app(replace(settings, **options)))


def _guess(n: int) -> str:
    return PASSWORD if n == RIGHT_GUESS else f"wrong guess number {n}"


async def test_forty_logins_at_once_check_only_ten_passwords(api):
    await create_user(api, "victim@example.com")
    responses = await asyncio.gather(*(
        api.post("/api/v1/auth/login", json={"email": "victim@example.com", "password": _guess(n)})
        for n in range(RACE)
    ))
    statuses = [r.status for r in responses]
    per_pair = LOGIN.limits[0].limit
    assert statuses.count(429) == RACE - per_pair, statuses
    # Which ten get their turn is up to the scheduler; the right guess is checked only if it is one of them.
    assert statuses.count(401) + statuses.count(200) == per_pair
    assert all(r.headers["Retry-After"] for r in responses if r.status == 429)


async def test_failures_from_another_address_do_not_lock_the_owner_out(api):
    await create_user(api, "victim@example.com")
    attacker = {"X-Forwarded-For": "203.0.113.9"}
    for n in range(LOGIN.limits[0].limit):
        await api.post("/api/v1/auth/login", json={"email": "victim@example.com", "password": f"wrong {n} guess"},
                       headers=attacker)
    refused = await api.post("/api/v1/auth/login", json={"email": "victim@example.com", "password": PASSWORD},
                             headers=attacker)
    assert refused.status == 429
    await login(api, "victim@example.com", **{"X-Forwarded-For": "198.51.100.7"})


async def test_guesses_spread_over_many_addresses_meet_the_slower_per_account_limit(api):
    await create_user(api, "victim@example.com")
    per_account = LOGIN.limits[1].limit
    statuses = []
    for n in range(per_account + 5):
        response = await api.post("/api/v1/auth/login", json={"email": "victim@example.com", "password": f"wrong {n} guess"},
                                  headers={"X-Forwarded-For": f"203.0.113.{n % 200 + 1}"})
        statuses.append(response.status)
    assert statuses.count(401) == per_account and statuses[per_account:] == [429] * 5


async def test_a_stolen_token_is_no_password_oracle(api):
    await create_user(api, "victim@example.com")
    victim = await login(api, "victim@example.com")
    limit = PASSWORD_CHANGE.limits[0].limit
    statuses = []
    for n in range(limit + 10):
        response = await api.post("/api/v1/auth/password", headers=victim.headers,
                                  json={"current_password": PASSWORD if n == limit + 5 else f"wrong {n} guess",
                                        "new_password": "the attacker's own passphrase"})
        statuses.append(response.status)
    assert statuses[:limit] == [401] * limit and statuses[limit:] == [429] * 10, statuses
    await login(api, "victim@example.com")  # the password did not change


async def test_concurrent_password_change_guesses_check_only_the_limit(api):
    await create_user(api, "victim@example.com")
    victim = await login(api, "victim@example.com")
    responses = await asyncio.gather(*(
        api.post("/api/v1/auth/password", headers=victim.headers,
                 json={"current_password": f"wrong guess number {n}", "new_password": "the attacker's own passphrase"})
        for n in range(RACE)
    ))
    statuses = [r.status for r in responses]
    assert statuses.count(401) == PASSWORD_CHANGE.limits[0].limit and statuses.count(429) == RACE - statuses.count(401)
    await login(api, "victim@example.com")


async def test_an_api_key_cannot_change_its_owners_password(api):
    await create_user(api, "victim@example.com")
    victim = await login(api, "victim@example.com")
    created = await api.post("/api/v1/auth/api-keys", json={"name": "ci", "scopes": ["read", "write"]},
                             headers=victim.headers)
    key = (await created.json())["key"]
    response = await api.post("/api/v1/auth/password", headers={"Authorization": f"Bearer {key}"},
                              json={"current_password": PASSWORD, "new_password": "the attacker's own passphrase"})
    assert response.status == 403 and (await problem(response))["code"] == "forbidden"
    await login(api, "victim@example.com")


async def test_a_right_login_forgives_the_owners_own_typos(api):
    await create_user(api, "victim@example.com")
    for n in range(LOGIN.limits[0].limit - 1):
        await api.post("/api/v1/auth/login", json={"email": "victim@example.com", "password": f"typo {n} here"})
    await login(api, "victim@example.com")
    for n in range(LOGIN.limits[0].limit - 1):
        response = await api.post("/api/v1/auth/login", json={"email": "victim@example.com", "password": f"typo {n} again"})
        assert response.status == 401


async def test_logins_turned_away_unchecked_do_not_count_as_guesses(aiohttp_client, settings):
    """503 (no room to hash) judged nothing: the owner keeps the whole budget for guesses really checked."""
    api = await aiohttp_client(create_app(replace(settings, login_concurrency=1, login_queue=0,
                                                  auth_rate_limit_per_minute=0)))
    await create_user(api, "victim@example.com")
    burst = await asyncio.gather(*(
        api.post("/api/v1/auth/login", json={"email": "victim@example.com", "password": f"wrong {n} guess"})
        for n in range(LOGIN.limits[0].limit)
    ))
    statuses = [r.status for r in burst]
    assert 503 in statuses and set(statuses) <= {401, 503}, statuses
    checked = statuses.count(401)
    later = []
    for n in range(LOGIN.limits[0].limit - checked + 1):
        response = await api.post("/api/v1/auth/login", json={"email": "victim@example.com", "password": f"later {n}"})
        later.append(response.status)
    assert later == [401] * (LOGIN.limits[0].limit - checked) + [429]
