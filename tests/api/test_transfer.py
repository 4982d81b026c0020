"""POST /api/v1/admin/import/users: accounts with their password hashes, for `bastiond import`."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher, Type
from webauthn.helpers import base64url_to_bytes

from daemon.context import MFA
from daemon.services import mfa as mfa_service
from tests.api.test_mfa import VERIFY, code_at, mfa_token
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


SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
PASSKEY = {"id": "pk_01jimportedpasskey000001", "credential_id": "Y3JlZGVudGlhbC1pZC0x", "public_key": "pQECAyYgASFYIA",
           "sign_count": 7, "name": "Laptop", "aaguid": "00000000-0000-0000-0000-000000000000",
           "transports": "internal hybrid", "backed_up": True, "created_at": "2025-02-03T04:05:06Z",
           "last_used_at": None}


async def test_an_account_arrives_with_its_second_factors_and_still_needs_one(api, admin):
    """An account that had TOTP, recovery codes and a passkey where it was does not arrive needing only its
    password: the code of the same secret, or one of its recovery codes, completes a login here."""
    user_id = _user()["id"]
    codes = ["ABCD-EFGH-JKLM-NPQR", "BCDE-FGHJ-KLMN-PQRS"]
    record = _user(email_verified=True, totp={"secret": SECRET, "confirmed_at": "2025-01-03T00:00:00Z", "last_step": 5},
                   recovery_codes=[mfa_service._recovery_hash(user_id, c) for c in codes], passkeys=[PASSKEY])
    response = await api.post(ROUTE, json={"users": [record]}, headers=admin.headers)
    assert await response.json() == {"created": 1, "skipped": 0}

    token = await mfa_token(api, "moved@example.com", password=PASSWORD)
    verified = await api.post(VERIFY, json={"mfa_token": token, "code": code_at(SECRET)})
    assert verified.status == 200, await verified.text()
    me = (await verified.json())["user"]
    assert (me["mfa_enabled"], me["email_verified"]) == (True, True)
    token = await mfa_token(api, "moved@example.com", password=PASSWORD)
    assert (await api.post(VERIFY, json={"mfa_token": token, "code": codes[1]})).status == 200

    passkeys = await api.server.app[MFA]._rows.db.fetch_all("SELECT * FROM passkeys WHERE user_id = ?", user_id)
    assert [(p["credential_id"], bytes(p["public_key"]), p["sign_count"]) for p in passkeys] == [
        (PASSKEY["credential_id"], base64url_to_bytes(PASSKEY["public_key"]), 7)]


async def test_a_passkey_alone_keeps_the_second_factor_on(api, admin):
    response = await api.post(ROUTE, json={"users": [_user(passkeys=[PASSKEY])]}, headers=admin.headers)
    assert await response.json() == {"created": 1, "skipped": 0}
    await mfa_token(api, "moved@example.com", password=PASSWORD)


async def test_an_account_whose_passkey_is_registered_here_is_skipped_whole(api, admin):
    first = await api.post(ROUTE, json={"users": [_user(passkeys=[PASSKEY])]}, headers=admin.headers)
    assert await first.json() == {"created": 1, "skipped": 0}
    other = _user(id="usr_01jother", email="other@example.com", totp={"secret": SECRET, "confirmed_at": "2025-01-03T00:00:00Z"},
                  passkeys=[{**PASSKEY, "id": "pk_01jother"}])
    again = await api.post(ROUTE, json={"users": [other]}, headers=admin.headers)
    assert await again.json() == {"created": 0, "skipped": 1}
    users = await (await api.get("/api/v1/users?q=other@", headers=admin.headers)).json()
    assert users["items"] == []
    rows = await api.server.app[MFA]._rows.db.fetch_all("SELECT user_id FROM totp_factors WHERE user_id = ?", "usr_01jother")
    assert rows == []


@pytest.mark.parametrize(("changes", "where"), [
    ({"totp": {"secret": "jbswy3dpehpk3pxp", "confirmed_at": "2025-01-03T00:00:00Z"}}, "secret"),  # not base32
    ({"totp": {"secret": SECRET}}, "confirmed_at"),  # an enrolment never confirmed is no factor
    ({"totp": {"secret": SECRET, "confirmed_at": "2025-01-03T00:00:00Z", "last_step": -1}}, "last_step"),
    ({"recovery_codes": ["ABCD-EFGH-JKLM-NPQR"]}, "recovery_codes"),  # a code in the clear, not its hash
    ({"passkeys": [{**PASSKEY, "public_key": "not base64url!"}]}, "public_key"),
    ({"passkeys": [{**PASSKEY, "sign_count": -1}]}, "sign_count"),
    ({"email_verified": "yes"}, "email_verified"),
])
async def test_malformed_second_factors_are_refused_whole(api, admin, changes, where):
    response = await api.post(ROUTE, json={"users": [_user(**changes)]}, headers=admin.headers)
    assert response.status == 422
    assert where in str((await problem(response))["errors"])
    users = await (await api.get("/api/v1/users?q=moved@", headers=admin.headers)).json()
    assert users["items"] == []
