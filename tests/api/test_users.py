"""The /users routes and the audit trail, on SQLite and PostgreSQL."""

from __future__ import annotations

from tests.helpers import PASSWORD, login, problem, signed_up

USERS = "/api/v1/users"


async def test_me_and_patch_me(api, alice):
    response = await api.patch(f"{USERS}/me", json={"display_name": "Alice A."}, headers=alice.headers)
    assert response.status == 200 and (await response.json())["display_name"] == "Alice A."


async def test_mass_assignment_on_me_is_422(api, alice):
    for field, value in (("role", "admin"), ("disabled", False), ("id", "usr_x"), ("email", "x@example.com")):
        response = await api.patch(f"{USERS}/me", json={field: value}, headers=alice.headers)
        body = await problem(response)
        assert response.status == 422 and body["errors"][0]["field"] == field
    me = await (await api.get(f"{USERS}/me", headers=alice.headers)).json()
    assert me["role"] == "user"


async def test_me_is_never_taken_for_a_user_id(api, admin):
    # /users/{id} does not match "me": DELETE /users/me is not "delete the user with id me", and the
    # 405 names only the methods /users/me has.
    for method in ("DELETE", "PUT", "POST"):
        response = await api.request(method, f"{USERS}/me", headers=admin.headers)
        assert response.status == 405 and (await problem(response))["code"] == "method_not_allowed"
        assert sorted(response.headers["Allow"].split(",")) == ["GET", "PATCH"]
    assert (await api.get(f"{USERS}/me", headers=admin.headers)).status == 200
    response = await api.post(f"{USERS}/me/password-reset", headers=admin.headers)
    assert response.status == 404


async def test_a_user_never_learns_another_user_exists(api, alice, bob):
    for target in (bob.id, "usr_doesnotexist"):
        response = await api.get(f"{USERS}/{target}", headers=alice.headers)
        body = await problem(response)
        body.pop("request_id")
        assert response.status == 404
    assert (await api.get(f"{USERS}/{alice.id}", headers=alice.headers)).status == 200


async def test_admin_creates_lists_filters_and_pages_users(api, admin):
    for i in range(5):
        body = {"email": f"user{i}@example.com", "password": PASSWORD, "role": "user", "display_name": f"User {i}"}
        assert (await api.post(USERS, json=body, headers=admin.headers)).status == 201
    page = await (await api.get(f"{USERS}?limit=2", headers=admin.headers)).json()
    seen = [u["email"] for u in page["items"]]
    while page["next_cursor"]:
        page = await (await api.get(f"{USERS}?limit=2&cursor={page['next_cursor']}", headers=admin.headers)).json()
        seen += [u["email"] for u in page["items"]]
    assert len(seen) == 6 == len(set(seen))
    found = await (await api.get(f"{USERS}?q=USER3", headers=admin.headers)).json()
    assert [u["email"] for u in found["items"]] == ["user3@example.com"]
    admins = await (await api.get(f"{USERS}?role=admin", headers=admin.headers)).json()
    assert [u["email"] for u in admins["items"]] == ["admin@example.com"]
    for forged in ("%25%25%25", "not-a-cursor!", "AAAA"):
        response = await api.get(f"{USERS}?cursor={forged}", headers=admin.headers)
        assert response.status == 422 and (await problem(response))["errors"][0]["field"] == "cursor"
    like = await (await api.get(f"{USERS}?q=%25", headers=admin.headers)).json()
    assert like["items"] == []  # a % in the search is a character, not a wildcard


async def test_duplicate_email_is_409_and_changes_nothing(api, admin, alice):
    body = {"email": "Alice@Example.com", "password": PASSWORD, "role": "admin"}
    response = await api.post(USERS, json=body, headers=admin.headers)
    assert (await problem(response))["code"] == "conflict"
    listed = await (await api.get(f"{USERS}?q=alice", headers=admin.headers)).json()
    assert [u["role"] for u in listed["items"]] == ["user"]


async def test_bad_create_bodies_are_422(api, admin):
    for body in (
        {"email": "not-an-email", "password": PASSWORD, "role": "user"},
        {"email": "a@example.com", "password": "short", "role": "user"},
        {"email": "a@example.com", "password": PASSWORD, "role": "superuser"},
        {"email": "a@example.com", "password": "1234567890", "role": "user"},
    ):
        response = await api.post(USERS, json=body, headers=admin.headers)
        assert response.status == 422, body


async def test_disabling_a_user_ends_their_sessions_at_once(api, admin, alice):
    response = await api.patch(f"{USERS}/{alice.id}", json={"disabled": True}, headers=admin.headers)
    assert response.status == 200 and (await response.json())["disabled"] is True
    assert (await api.get(f"{USERS}/me", headers=alice.headers)).status == 401
    assert (await api.post("/api/v1/auth/refresh", json={"refresh_token": alice.refresh_token})).status == 401


async def test_a_role_change_applies_at_once(api, admin, alice):
    await api.patch(f"{USERS}/{alice.id}", json={"role": "admin"}, headers=admin.headers)
    assert (await api.get(f"{USERS}/me", headers=alice.headers)).status == 401  # old token said "user"
    promoted = await login(api, alice.email)
    assert (await api.get(USERS, headers=promoted.headers)).status == 200


async def test_the_last_admin_cannot_be_demoted_disabled_or_deleted(api, admin):
    for change in ({"role": "user"}, {"disabled": True}):
        response = await api.patch(f"{USERS}/{admin.id}", json=change, headers=admin.headers)
        assert (await problem(response))["code"] == "conflict"
    response = await api.delete(f"{USERS}/{admin.id}", headers=admin.headers)
    assert (await problem(response))["code"] == "conflict"
    assert (await api.get(f"{USERS}/me", headers=admin.headers)).status == 200


async def test_with_two_admins_one_may_step_down(api, admin):
    other = await signed_up(api, "admin2@example.com", "admin")
    response = await api.patch(f"{USERS}/{admin.id}", json={"role": "user"}, headers=other.headers)
    assert response.status == 200


async def test_delete_user_then_404(api, admin, alice):
    assert (await api.delete(f"{USERS}/{alice.id}", headers=admin.headers)).status == 204
    assert (await api.get(f"{USERS}/{alice.id}", headers=admin.headers)).status == 404
    assert (await api.delete(f"{USERS}/{alice.id}", headers=admin.headers)).status == 404
    assert (await api.get(f"{USERS}/me", headers=alice.headers)).status == 401


async def test_audit_records_who_did_what_from_where(api, admin, alice):
    await api.post("/api/v1/auth/login", json={"email": alice.email, "password": "wrong password!"})
    await api.patch(f"{USERS}/{alice.id}", json={"role": "admin"}, headers=admin.headers)
    await api.post("/api/v1/auth/api-keys", json={"name": "ci", "scopes": ["read"]}, headers=admin.headers)
    page = await (await api.get("/api/v1/audit?limit=200", headers=admin.headers)).json()
    events = [(e["event"], e["actor_id"], e["target_id"]) for e in page["items"]]
    assert ("login.failed", None, alice.id) in events
    assert ("login.succeeded", alice.id, alice.id) in events
    assert ("user.role_changed", admin.id, alice.id) in events
    assert ("api_key.created", admin.id, admin.id) in events
    assert all(e["ip"] for e in page["items"] if e["event"].startswith("login"))
    only = await (await api.get("/api/v1/audit?event=user.role_changed", headers=admin.headers)).json()
    assert [e["detail"] for e in only["items"]] == [{"from": "user", "to": "admin"}]
    mine = await (await api.get(f"/api/v1/audit?user_id={alice.id}&limit=1", headers=admin.headers)).json()
    assert len(mine["items"]) == 1 and mine["next_cursor"]
    for since in ("yesterday", "1795635714"):
        bad = await api.get(f"/api/v1/audit?since={since}", headers=admin.headers)
        assert bad.status == 422
    recent = await api.get("/api/v1/audit?since=2026-01-01T00:00:00Z", headers=admin.headers)
    assert recent.status == 200
    carol = await signed_up(api, "carol@example.com")
    assert (await api.get("/api/v1/audit", headers=carol.headers)).status == 403
