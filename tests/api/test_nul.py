"""The NUL character, which PostgreSQL's text refuses: in a field stored or looked up as text (a display name, a
key's name, a login's email, a search) it is a 422 naming the field on both backends, where a display name of
"\\u0000" was a 500 on PostgreSQL; in metadata, stored as JSON, it is kept."""

from __future__ import annotations

import pytest

from tests.api.test_transfer import PASSKEY, ROUTE, _user
from tests.helpers import problem


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/api/v1/users", {"email": "nul@example.com", "password": "a long enough password", "display_name": "a\x00b"},
     "display_name"),
    ("/api/v1/auth/api-keys", {"name": "k\x00", "scopes": ["read"]}, "name"),
    ("/api/v1/auth/login", {"email": "nul\x00@example.com", "password": "a long enough password"}, "email"),
    ("/api/v1/auth/device/approve", {"user_code": "AB\x00", "approve": True}, "user_code"),
    (ROUTE, {"users": [_user(passkeys=[{**PASSKEY, "name": "\x00"}])]}, "users.0.passkeys.0.name"),
])
async def test_a_nul_in_a_text_field_is_422_naming_the_field(api, admin, path, body, field):
    response = await api.post(path, json=body, headers=admin.headers)
    assert response.status == 422, await response.text()
    assert field in [e["field"] for e in (await problem(response))["errors"]]
    users = await (await api.get("/api/v1/users?q=nul@", headers=admin.headers)).json()
    assert users["items"] == []


async def test_a_nul_in_a_query_string_is_422(api, admin):
    response = await api.get("/api/v1/users?q=%00", headers=admin.headers)
    assert response.status == 422 and (await problem(response))["errors"][0]["field"] == "q"


async def test_a_nul_in_vector_metadata_is_kept(api, admin):
    assert (await api.post("/api/v1/collections", json={"name": "nul", "dimension": 2}, headers=admin.headers)).status == 201
    response = await api.post("/api/v1/collections/nul/upsert", headers=admin.headers, json={
        "vectors": [{"id": "a", "values": [0, 1], "metadata": {"k": "a\x00b"}}]})
    assert response.status == 200, await response.text()
    fetched = await (await api.post("/api/v1/collections/nul/fetch", json={"ids": ["a"]}, headers=admin.headers)).json()
    assert fetched["vectors"]["a"]["metadata"] == {"k": "a\x00b"}


@pytest.mark.parametrize(("changes", "where"), [
    ({"passkeys": [{**PASSKEY, "public_key": "AAAAA"}]}, "public_key"),  # 4k + 1 characters: no whole bytes
    ({"passkeys": [{**PASSKEY, "sign_count": 2**40}]}, "sign_count"),
    ({"passkeys": [{**PASSKEY, "sign_count": "7"}]}, "sign_count"),  # a number, not a string of one
    ({"passkeys": [{**PASSKEY, "aaguid": "not a uuid"}]}, "aaguid"),
    ({"totp": {"secret": "JBSWY3DPEHPK3PXP", "confirmed_at": "2025-01-03T00:00:00Z", "last_step": 2**40}}, "last_step"),
])
async def test_imported_factors_out_of_the_databases_range_are_422_not_500(api, admin, changes, where):
    response = await api.post(ROUTE, json={"users": [_user(**changes)]}, headers=admin.headers)
    assert response.status == 422, await response.text()
    assert where in str((await problem(response))["errors"])
