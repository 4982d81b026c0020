"""The web view through the real app and its pipeline: the session cookie, CSRF, the CSP, the pages.

The browser itself (Chromium driving a real bastiond) is in test_browser.py.
"""

from __future__ import annotations

import re
import time

import jwt
import pytest
from aiohttp import web

from daemon.api.webview import session_principal
from daemon.app import create_app
from daemon.context import DB, SECRETS, USERS
from daemon.services.tokens import load_keys
from daemon.services.web_sessions import row_id, seal_tokens, unseal_tokens
from daemon.settings import Settings
from tests.helpers import PASSWORD, login
from tests.web.conftest import COOKIE, Tab

ADMIN, ALICE = "admin@example.com", "alice@example.com"


async def _user(client, email: str) -> dict:
    found = await client.app[DB].fetch_one("SELECT id, disabled FROM users WHERE email = ?", email)
    return {"id": found["id"], "disabled": bool(found["disabled"])}


def _set_cookie(response) -> str:
    headers = response.headers.getall("Set-Cookie")
    assert len(headers) == 1, headers
    return headers[0]


# --- the session cookie ---------------------------------------------------------------------------------


async def test_login_replaces_the_form_cookie_with_an_httponly_secure_strict_session_cookie(web_both):
    tab = Tab(web_both)
    form = await tab.get("/ui/login")
    before = tab.secret
    for cookie in (_set_cookie(form), _set_cookie(await tab.post("/ui/login", {"email": ADMIN, "password": PASSWORD}))):
        assert re.search(r"; HttpOnly(;|$)", cookie) and re.search(r"; Secure(;|$)", cookie)
        assert "SameSite=Strict" in cookie and "Path=/;" in cookie + ";"
        assert cookie.startswith("__Host-") and "Domain=" not in cookie  # only this host may set it
    assert tab.secret != before, "the secret the login form was served with must not become the session"
    page = await tab.get("/ui/")
    assert page.status == 200 and ADMIN in tab.html


async def test_the_browser_never_sees_a_token_and_the_database_holds_none_in_clear(web_both):
    tab = Tab(web_both)
    response = await tab.log_in(ADMIN)
    pages = [response.headers.get("Set-Cookie", "")]
    for path in ("/ui/", "/ui/users", "/ui/collections"):
        await tab.get(path)
        pages.append(tab.html)
    row = await web_both.app[DB].fetch_one("SELECT id, sealed_tokens FROM web_sessions")
    tokens = unseal_tokens(tab.secret, bytes(row["sealed_tokens"]))
    for text in pages:
        assert tokens["access"] not in text and tokens["refresh"] not in text and "eyJ" not in text
    assert row["id"] != tab.secret and tokens["refresh"].encode() not in bytes(row["sealed_tokens"])


@pytest.mark.parametrize("cookie", [None, "not-a-session", "A" * 43, "x" * 5000])
async def test_pages_send_a_browser_without_a_live_session_to_the_login_form(web, cookie):
    tab = Tab(web, secret=cookie)
    for path in ("/ui/", "/ui/users", "/ui/collections", "/ui/collections/any"):
        response = await tab.get(path)
        assert response.status == 303 and response.headers["Location"] == "/ui/login"


# 600 s ago is past any clock-skew allowance; 30 s ago is still accepted by verification, but a
# WebSocket opened with it would close at once, so the session refreshes it too.
@pytest.mark.parametrize("expired_s_ago", [600, 30])
async def test_an_expired_access_token_is_refreshed_on_the_server(web_both, expired_s_ago):
    tab = Tab(web_both)
    await tab.log_in(ADMIN)
    db = web_both.app[DB]
    sealed = (await db.fetch_one("SELECT sealed_tokens FROM web_sessions WHERE id = ?", row_id(tab.secret)))["sealed_tokens"]
    tokens = unseal_tokens(tab.secret, bytes(sealed))
    claims = jwt.decode(tokens["access"], options={"verify_signature": False})
    key = (await load_keys(web_both.app[SECRETS]))[-1]
    expired = jwt.encode({**claims, "exp": int(time.time()) - expired_s_ago}, key.private, algorithm="EdDSA", headers={"kid": key.kid})
    await db.execute("UPDATE web_sessions SET sealed_tokens = ? WHERE id = ?",
                     seal_tokens(tab.secret, expired, tokens["refresh"]), row_id(tab.secret))

    assert (await tab.get("/ui/")).status == 200
    sealed = (await db.fetch_one("SELECT sealed_tokens FROM web_sessions WHERE id = ?", row_id(tab.secret)))["sealed_tokens"]
    now_held = unseal_tokens(tab.secret, bytes(sealed))
    assert now_held["access"] != expired and now_held["refresh"] != tokens["refresh"]


async def test_logging_out_ends_the_auth_session_and_the_old_cookie_stops_working(web_both):
    tab = Tab(web_both)
    await tab.log_in(ADMIN)
    old = tab.secret
    await tab.get("/ui/")
    response = await tab.post("/ui/logout", {})
    assert response.status == 303 and response.headers["Location"] == "/ui/login"
    assert tab.secret != old
    assert (await Tab(web_both, secret=old).get("/ui/")).status == 303
    sessions = await web_both.app[DB].fetch_all("SELECT revoked_at FROM sessions")
    assert sessions and all(s["revoked_at"] for s in sessions)
    assert await web_both.app[DB].fetch_all("SELECT id FROM web_sessions") == []


async def test_disabling_a_user_ends_their_web_session(web):
    alice, admin = Tab(web), Tab(web)
    await alice.log_in(ALICE)
    await admin.log_in(ADMIN)
    target = await _user(web, ALICE)
    await admin.get("/ui/users")
    assert (await admin.post(f"/ui/users/{target['id']}/status", {"action": "disable", "confirmed": "yes"})).status == 303
    assert (await alice.get("/ui/")).status == 303
    await admin.get("/ui/users")
    assert (await admin.post(f"/ui/users/{target['id']}/status", {"action": "enable"})).status == 303
    assert not (await _user(web, ALICE))["disabled"]


# --- logins go through the auth service and its limits --------------------------------------------------


async def test_a_wrong_password_shows_the_login_form_again_with_a_clear_message(web):
    tab = Tab(web)
    await tab.get("/ui/login")
    response = await tab.post("/ui/login", {"email": ALICE, "password": "not the password"})
    assert response.status == 401 and "the email or the password is wrong" in tab.html
    assert 'value="alice@example.com"' in tab.html and "not the password" not in tab.html
    response = await tab.post("/ui/login", {"email": "", "password": ""})
    assert response.status == 422 and "enter your email and your password" in tab.html


async def test_failed_api_logins_lock_the_account_for_the_web_view_too(web):
    for _ in range(10):
        response = await web.post("/api/v1/auth/login", json={"email": ALICE, "password": "wrong password!"})
        assert response.status == 401
    tab = Tab(web)
    await tab.get("/ui/login")
    response = await tab.post("/ui/login", {"email": ALICE, "password": PASSWORD})
    assert response.status == 429 and "Retry-After" in response.headers
    assert "too many failed logins" in tab.html


async def test_the_login_form_counts_against_the_same_address_limit_as_the_api(aiohttp_client, data_dir):
    settings = Settings.from_env({}, data_dir=data_dir, auth_rate_limit_per_minute=2)
    client = await aiohttp_client(create_app(settings))
    tab = Tab(client)
    await tab.get("/ui/login")
    assert (await client.post("/api/v1/auth/login", json={"email": ALICE, "password": "x"})).status == 401
    assert (await tab.post("/ui/login", {"email": ALICE, "password": "y"})).status == 401
    response = await tab.post("/ui/login", {"email": ALICE, "password": "z"})
    assert response.status == 429 and "Retry-After" in response.headers


# --- CSRF -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("forgery", ["no token", "another session's token", "a guessed token", "another site's Origin",
                                     "a cross-site fetch", "no cookie"])
async def test_a_forged_form_post_is_refused_and_changes_nothing(web, forgery):
    admin, other = Tab(web), Tab(web)
    await admin.log_in(ADMIN)
    await other.log_in(ADMIN)
    await other.get("/ui/users")
    await admin.get("/ui/users")
    target = await _user(web, ALICE)
    own_token = admin.csrf
    csrf: str | None = "page"
    headers = {}
    tab = admin
    if forgery == "no token":
        csrf = None
    elif forgery == "another session's token":
        csrf = other.csrf
    elif forgery == "a guessed token":
        csrf = "0" * 64
    elif forgery == "another site's Origin":
        headers = {"Origin": "http://evil.example.com"}
    elif forgery == "a cross-site fetch":
        headers = {"Sec-Fetch-Site": "cross-site", "Origin": "null"}
    else:
        tab = Tab(web, html=admin.html)  # the right token, posted by a browser that sends no cookie
    response = await tab.post(f"/ui/users/{target['id']}/status", {"action": "disable", "confirmed": "yes"}, csrf=csrf, headers=headers)
    assert response.status == 403 and "text/html" in response.headers["Content-Type"]
    assert not (await _user(web, ALICE))["disabled"]
    # The same form with its own token goes through: the refusal was about the forgery alone.
    response = await admin.post(f"/ui/users/{target['id']}/status", {"action": "disable", "confirmed": "yes"}, csrf=own_token)
    assert response.status == 303 and (await _user(web, ALICE))["disabled"]


async def test_the_pages_own_forms_work_though_no_referrer_makes_the_browser_send_origin_null(web):
    tab = Tab(web, origin="null")
    await tab.get("/ui/login")
    response = await tab.post("/ui/login", {"email": ALICE, "password": PASSWORD},
                              headers={"Sec-Fetch-Site": "same-origin"})
    assert response.status == 303


async def test_the_login_form_needs_its_csrf_token_too(web):
    tab = Tab(web)
    await tab.get("/ui/login")
    response = await tab.post("/ui/login", {"email": ALICE, "password": PASSWORD}, csrf=None)
    assert response.status == 403
    assert (await Tab(web).post("/ui/login", {"email": ALICE, "password": PASSWORD}, csrf="0" * 64)).status == 403


async def test_a_bad_action_is_a_clear_422_not_a_500(web):
    tab = Tab(web)
    await tab.log_in(ADMIN)
    await tab.get("/ui/users")
    target = await _user(web, ALICE)
    response = await tab.post(f"/ui/users/{target['id']}/status", {"action": "explode"})
    assert response.status == 422 and "disable or enable" in tab.html
    await tab.get("/ui/users")
    response = await tab.post("/ui/users/usr_nobody/status", {"action": "disable", "confirmed": "yes"})
    assert response.status == 404


# --- headers and markup ---------------------------------------------------------------------------------

_SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script>", re.S | re.I)
_HANDLER_ATTR = re.compile(r"<[^>]+\son[a-z]+\s*=", re.I)


async def test_every_page_has_the_csp_allows_no_inline_script_and_is_not_cached(web):
    tab = Tab(web)
    await tab.get("/ui/login")
    pages = [("/ui/login", tab.html, (await tab.get("/ui/login")).headers)]
    await tab.log_in(ADMIN)
    for path in ("/ui/", "/ui/users", "/ui/collections", "/ui/collections/missing", "/ui/keys", "/ui/sessions"):
        response = await tab.get(path)
        pages.append((path, tab.html, response.headers))
    for path, html, headers in pages:
        csp = headers["Content-Security-Policy"]
        script_src = re.search(r"script-src ([^;]*)", csp)[1]
        assert script_src == "'self'", path
        assert "script-src-attr 'none'" in csp
        assert headers["Cache-Control"] == "no-store", path
        for attributes, body in _SCRIPT.findall(html):
            assert 'src="/ui/static/' in attributes and not body.strip(), path
        assert not _HANDLER_ATTR.search(html), path
    assert any(_SCRIPT.search(html) for _, html, _ in pages), "the dashboard loads its script from a file"


async def test_static_files_are_served_by_the_daemon_with_their_types(web):
    script = await web.get("/ui/static/live.js")
    assert script.status == 200 and "javascript" in script.headers["Content-Type"]
    assert script.headers["X-Content-Type-Options"] == "nosniff"
    assert (await web.get("/ui/static/app.css")).headers["Content-Type"].startswith("text/css")
    assert (await web.get("/ui/static/../templates/base.html")).status in (403, 404)
    icon = await web.get("/favicon.ico")  # browsers ask for it at the root
    assert icon.status == 200 and (await icon.read())[:4] == b"\x00\x00\x01\x00"  # an ICO file


async def test_a_user_sees_no_users_page_and_no_link_to_it(web):
    tab = Tab(web)
    await tab.log_in(ALICE)
    await tab.get("/ui/")
    assert 'href="/ui/users"' not in tab.html
    response = await tab.get("/ui/users")
    assert response.status == 403 and "administrators only" in tab.html
    await tab.get("/ui/")
    target = await _user(web, ADMIN)
    assert (await tab.post(f"/ui/users/{target['id']}/status", {"action": "disable", "confirmed": "yes"})).status == 403
    assert not (await _user(web, ADMIN))["disabled"]


# --- collections and the search form --------------------------------------------------------------------


@pytest.fixture
async def movies(web) -> str:
    admin = await login(web, ADMIN)
    response = await web.post("/api/v1/collections", json={"name": "movies", "dimension": 3, "metric": "cosine"},
                              headers=admin.headers)
    assert response.status == 201, await response.text()
    vectors = [{"id": "up", "values": [0, 1, 0], "metadata": {"genre": "drama"}, "text": "Up in the air"},
               {"id": "right", "values": [1, 0, 0], "metadata": {"genre": "comedy"}, "text": "The right stuff"},
               {"id": "mostly-right", "values": [0.9, 0.1, 0], "metadata": {"genre": "drama"}}]
    response = await web.post("/api/v1/collections/movies/upsert", json={"vectors": vectors}, headers=admin.headers)
    assert response.status == 200, await response.text()
    return "movies"


def _match_ids(html: str) -> list[str]:
    table = html.split('id="matches"', 1)[1]
    return re.findall(r"<tr><td[^>]*>([^<]+)</td>", table)


async def test_the_search_form_queries_the_vector_service(web, movies):
    tab = Tab(web)
    await tab.log_in(ADMIN)
    await tab.get("/ui/collections")
    assert 'href="/ui/collections/movies"' in tab.html
    await tab.get("/ui/collections/movies")
    response = await tab.post("/ui/collections/movies/query", {"vector": "1, 0, 0", "top_k": "2", "include_metadata": "on"})
    assert response.status == 200
    assert _match_ids(tab.html) == ["right", "mostly-right"]
    response = await tab.post("/ui/collections/movies/query",
                              {"vector": "1 0 0", "top_k": "5", "filter": '{"genre": "drama"}'})
    assert _match_ids(tab.html) == ["mostly-right", "up"]


async def test_the_search_form_finds_text_by_keyword_and_hybrid(web, movies):
    tab = Tab(web)
    await tab.log_in(ADMIN)
    await tab.get("/ui/collections/movies")
    response = await tab.post("/ui/collections/movies/query", {"text": "RIGHT stuff", "top_k": "5"})
    assert response.status == 200 and _match_ids(tab.html) == ["right"]
    assert "<td data-label=\"Text\">The right stuff</td>" in tab.html
    response = await tab.post("/ui/collections/movies/query", {"text": "air", "vector": "1 0 0", "top_k": "5"})
    assert _match_ids(tab.html)[:2] == ["up", "right"]  # "up" is the only keyword match: fused first
    response = await tab.post("/ui/collections/movies/query", {"text": "air", "mode": "vector"})
    assert response.status == 422 and "mode" in tab.html  # no embedding model here


@pytest.mark.parametrize("fields, named", [
    ({"vector": "1, zero, 0"}, "vector"),
    ({"vector": "1, 0"}, "vector"),
    ({"vector": "1, 0, 0", "filter": "{not json"}, "filter"),
    ({"vector": "1, 0, 0", "filter": '{"genre": {"$regex": "d"}}'}, "filter"),
    ({"vector": "1, 0, 0", "top_k": "many"}, "top_k"),
    ({}, "to search by"),
])
async def test_a_bad_search_is_shown_back_with_the_field_named(web, movies, fields, named):
    tab = Tab(web)
    await tab.log_in(ADMIN)
    await tab.get("/ui/collections/movies")
    response = await tab.post("/ui/collections/movies/query", fields)
    assert response.status == 422 and 'id="problem"' in tab.html and named in tab.html
    assert 'id="search"' in tab.html  # the form is still there, to correct


async def test_other_users_collections_are_not_found(web, movies):
    tab = Tab(web)
    await tab.log_in(ALICE)
    assert (await tab.get("/ui/collections/movies")).status == 404
    await tab.get("/ui/collections")
    assert "movies" not in tab.html
    response = await tab.post("/ui/collections/movies/query", {"vector": "1, 0, 0"})
    assert response.status == 404


# --- the hook the WebSocket gateway calls ---------------------------------------------------------------


async def test_session_principal_accepts_only_a_same_origin_handshake(aiohttp_client, settings):
    async def probe(request: web.Request) -> web.Response:
        principal = await session_principal(request)
        return web.json_response({"user_id": principal.user_id if principal else None})

    app = create_app(settings)
    app.router.add_get("/probe", probe)
    client = await aiohttp_client(app)
    alice = await client.app[USERS].create(ALICE, PASSWORD, "user", "", None, "test")
    tab = Tab(client)
    await tab.log_in(ALICE)
    own = str(client.make_url("")).rstrip("/")

    async def who(origin: str | None, secret: str | None) -> str | None:
        headers = {"Cookie": f"{COOKIE}={secret}"} if secret else {}
        if origin:
            headers["Origin"] = origin
        return (await (await client.get("/probe", headers=headers)).json())["user_id"]

    assert await who(own, tab.secret) == alice.id
    assert await who("http://evil.example.com", tab.secret) is None
    assert await who(None, tab.secret) is None
    assert await who(own, None) is None
    assert await who(own, "B" * 43) is None


async def test_the_users_page_finds_by_email_and_refuses_a_forged_cursor_clearly(web):
    tab = Tab(web)
    await tab.log_in(ADMIN)
    assert (await tab.get("/ui/users?q=ALICE")).status == 200
    assert ALICE in tab.html and ADMIN not in tab.html.split('id="users"', 1)[1]
    for path in ("/ui/users?cursor=_w", "/ui/collections?cursor=_w", "/ui/users?q=" + "x" * 201):
        response = await tab.get(path)
        assert response.status == 422 and 'id="problem"' in tab.html, path
