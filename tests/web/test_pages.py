"""The web view's pages for the day's work, through the real app: the dashboard's counts and recent
events, roles, API keys, sessions, collections. Destructive actions ask first; bad input gets a clear
error and changes nothing."""

from __future__ import annotations

import re

import pytest

from daemon.context import DB
from tests.helpers import login
from tests.web.conftest import Tab

ADMIN, ALICE = "admin@example.com", "alice@example.com"


async def _user(client, email: str) -> dict:
    row = await client.app[DB].fetch_one("SELECT id, role, disabled FROM users WHERE email = ?", email)
    return {"id": row["id"], "role": row["role"], "disabled": bool(row["disabled"])}


def _text(html: str) -> str:
    """What a person reads: the page without its tags."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


async def _logged_in(web, email: str, page: str) -> Tab:
    tab = Tab(web)
    await tab.log_in(email)
    assert (await tab.get(page)).status == 200, tab.html
    return tab


# --- the dashboard --------------------------------------------------------------------------------------


async def test_the_dashboard_shows_counts_and_the_recent_events_before_anything_new_happens(web):
    await login(web, ALICE)  # something for alice's history
    admin = await _logged_in(web, ADMIN, "/ui/")
    text = _text(admin.html)
    assert re.search(r"\b2 Users\b", text) and re.search(r"\b0 Collections\b", text)
    assert re.search(r"\b1 Sessions\b", text)
    feed = admin.html.split('id="feed"', 1)[1]
    assert 'data-event="audit.recorded"' in feed and "login.succeeded" in feed
    assert "Nothing has happened yet" not in feed
    # One time format, the same on every page: 2026-12-04 15:03:12 UTC.
    times = re.findall(r"<time[^>]*>([^<]*)</time>", feed)
    assert times and all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", t) for t in times)

    alice = await _logged_in(web, ALICE, "/ui/")
    feed = alice.html.split('id="feed"', 1)[1]
    assert 'data-event="session.created"' in feed  # her own logins
    assert "audit.recorded" not in feed and "Users</a>" not in alice.html  # admins' things stay theirs
    assert 'data-live-topics="me"' in alice.html


# --- users: roles, confirmations, the search kept -------------------------------------------------------


async def test_a_role_change_asks_first_then_applies_and_keeps_the_search(web):
    alice = await _user(web, ALICE)
    tab = await _logged_in(web, ADMIN, "/ui/users?q=alice")
    asked = await tab.post(f"/ui/users/{alice['id']}/role", {"role": "admin", "q": "alice", "cursor": ""})
    assert asked.status == 200 and "Make alice@example.com an admin?" in _text(tab.html)
    assert (await _user(web, ALICE))["role"] == "user"  # asking changed nothing
    done = await tab.post(f"/ui/users/{alice['id']}/role", {"role": "admin", "q": "alice", "cursor": "", "confirmed": "yes"})
    assert (done.status, done.headers["Location"]) == (303, "/ui/users?q=alice")
    assert (await _user(web, ALICE))["role"] == "admin"


async def test_disabling_asks_first_and_comes_back_to_the_same_search(web):
    alice = await _user(web, ALICE)
    tab = await _logged_in(web, ADMIN, "/ui/users?q=ali")
    assert (await tab.post(f"/ui/users/{alice['id']}/status", {"action": "disable", "q": "ali"})).status == 200
    assert "Disable alice@example.com?" in _text(tab.html) and not (await _user(web, ALICE))["disabled"]
    # The question page's own form, as the browser sends it back.
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', tab.html))
    done = await tab.post(f"/ui/users/{alice['id']}/status", fields, csrf=None)
    assert (done.status, done.headers["Location"]) == (303, "/ui/users?q=ali")
    assert (await _user(web, ALICE))["disabled"]
    enabled = await (await _logged_in(web, ADMIN, "/ui/users?q=ali")).post(
        f"/ui/users/{alice['id']}/status", {"action": "enable", "q": "ali"})
    assert enabled.status == 303 and not (await _user(web, ALICE))["disabled"]  # enabling needs no question


@pytest.mark.parametrize("fields, status, says", [
    ({"role": "owner", "confirmed": "yes"}, 422, "the role must be admin or user"),
    ({"confirmed": "yes"}, 422, "the role must be admin or user"),
])
async def test_a_bad_role_is_a_clear_error_and_changes_nothing(web, fields, status, says):
    alice = await _user(web, ALICE)
    tab = await _logged_in(web, ADMIN, "/ui/users")
    assert (await tab.post(f"/ui/users/{alice['id']}/role", fields)).status == status
    assert says in tab.html
    assert (await _user(web, ALICE))["role"] == "user"


async def test_the_last_admin_cannot_demote_themselves_from_the_page(web):
    admin = await _user(web, ADMIN)
    tab = await _logged_in(web, ADMIN, "/ui/users")
    response = await tab.post(f"/ui/users/{admin['id']}/role", {"role": "user", "confirmed": "yes"})
    assert response.status == 409 and "last active admin" in tab.html
    assert (await _user(web, ADMIN))["role"] == "admin"


async def test_a_form_without_its_csrf_token_changes_nothing(web):
    alice = await _user(web, ALICE)
    tab = await _logged_in(web, ADMIN, "/ui/users")
    for path, fields in [(f"/ui/users/{alice['id']}/role", {"role": "admin", "confirmed": "yes"}),
                         (f"/ui/users/{alice['id']}/status", {"action": "disable", "confirmed": "yes"}),
                         ("/ui/keys", {"name": "k", "scope_read": "on"}),
                         ("/ui/collections", {"name": "c", "dimension": "2", "metric": "dot"})]:
        response = await tab.post(path, fields, csrf=None)
        assert response.status == 403 and "CSRF token is missing" in tab.html, path
        await tab.get("/ui/users")
    assert await _user(web, ALICE) == {**alice}
    admin = await login(web, ADMIN)
    assert (await (await web.get("/api/v1/auth/api-keys", headers=admin.headers)).json())["items"] == []
    assert (await (await web.get("/api/v1/collections", headers=admin.headers)).json())["items"] == []


# --- API keys -------------------------------------------------------------------------------------------


async def test_a_key_is_shown_once_works_and_revoking_it_asks_first(web):
    tab = await _logged_in(web, ALICE, "/ui/keys")
    created = await tab.post("/ui/keys", {"name": "deploy", "scope_read": "on", "expires": "2999-01-31"})
    assert created.status == 201
    secret = re.search(r'id="secret">(bst_[^<]+)<', tab.html)[1]
    assert "shown this once" in tab.html
    me = await web.get("/api/v1/users/me", headers={"Authorization": f"Bearer {secret}"})
    assert me.status == 200
    listed = await tab.get("/ui/keys")
    assert listed.status == 200 and secret not in tab.html and "deploy" in tab.html
    assert "2999-01-31 00:00:00 UTC" in tab.html
    key_id = re.search(r'data-key-id="([^"]+)"', tab.html)[1]

    asked = await tab.post(f"/ui/keys/{key_id}/revoke", {"name": "deploy"})
    assert asked.status == 200 and f"Revoke the key deploy ({key_id})?" in _text(tab.html)
    assert (await web.get("/api/v1/users/me", headers={"Authorization": f"Bearer {secret}"})).status == 200
    done = await tab.post(f"/ui/keys/{key_id}/revoke", {"name": "deploy", "confirmed": "yes"})
    assert (done.status, done.headers["Location"]) == (303, "/ui/keys")
    assert (await web.get("/api/v1/users/me", headers={"Authorization": f"Bearer {secret}"})).status == 401


@pytest.mark.parametrize("fields, status, named", [
    ({"name": "no scopes"}, 422, "scopes"),
    ({"name": "", "scope_read": "on"}, 422, "name"),
    ({"name": "bad date", "scope_read": "on", "expires": "31/01/2999"}, 422, "expires"),
    ({"name": "past", "scope_read": "on", "expires": "2000-01-01"}, 422, "expires_at is in the past"),
    ({"name": "too much", "scope_admin": "on"}, 403, "a key cannot have scopes its creator lacks"),
])
async def test_a_bad_key_form_is_shown_back_with_the_problem_and_creates_nothing(web, fields, status, named):
    tab = await _logged_in(web, ALICE, "/ui/keys")
    assert (await tab.post("/ui/keys", fields)).status == status
    assert 'id="problem"' in tab.html and named in tab.html
    assert fields["name"] in tab.html  # what was typed is kept
    alice = await login(web, ALICE)
    assert (await (await web.get("/api/v1/auth/api-keys", headers=alice.headers)).json())["items"] == []


async def test_another_users_key_cannot_be_revoked_from_the_page(web):
    admin = await login(web, ADMIN)
    key = await (await web.post("/api/v1/auth/api-keys", json={"name": "a", "scopes": ["read"]}, headers=admin.headers)).json()
    tab = await _logged_in(web, ALICE, "/ui/keys")
    response = await tab.post(f"/ui/keys/{key['id']}/revoke", {"confirmed": "yes"})
    assert response.status == 404 and "no such API key" in tab.html
    assert (await web.get("/api/v1/users/me", headers={"Authorization": f"Bearer {key['key']}"})).status == 200


# --- sessions -------------------------------------------------------------------------------------------


async def test_sessions_are_listed_and_one_ended_from_the_page_stops_working(web):
    console = await login(web, ALICE, **{"User-Agent": "bastion-console/1"})
    tab = await _logged_in(web, ALICE, "/ui/sessions")
    assert "bastion-console/1" in tab.html and "this browser" in tab.html
    other = [s for s in re.findall(r'data-session-id="([^"]+)"', tab.html)]
    assert len(other) == 2
    sessions = (await (await web.get("/api/v1/auth/sessions", headers=console.headers)).json())["items"]
    [console_id] = [s["id"] for s in sessions if s["current"]]
    asked = await tab.post(f"/ui/sessions/{console_id}/revoke", {"where": "127.0.0.1"})
    assert asked.status == 200 and f"End the session {console_id}" in _text(tab.html)
    assert (await web.get("/api/v1/users/me", headers=console.headers)).status == 200
    done = await tab.post(f"/ui/sessions/{console_id}/revoke", {"confirmed": "yes"})
    assert (done.status, done.headers["Location"]) == (303, "/ui/sessions")
    assert (await web.get("/api/v1/users/me", headers=console.headers)).status == 401
    await tab.get("/ui/sessions")
    assert console_id not in tab.html

    # Ending this browser's own session logs it out.
    [mine] = re.findall(r'data-session-id="([^"]+)"', tab.html)
    done = await tab.post(f"/ui/sessions/{mine}/revoke", {"confirmed": "yes"})
    assert (done.status, done.headers["Location"]) == (303, "/ui/login")
    assert (await tab.get("/ui/")).headers["Location"] == "/ui/login"


# --- collections ----------------------------------------------------------------------------------------


async def test_a_collection_is_created_and_deleted_from_the_pages_and_deleting_asks_first(web):
    tab = await _logged_in(web, ALICE, "/ui/collections")
    created = await tab.post("/ui/collections", {"name": "notes", "dimension": "3", "metric": "dot"})
    assert (created.status, created.headers["Location"]) == (303, "/ui/collections/notes")
    await tab.get("/ui/collections/notes")
    assert "0 vectors of dimension 3, dot metric, bf16 graph" in tab.html  # no precision sent: the API's default
    small = await tab.post("/ui/collections", {"name": "small", "dimension": "3", "metric": "dot", "precision": "i8"})
    assert (small.status, small.headers["Location"]) == (303, "/ui/collections/small")
    await tab.get("/ui/collections")
    assert "<td data-label=\"Precision\">i8</td>" in tab.html
    asked = await tab.post("/ui/collections/notes/delete", {})
    assert asked.status == 200 and "Delete the collection notes and its 0 vectors?" in _text(tab.html)
    assert (await tab.get("/ui/collections/notes")).status == 200  # still there
    done = await tab.post("/ui/collections/notes/delete", {"confirmed": "yes"})
    assert (done.status, done.headers["Location"]) == (303, "/ui/collections")
    assert (await tab.get("/ui/collections/notes")).status == 404


@pytest.mark.parametrize("fields, status, named", [
    ({"name": "Bad Name", "dimension": "3", "metric": "dot"}, 422, "name"),
    ({"name": "ok", "dimension": "many", "metric": "dot"}, 422, "dimension"),
    ({"name": "ok", "dimension": "0", "metric": "dot"}, 422, "dimension"),
    ({"name": "ok", "dimension": "3", "metric": "manhattan"}, 422, "metric"),
    ({"name": "ok", "dimension": "3", "metric": "dot", "precision": "i4"}, 422, "precision"),
    ({"name": "taken", "dimension": "3", "metric": "dot"}, 409, "exists"),
])
async def test_a_bad_collection_form_is_shown_back_and_creates_nothing(web, fields, status, named):
    admin = await login(web, ADMIN)
    await web.post("/api/v1/collections", json={"name": "taken", "dimension": 2, "metric": "dot"}, headers=admin.headers)
    tab = await _logged_in(web, ALICE, "/ui/collections")
    assert (await tab.post("/ui/collections", fields)).status == status
    assert 'id="problem"' in tab.html and named in tab.html
    assert f'value="{fields["name"]}"' in tab.html  # what was typed is kept
    alice = await login(web, ALICE)
    assert (await (await web.get("/api/v1/collections", headers=alice.headers)).json())["items"] == []


async def test_another_users_collection_cannot_be_deleted_from_the_page(web):
    admin = await login(web, ADMIN)
    await web.post("/api/v1/collections", json={"name": "theirs", "dimension": 2, "metric": "dot"}, headers=admin.headers)
    tab = await _logged_in(web, ALICE, "/ui/collections")
    assert (await tab.post("/ui/collections/theirs/delete", {"confirmed": "yes"})).status == 404
    assert (await web.get("/api/v1/collections/theirs", headers=admin.headers)).status == 200


# --- an address that is no page -------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/ui/nonexistent", "/ui/users/usr_x/nonsense", "/ui/collections/docs/x/y"])
async def test_an_address_that_is_no_page_gets_the_sites_404_page_not_json(web, path):
    admin = await _logged_in(web, ADMIN, "/ui/")
    response = await admin.get(path)
    assert response.status == 404 and response.content_type == "text/html"
    assert "there is no such page here" in _text(admin.html)
    assert "admin@example.com" in admin.html  # the menu and who is logged in, as on every page
    # The pages and files around it are still what they were.
    assert (await admin.get("/ui/users")).status == 200 and 'id="users"' in admin.html
    assert (await admin.get("/ui/static/app.css")).status == 200
    assert (await Tab(web).get("/ui/login")).status == 200


async def test_a_form_with_a_nul_character_is_refused_and_nothing_is_made(web_both):
    """PostgreSQL's text refuses NUL: a form carrying one is a 422 page naming the field, not a 500."""
    tab = await _logged_in(web_both, "alice@example.com", "/ui/keys")
    refused = await tab.post("/ui/keys", {"name": "k\x00", "scope_read": "on"})
    assert refused.status == 422 and "NUL" in tab.html
    keys = await web_both.get("/api/v1/auth/api-keys", headers=(await login(web_both, "alice@example.com")).headers)
    assert (await keys.json())["items"] == []
