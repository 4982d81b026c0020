"""Who may call what: every auth and users route against every kind of caller.

Callers: the admin, alice (the target of the {alice} routes), bob (another user), alice's API keys
with scope read and with scope write, the admin's API key with scope admin only, and nobody.
Each row is run in the order of the columns, so a call that would succeed and change things
(the admin's) comes last.
"""

from __future__ import annotations

import pytest

from tests.helpers import PASSWORD, signed_up

CALLERS = ("anonymous", "bob", "key_read", "key_write", "key_admin", "alice", "admin")

ROWS = [
    # method, path, body, expected status per caller (same order as CALLERS)
    ("GET", "/api/v1/users/me", None, (401, 200, 200, 403, 403, 200, 200)),
    ("PATCH", "/api/v1/users/me", {"display_name": "x"}, (401, 200, 403, 200, 403, 200, 200)),
    ("GET", "/api/v1/users", None, (401, 403, 403, 403, 200, 403, 200)),
    ("POST", "/api/v1/users", {"email": "new@example.com", "password": PASSWORD, "role": "user"}, (401, 403, 403, 403, 201, 403, 409)),
    ("GET", "/api/v1/users/{alice}", None, (401, 404, 200, 403, 403, 200, 200)),
    ("PATCH", "/api/v1/users/{alice}", {"display_name": "y"}, (401, 403, 403, 403, 200, 403, 200)),
    ("POST", "/api/v1/users/{alice}/password-reset", None, (401, 403, 403, 403, 201, 403, 201)),
    ("DELETE", "/api/v1/users/{alice}", None, (401, 403, 403, 403, 204, 401, 404)),
    ("GET", "/api/v1/audit", None, (401, 403, 403, 403, 200, 403, 200)),
    ("GET", "/api/v1/auth/sessions", None, (401, 200, 200, 403, 403, 200, 200)),
    ("DELETE", "/api/v1/auth/sessions/{alice_session}", None, (401, 404, 403, 204, 403, 401, 404)),
    ("POST", "/api/v1/auth/api-keys", {"name": "k", "scopes": ["read"]}, (401, 201, 403, 403, 403, 201, 201)),
    ("GET", "/api/v1/auth/api-keys", None, (401, 200, 200, 403, 403, 200, 200)),
    ("DELETE", "/api/v1/auth/api-keys/{alice_key}", None, (401, 404, 403, 204, 403, 404, 404)),
    ("POST", "/api/v1/auth/logout", None, (401, 204, 403, 403, 403, 204, 204)),
]


async def _key(api, actor, scopes: list[str]) -> str:
    response = await api.post("/api/v1/auth/api-keys", json={"name": "k", "scopes": scopes}, headers=actor.headers)
    assert response.status == 201
    return (await response.json())["key"]


@pytest.mark.parametrize(("method", "path", "body", "expected"), ROWS, ids=[f"{r[0]} {r[1]}" for r in ROWS])
async def test_access(api, method, path, body, expected):
    admin = await signed_up(api, "admin@example.com", "admin")
    alice = await signed_up(api, "alice@example.com")
    bob = await signed_up(api, "bob@example.com")
    keys = {
        "key_read": await _key(api, alice, ["read"]),
        "key_write": await _key(api, alice, ["write"]),
        "key_admin": await _key(api, admin, ["admin"]),
    }
    alice_session = (await (await api.get("/api/v1/auth/sessions", headers=alice.headers)).json())["items"][0]["id"]
    alice_key = (await (await api.get("/api/v1/auth/api-keys", headers=alice.headers)).json())["items"][0]["id"]
    url = path.format(alice=alice.id, alice_session=alice_session, alice_key=alice_key)
    tokens = {"anonymous": None, "bob": bob.access_token, "alice": alice.access_token, "admin": admin.access_token, **keys}
    got = []
    for caller in CALLERS:
        headers = {"Authorization": f"Bearer {tokens[caller]}"} if tokens[caller] else {}
        response = await api.request(method, url, json=body, headers=headers)
        got.append(response.status)
    assert tuple(got) == expected, dict(zip(CALLERS, got))


async def test_a_key_never_gets_scopes_its_creator_lacks(api):
    alice = await signed_up(api, "alice@example.com")
    response = await api.post("/api/v1/auth/api-keys", json={"name": "k", "scopes": ["admin"]}, headers=alice.headers)
    assert response.status == 403


async def test_keys_are_shown_once_listed_without_secret_and_expire(api):
    from datetime import UTC, datetime, timedelta

    alice = await signed_up(api, "alice@example.com")
    created = await (await api.post("/api/v1/auth/api-keys", json={"name": "ci", "scopes": ["read", "write"]}, headers=alice.headers)).json()
    assert created["key"].startswith("bst_")
    listed = (await (await api.get("/api/v1/auth/api-keys", headers=alice.headers)).json())["items"]
    assert "key" not in listed[0] and created["key"] not in str(listed)
    key_headers = {"Authorization": f"Bearer {created['key']}"}
    assert (await api.get("/api/v1/users/me", headers=key_headers)).status == 200
    listed = (await (await api.get("/api/v1/auth/api-keys", headers=alice.headers)).json())["items"]
    assert listed[0]["last_used_at"] is not None
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    response = await api.post("/api/v1/auth/api-keys", json={"name": "old", "scopes": ["read"], "expires_at": past}, headers=alice.headers)
    assert response.status == 422
    # A number is not a timestamp (pydantic would read it as Unix seconds): 422, no key made.
    far = int((datetime.now(UTC) + timedelta(days=30)).timestamp())
    response = await api.post("/api/v1/auth/api-keys", json={"name": "epoch", "scopes": ["read"], "expires_at": far}, headers=alice.headers)
    assert response.status == 422
    assert (await api.delete(f"/api/v1/auth/api-keys/{created['id']}", headers=alice.headers)).status == 204
    assert (await api.get("/api/v1/users/me", headers=key_headers)).status == 401
