"""The minimal web view at /ui/: server-rendered pages over the same services the API uses.

The security rules of the browser live here, in `page()`, so that no view can forget one:
- the browser session is server-side (services/web_sessions.py); the cookie carries only its secret,
  `HttpOnly; Secure; SameSite=Strict`, and no token ever reaches the browser;
- every POST must come from this origin (when the browser says where it comes from) and carry the CSRF
  token of its own session; anything else is refused with 403 before a view runs;
- scripts load only from /ui/static/ (the CSP is `script-src 'self'`: no inline script).

The pages carry the pipeline's Endpoint metadata, so rate limiting applies as on the API (the login form
counts against the `auth` class, like POST /api/v1/auth/login), but they are kept out of ENDPOINTS:
they are not part of the API that /openapi.json describes.

For the WebSocket gateway, `session_principal(request)` turns the handshake's cookie into a Principal,
so the dashboard's live feed needs no token in the page.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit

import aiohttp_jinja2
import jinja2
from aiohttp import web
from pydantic import ValidationError

from daemon.api.routing import Routes
from daemon.context import AUTH, CLIENT_IP, DB, PRINCIPAL, SETTINGS, USERS, VECTORS, WEB_SESSIONS
from daemon.pipeline.errors import field_errors
from daemon.services.principal import Principal
from daemon.services.vectors import topic as collection_topic
from daemon.services.web_sessions import WebSessions, csrf_matches, csrf_token, new_secret, well_formed
from daemon.stores.sql.web_sessions import WebSessionRows
from shared.errors import ApiError, Code, FieldError
from shared.models.users import UpdateUser, User, UserQuery
from shared.models.vectors import QueryRequest

# __Host-: the browser takes this cookie only from this host, Secure, with Path=/ and no Domain, so a
# sibling subdomain cannot plant a session of its choosing in a visitor's browser.
COOKIE = "__Host-bastion_session"
STATIC_DIR = Path(str(resources.files("daemon.web").joinpath("static")))
PAGE_SIZE = 50
# The login form's fields are bounded before they reach the password hasher.
MAX_EMAIL = 320
MAX_PASSWORD = 1024

pages = Routes(prefix="/ui")
Who = Literal["anyone", "user", "admin"]


@dataclass
class Visit:
    """What `page()` established about the browser before the view runs."""

    secret: str  # the cookie's session secret; a new one for a browser that has none
    fresh: bool  # the secret is new, so the response must set the cookie
    principal: Principal | None
    me: User | None
    form: Mapping[str, str]  # the posted fields, already CSRF-checked (empty for GET)


View = Callable[[web.Request, Visit], Awaitable[web.StreamResponse]]


def set_session_cookie(response: web.StreamResponse, secret: str) -> None:
    # Path=/ so that the WebSocket handshake at /api/v1/ws carries it too. No Max-Age: the server decides
    # when a session ends, and the browser drops the cookie when it closes.
    response.set_cookie(COOKIE, secret, path="/", httponly=True, secure=True, samesite="Strict")


def _see_other(location: str) -> web.Response:
    # Returned, not raised, so that the pipeline adds its headers and a view can set the cookie on it.
    return web.Response(status=303, headers={"Location": location})


def _cross_site(request: web.Request) -> bool:
    """What the browser says about where a request comes from, when it says anything."""
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return True
    origin = request.headers.get("Origin")
    # Under helmet's `Referrer-Policy: no-referrer` a browser sends `Origin: null` with the page's own
    # form posts, so null proves nothing either way; the CSRF token decides.
    return origin is not None and origin != "null" and urlsplit(origin).netloc != request.host


def render(request: web.Request, visit: Visit | None, template: str, context: Mapping[str, Any], status: int = 200) -> web.Response:
    base = {"me": visit.me if visit else None, "csrf": csrf_token(visit.secret) if visit else ""}
    return aiohttp_jinja2.render_template(template, request, {**base, **context}, status=status)


def _error_page(request: web.Request, visit: Visit | None, error: ApiError) -> web.Response:
    response = render(request, visit, "error.html", {"error": error, "title": error.title}, status=error.status)
    response.headers.update(error.headers)
    return response


def page(method: str, path: str, *, who: Who = "user", rate: str = "api") -> Callable[[View], View]:
    def register(view: View) -> View:
        @functools.wraps(view)
        async def handler(request: web.Request) -> web.StreamResponse:
            secret = request.cookies.get(COOKIE)
            form: Mapping[str, str] = {}
            if method == "POST":
                if _cross_site(request):
                    return _error_page(request, None, ApiError(Code.FORBIDDEN, "this form was sent from another site"))
                posted = await request.post()
                form = {name: value for name, value in posted.items() if isinstance(value, str)}
                if not csrf_matches(secret, form.get("csrf")):
                    return _error_page(request, None, ApiError(
                        Code.FORBIDDEN, "the form's CSRF token is missing or is not this session's; reload the page"))
            principal = await request.app[WEB_SESSIONS].principal(secret, request[CLIENT_IP])
            request[PRINCIPAL] = principal  # the access log records who it was
            fresh = not well_formed(secret)
            me = await request.app[USERS].get(principal, principal.user_id) if principal else None
            visit = Visit(new_secret() if fresh else secret, fresh, principal, me, form)
            if principal is None and who != "anyone":
                response: web.StreamResponse = _see_other("/ui/login")
            elif who == "admin" and not principal.is_admin:
                response = _error_page(request, visit, ApiError(Code.FORBIDDEN, "administrators only"))
            else:
                try:
                    response = await view(request, visit)
                except ApiError as exc:
                    response = _error_page(request, visit, exc)
                except ValidationError as exc:
                    response = _error_page(request, visit, ApiError(
                        Code.VALIDATION_FAILED, "the request is not valid", errors=field_errors(exc)))
            if visit.fresh and COOKIE not in response.cookies:
                set_session_cookie(response, visit.secret)
            # Pages show who is logged in and what they may see: no cache may keep them.
            response.headers["Cache-Control"] = "no-store"
            return response

        pages.route(method, path, summary=(view.__doc__ or path).strip(), tag="web", access="public", rate=rate)(handler)
        return handler

    return register


# --- the hook for the WebSocket gateway ----------------------------------------------------------------


def from_own_pages(request: web.Request) -> bool:
    """A WebSocket handshake sent by this daemon's own pages (the gateway lets these through).

    A handshake's Origin is never nulled by the referrer policy, so here it must be present and ours."""
    origin = request.headers.get("Origin")
    return origin is not None and not _cross_site(request) and urlsplit(origin).netloc == request.host


async def session_principal(request: web.Request) -> Principal | None:
    """The Principal of the web-view session whose cookie this WebSocket handshake carries, or None.

    Only for a same-origin handshake: SameSite=Strict already keeps other sites' pages from sending the
    cookie, and checking Origin as well keeps a cross-site page from riding a browser's session
    (cross-site WebSocket hijacking) even where a browser would send it."""
    if not from_own_pages(request):
        return None
    return await request.app[WEB_SESSIONS].principal(request.cookies.get(COOKIE), request[CLIENT_IP])


# --- login and logout -----------------------------------------------------------------------------------


@page("GET", "", who="anyone")
async def root(request: web.Request, visit: Visit) -> web.StreamResponse:
    """The web view"""
    return _see_other("/ui/")


@page("GET", "/login", who="anyone")
async def login_form(request: web.Request, visit: Visit) -> web.StreamResponse:
    """The login form"""
    if visit.principal is not None:
        return _see_other("/ui/")
    return render(request, visit, "login.html", {"title": "Log in", "email": ""})


@page("POST", "/login", who="anyone", rate="auth")
async def login(request: web.Request, visit: Visit) -> web.StreamResponse:
    """Log in"""
    email = visit.form.get("email", "").strip()
    password = visit.form.get("password", "")
    problem = None
    if not email or not password:
        problem = ApiError(Code.VALIDATION_FAILED, "enter your email and your password")
    elif len(email) > MAX_EMAIL or len(password) > MAX_PASSWORD:
        problem = ApiError(Code.INVALID_CREDENTIALS, "the email or the password is wrong")
    else:
        try:
            secret = await request.app[WEB_SESSIONS].login(
                email, password, request[CLIENT_IP], request.headers.get("User-Agent", "")
            )
        except ApiError as exc:
            if exc.code not in (Code.INVALID_CREDENTIALS, Code.RATE_LIMITED):
                raise
            problem = exc
    if problem is not None:
        response = render(request, visit, "login.html",
                          {"title": "Log in", "email": email[:MAX_EMAIL], "problem": problem}, status=problem.status)
        response.headers.update(problem.headers)
        return response
    response = _see_other("/ui/")
    set_session_cookie(response, secret)  # a new secret: the one the form was served with is spent
    return response


@page("POST", "/logout", who="anyone")
async def logout(request: web.Request, visit: Visit) -> web.StreamResponse:
    """Log out"""
    await request.app[WEB_SESSIONS].logout(visit.secret, request[CLIENT_IP])
    response = _see_other("/ui/login")
    set_session_cookie(response, new_secret())
    return response


# --- the dashboard --------------------------------------------------------------------------------------


@page("GET", "/")
async def dashboard(request: web.Request, visit: Visit) -> web.StreamResponse:
    """The dashboard and its live event feed"""
    principal = visit.principal
    topics = ["me"] + (["users"] if principal.is_admin else [])
    collections = await request.app[VECTORS].list(principal, PAGE_SIZE, None)
    topics += [collection_topic(c.name) for c in collections.items]
    return render(request, visit, "dashboard.html", {"title": "Dashboard", "topics": " ".join(topics)})


# --- users (admins) -------------------------------------------------------------------------------------


@page("GET", "/users", who="admin")
async def users(request: web.Request, visit: Visit) -> web.StreamResponse:
    """Users"""
    q = request.query.get("q", "").strip()
    query = UserQuery.model_validate({"q": q or None, "cursor": request.query.get("cursor") or None, "limit": PAGE_SIZE})
    found = await request.app[USERS].list(query)
    next_url = f"/ui/users?{urlencode({'q': q, 'cursor': found.next_cursor})}" if found.next_cursor else None
    return render(request, visit, "users.html", {"title": "Users", "users": found.items, "q": q, "next_url": next_url})


@page("POST", "/users/{id}/status", who="admin")
async def set_user_status(request: web.Request, visit: Visit) -> web.StreamResponse:
    """Disable or enable a user"""
    disabled = {"disable": True, "enable": False}.get(visit.form.get("action", ""))
    if disabled is None:
        raise ApiError(Code.VALIDATION_FAILED, "the action must be disable or enable",
                       errors=[FieldError("action", "expected 'disable' or 'enable'")])
    await request.app[USERS].update(
        visit.principal, request.match_info["id"], UpdateUser(disabled=disabled), request[CLIENT_IP]
    )
    return _see_other("/ui/users")


# --- collections ----------------------------------------------------------------------------------------


@page("GET", "/collections")
async def collections(request: web.Request, visit: Visit) -> web.StreamResponse:
    """Collections"""
    cursor = request.query.get("cursor") or None
    found = await request.app[VECTORS].list(visit.principal, PAGE_SIZE, cursor)
    next_url = f"/ui/collections?{urlencode({'cursor': found.next_cursor})}" if found.next_cursor else None
    return render(request, visit, "collections.html",
                  {"title": "Collections", "collections": found.items, "next_url": next_url})


_DEFAULT_SEARCH = {"vector": "", "id": "", "top_k": "10", "namespace": "", "filter": "", "include_metadata": "on"}


@page("GET", "/collections/{name}")
async def collection(request: web.Request, visit: Visit) -> web.StreamResponse:
    """A collection and its search form"""
    found = await request.app[VECTORS].get(visit.principal, request.match_info["name"])
    return render(request, visit, "collection.html",
                  {"title": found.name, "collection": found, "search": _DEFAULT_SEARCH})


def query_from_form(form: Mapping[str, str]) -> QueryRequest:
    """The search form's text fields as the API's query body; every unreadable field is named."""
    data: dict[str, Any] = {"top_k": form.get("top_k", "").strip() or "10", "namespace": form.get("namespace", ""),
                            "include_metadata": "include_metadata" in form}
    errors = []
    vector, vector_id, raw_filter = (form.get(name, "").strip() for name in ("vector", "id", "filter"))
    if vector:
        try:
            data["vector"] = [float(part) for part in re.split(r"[\s,]+", vector) if part]
        except ValueError:
            errors.append(FieldError("vector", "expected numbers separated by commas or spaces"))
    if vector_id:
        data["id"] = vector_id
    if raw_filter:
        try:
            data["filter"] = json.loads(raw_filter)
        except ValueError:
            errors.append(FieldError("filter", "expected a JSON object, e.g. {\"genre\": {\"$eq\": \"drama\"}}"))
    if errors:
        raise ApiError(Code.VALIDATION_FAILED, "the search is not valid", errors=errors)
    try:
        return QueryRequest.model_validate(data)
    except ValidationError as exc:
        raise ApiError(Code.VALIDATION_FAILED, "the search is not valid", errors=field_errors(exc)) from None


@page("POST", "/collections/{name}/query")
async def search(request: web.Request, visit: Visit) -> web.StreamResponse:
    """Search a collection"""
    name = request.match_info["name"]
    vectors = request.app[VECTORS]
    found = await vectors.get(visit.principal, name)
    context: dict[str, Any] = {"title": found.name, "collection": found, "search": {**_DEFAULT_SEARCH, **visit.form}}
    if "include_metadata" not in visit.form:
        context["search"]["include_metadata"] = ""
    try:
        context["result"] = await vectors.query(visit.principal, name, query_from_form(visit.form))
    except ApiError as exc:
        if exc.code != Code.VALIDATION_FAILED:
            raise
        context["problem"] = exc
        return render(request, visit, "collection.html", context, status=exc.status)
    return render(request, visit, "collection.html", context)


# --- wiring ---------------------------------------------------------------------------------------------


async def open_web_sessions(app: web.Application) -> AsyncIterator[None]:
    """After the account services: a web session is a session of the auth service."""
    rows = WebSessionRows(app[DB])
    app[WEB_SESSIONS] = WebSessions(rows, app[AUTH], app[SETTINGS].refresh_token_ttl_s)
    yield


def add_routes(app: web.Application) -> None:
    aiohttp_jinja2.setup(
        app, loader=jinja2.PackageLoader("daemon.web", "templates"), autoescape=True, default_helpers=False
    )
    pages.add_to(app.router)
    app.router.add_static("/ui/static", STATIC_DIR, append_version=False)
