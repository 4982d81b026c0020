"""POST /api/v1/admin/import/users: accounts with their password hashes, for `bastiond import`."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher, Type

from tests.helpers import login, problem

ROUTE = "/api/v1/admin/import/users"
PASSWORD = "a password that moves along"
HASH = PasswordHasher(type=Type.ID, time_cost=1, memory_cost=8192).hash(PASSWORD)


def _user(**changes):
    return {"id": "usr_01jimported0000000000000001", "email": "moved@example.com", "display_name": "Moved",
            "role": "user", "disabled": False, "password_hash": HASH, "created_at": "2025-01-02T03:04:05Z", **changes}


async def test_an_imported_account_logs_in_with_its_old_password_and_is_audited(api, admin):
    response = await api.post(ROUTE, json={"users": [_user()]}, headers=admin.headers)
    assert response.status == 200, await response.text()
    assert await response.json() == {"created": 1, "skipped": 0}
    moved = await login(api, "moved@example.com", PASSWORD)
    me = await (await api.get("/api/v1/users/me", headers=moved.headers)).json()
    assert (me["id"], me["display_name"], me["created_at"]) == (_user()["id"], "Moved", "2025-01-02T03:04:05Z")
    audit = await (await api.get("/api/v1/audit?event=user.created", headers=admin.headers)).json()
    assert any(e["target_id"] == me["id"] and e["detail"].get("imported") for e in audit["items"])

    # The same again, or the same email under another id: skipped, nothing changed.
    again = await api.post(ROUTE, json={"users": [_user(), _user(id="usr_01jother", display_name="x")]}, headers=admin.headers)
    assert await again.json() == {"created": 0, "skipped": 2}


@pytest.mark.parametrize(("body", "where"), [
    ({"users": []}, "users"),
    ({"users": [_user(password_hash="$2b$12$abcdefghijklmnopqrstuv")]}, "password_hash"),  # bcrypt: not ours
    ({"users": [_user(password_hash="plain text password")]}, "password_hash"),
    ({"users": [_user(id="../etc")]}, "id"),
    ({"users": [_user(role="root")]}, "role"),
    ({"users": [_user(disabled="yes")]}, "disabled"),
    ({"users": [_user(email="not an email")]}, "email"),
    ({"users": [_user(is_admin=True)]}, "is_admin"),
    ({"users": [_user(created_at=0)]}, "created_at"),  # a number is not a timestamp (it was 1970; schemathesis)
])
async def test_a_malformed_record_is_refused_whole_and_nothing_is_added(api, admin, body, where):
    response = await api.post(ROUTE, json={"users": [*body["users"], _user(id="usr_01jfine", email="fine@example.com")]}
                              if body["users"] else body, headers=admin.headers)
    assert response.status == 422
    assert where in str((await problem(response))["errors"])
    users = await (await api.get("/api/v1/users?q=fine@", headers=admin.headers)).json()
    assert users["items"] == []


async def test_only_an_admin_may_import(api, alice):
    response = await api.post(ROUTE, json={"users": [_user()]}, headers=alice.headers)
    assert response.status == 403
    assert (await problem(response))["code"] == "forbidden"
