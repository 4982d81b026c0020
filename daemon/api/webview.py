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
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from importlib import resources
from pathlib import Path
from typing import Any, Literal, get_args
from urllib.parse import urlencode, urlsplit

import aiohttp_jinja2
import jinja2
from aiohttp import web
from pydantic import ValidationError

from daemon.api.routing import Routes
from daemon.clock import parse
from daemon.context import (AUTH, CLIENT_IP, DEVICE, EVENTS, MAIL, MFA, OIDC, PASSKEYS, PRINCIPAL, REQUEST_ID, SETTINGS,
                            USERS, VECTORS, WEB_SESSIONS)
from daemon.pipeline.errors import field_errors, problem_response
from daemon.pipeline.validation import validated
from daemon.services import realtime
from daemon.services.principal import Principal
from daemon.services.vectors import topic as collection_topic
from daemon.services.web_sessions import csrf_matches, csrf_token, new_secret, row_id, well_formed
from shared.errors import ApiError, Code, FieldError
from shared.models import Page, PageQuery
from shared.models.auth import CreateApiKey, ResetPassword
from shared.models.users import UpdateUser, User, UserQuery
from shared.models.vectors import DEFAULT_PRECISION, CollectionCreate, Metric, Precision, QueryRequest
from shared.qr import svg_qr

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
    base = {"me": visit.me if visit else None, "csrf": csrf_token(visit.secret) if visit else "",
            "passkeys_on": request.app[PASSKEYS] is not None}
    return aiohttp_jinja2.render_template(template, request, {**base, **context}, status=status)


def _error_page(request: web.Request, visit: Visit | None, error: ApiError) -> web.Response:
    response = render(request, visit, "error.html", {"error": error, "title": error.title}, status=error.status)
    response.headers.update(error.headers)
    return response


# The largest form is a search with a query vector typed in: 4,096 numbers as text fit.
FORM_MAX_BYTES = 64 * 1024
_NO_CSRF = "the form's CSRF token is missing or is not this session's; reload the page"


def _refuse_unread_form(request: web.Request, secret: str | None) -> web.Response | None:
    """Refuse a form before reading it when it cannot pass the CSRF check (no session cookie: the token
    comes from it) or is larger than any of ours: 20 such 7 MiB posts at once, read whole before the
    check, took the daemon from 184 to 472 MB (issue 21). aiohttp then discards the unread body, for at
    most its lingering time, without keeping it."""
    if not well_formed(secret):
        refusal = ApiError(Code.FORBIDDEN, _NO_CSRF)
    elif request.content_length is None or request.content_length > FORM_MAX_BYTES:
        refusal = ApiError(Code.PAYLOAD_TOO_LARGE, f"a form may have at most {FORM_MAX_BYTES} bytes, with a Content-Length")
    else:
        return None
    return _error_page(request, None, refusal)


def page(method: str, path: str, *, who: Who = "user", rate: str = "api") -> Callable[[View], View]:
    def register(view: View) -> View:
        handler = _page_handler(method, who, view)
        pages.route(method, path, summary=(view.__doc__ or path).strip(), tag="web", access="public", rate=rate)(handler)
        return handler

    return register


def _page_handler(method: str, who: Who, view: View) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The view behind the checks every page shares: CSRF for forms, the session, who may see it."""
    @functools.wraps(view)
    async def handler(request: web.Request) -> web.StreamResponse:
        secret = request.cookies.get(COOKIE)
        form: Mapping[str, str] = {}
        if method == "POST":
            if _cross_site(request):
                return _error_page(request, None, ApiError(Code.FORBIDDEN, "this form was sent from another site"))
            refused = _refuse_unread_form(request, secret)
            if refused is not None:
                return refused
            posted = await request.post()
            form = {name: value for name, value in posted.items() if isinstance(value, str)}
            if not csrf_matches(secret, form.get("csrf")):
                return _error_page(request, None, ApiError(Code.FORBIDDEN, _NO_CSRF))
            nul = next((name for name, value in form.items() if "\x00" in name or "\x00" in value), None)
            if nul is not None:  # PostgreSQL's text refuses it (shared/models: Text)
                return _error_page(request, None, ApiError(
                    Code.VALIDATION_FAILED, "text may not hold the NUL character",
                    errors=[FieldError(nul, "the NUL character is not allowed")]))
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

    return handler


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
    return render(request, visit, "login.html", _login_context(request, ""))


def _refused_second_factor(request: web.Request, visit: Visit | None, mfa_token: str | None, exc: ApiError,
                           again: bool) -> web.Response:
    """The code page again (`again`: the login's token has tries left) or the login page, with the problem."""
    response = render(request, visit, "login_code.html" if again else "login.html",
                      {**_login_context(request, ""), "title": "Second factor" if again else "Log in",
                       "mfa_token": mfa_token, "problem": exc}, status=exc.status)
    response.headers.update(exc.headers)
    return response


def _login_context(request: web.Request, email: str) -> dict[str, Any]:
    return {"title": "Log in", "email": email, "sso": request.app[OIDC] is not None,
            "mail": request.app[MAIL].configured, "passkeys": request.app[PASSKEYS] is not None}


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
            second = await _second_step(request, visit, exc)
            if second is not None:
                return second
            if exc.code not in (Code.INVALID_CREDENTIALS, Code.RATE_LIMITED):
                raise
            problem = exc
    if problem is not None:
        response = render(request, visit, "login.html",
                          {**_login_context(request, email[:MAX_EMAIL]), "problem": problem}, status=problem.status)
        response.headers.update(problem.headers)
        return response
    response = _see_other("/ui/")
    set_session_cookie(response, secret)  # a new secret: the one the form was served with is spent
    return response


async def _second_step(request: web.Request, visit: Visit, refused: ApiError) -> web.Response | None:
    """Where a login goes once its first factor passed (the password, or the single sign-on provider's word)
    when the account needs a second: the code page, or TOTP enrolment for a role that requires a second factor.
    No session exists until that step is done. None for any other refusal."""
    if refused.code == Code.MFA_REQUIRED:
        return render(request, visit, "login_code.html",
                      {**_login_context(request, ""), "title": "Second factor", "mfa_token": refused.extra["mfa_token"]})
    if refused.code == Code.MFA_ENROLMENT_REQUIRED:  # the role needs a second factor: set it up now
        return await _totp_shown(request, visit, None, refused.extra["mfa_token"])
    return None


@page("POST", "/login/code", who="anyone", rate="auth")
async def login_code(request: web.Request, visit: Visit) -> web.StreamResponse:
    """A login's second factor: the code for the mfa_token the password earned"""
    mfa_token, code = visit.form.get("mfa_token", ""), visit.form.get("code", "").strip()
    try:
        if not (0 < len(mfa_token) <= 200 and 0 < len(code) <= 64):
            raise ApiError(Code.INVALID_MFA_CODE, "enter the code from your authenticator app")
        secret = await request.app[WEB_SESSIONS].verify_mfa(mfa_token, code, request[CLIENT_IP],
                                                            request.headers.get("User-Agent", ""))
    except ApiError as exc:
        if exc.code not in (Code.INVALID_MFA_CODE, Code.UNAUTHORIZED, Code.RATE_LIMITED):
            raise
        # A wrong code may be tried again with the same token (up to its five tries); a dead one starts over.
        return _refused_second_factor(request, visit, mfa_token, exc, again=exc.code == Code.INVALID_MFA_CODE)
    response = _see_other("/ui/")
    set_session_cookie(response, secret)
    return response


@page("POST", "/logout", who="anyone")
async def logout(request: web.Request, visit: Visit) -> web.StreamResponse:
    """Log out"""
    await request.app[WEB_SESSIONS].logout(visit.secret, request[CLIENT_IP])
    response = _see_other("/ui/login")
    set_session_cookie(response, new_secret())
    return response


# --- a second factor: TOTP enrolment (services/mfa.py) ---------------------------------------------------


async def _mfa_start(request: web.Request, visit: Visit, status: int = 200, **context) -> web.Response:
    """The page's first step: TOTP's state, with the form that sets it up or the one that turns it off."""
    assert visit.principal is not None
    totp_on = await request.app[MFA].totp_on(visit.principal.user_id)
    return render(request, visit, "mfa.html", {"title": "Second factor", "step": "start", "totp_on": totp_on,
                                               **context}, status=status)


@page("GET", "/mfa")
async def second_factor(request: web.Request, visit: Visit) -> web.StreamResponse:
    """Your second factor"""
    return await _mfa_start(request, visit)


async def _totp_shown(request: web.Request, visit: Visit, password: str | None, mfa_token: str | None) -> web.Response:
    """Starts an enrolment (the password of a signed-in user, or the mfa_token of a login whose role needs
    one) and shows its secret as a QR code and as text, with the form for the first code."""
    secret = await request.app[MFA].start_totp(visit.principal if mfa_token is None else None, password, mfa_token,
                                               request[CLIENT_IP])
    return render(request, visit, "mfa.html", {"title": "Second factor", "step": "confirm", "mfa_token": mfa_token,
                                               "secret": secret.secret, "qr": svg_qr(secret.otpauth_uri)})


@page("POST", "/mfa/totp", rate="auth")
async def start_totp(request: web.Request, visit: Visit) -> web.StreamResponse:
    """Set up TOTP: your password, then the secret to scan"""
    try:
        return await _totp_shown(request, visit, visit.form.get("password", "")[:MAX_PASSWORD] or None, None)
    except ApiError as exc:
        if exc.code not in (Code.INVALID_CREDENTIALS, Code.VALIDATION_FAILED, Code.CONFLICT, Code.RATE_LIMITED):
            raise
        response = await _mfa_start(request, visit, exc.status, problem=exc)
        response.headers.update(exc.headers)
        return response


@page("POST", "/mfa/totp/off", rate="auth")
async def turn_totp_off(request: web.Request, visit: Visit) -> web.StreamResponse:
    """Turn TOTP off: your password and a code (the recovery codes go with it; passkeys stay)"""
    password = visit.form.get("password", "")[:MAX_PASSWORD]
    code = visit.form.get("code", "").strip()[:64]
    try:
        await request.app[MFA].disable_totp(visit.principal, password, code, request[CLIENT_IP])
    except ApiError as exc:
        if exc.code not in (Code.INVALID_CREDENTIALS, Code.INVALID_MFA_CODE, Code.CONFLICT, Code.RATE_LIMITED):
            raise
        response = await _mfa_start(request, visit, exc.status, problem=exc)
        response.headers.update(exc.headers)
        return response
    return await _mfa_start(request, visit, notice="TOTP is off, and its recovery codes are gone.")


@page("POST", "/mfa/totp/confirm", who="anyone", rate="auth")
async def confirm_totp(request: web.Request, visit: Visit) -> web.StreamResponse:
    """Turn TOTP on with its first code; the recovery codes, shown once"""
    # Signed in: the session's own enrolment. Not signed in: the enrolment a login was led to, whose
    # mfa_token opens the session once the code is right.
    mfa_token = None if visit.principal else visit.form.get("mfa_token", "")[:200]
    code = visit.form.get("code", "").strip()[:64]
    try:
        confirmed = await request.app[AUTH].confirm_totp(visit.principal, code, mfa_token, request[CLIENT_IP],
                                                         request.headers.get("User-Agent", ""))
    except ApiError as exc:
        if exc.code not in (Code.INVALID_MFA_CODE, Code.UNAUTHORIZED, Code.CONFLICT, Code.RATE_LIMITED):
            raise
        if exc.code == Code.UNAUTHORIZED and visit.principal is None:  # the login's token is dead: start over
            response = render(request, visit, "login.html", {**_login_context(request, ""), "problem": exc},
                              status=exc.status)
        else:  # a wrong code may be tried again (the QR code shown before still holds)
            response = render(request, visit, "mfa.html", {"title": "Second factor", "problem": exc,
                                                           "step": "confirm" if exc.code == Code.INVALID_MFA_CODE else "start",
                                                           "mfa_token": mfa_token}, status=exc.status)
        response.headers.update(exc.headers)
        return response
    context = {"title": "Second factor", "step": "done", "recovery_codes": confirmed.recovery_codes}
    if confirmed.session is None:
        return render(request, visit, "mfa.html", context)
    # Answered here, not through a redirect: the recovery codes are in this one no-store page and nowhere else.
    secret = await request.app[WEB_SESSIONS].open(confirmed.session)
    response = render(request, None, "mfa.html", context)
    set_session_cookie(response, secret)
    return response


# --- links by mail (services/mail.py): a forgotten password, a verified address --------------------------
# The links carry their token in the fragment (#token=...), which no browser sends: /ui/static/link-token.js
# moves it into the page's form, which posts it (CSRF-checked like every form). Without script, it is pasted.

MAX_TOKEN = 200


def _form_problem(request: web.Request, visit: Visit, template: str, context: dict[str, Any],
                  exc: ApiError, expected: tuple[Code, ...]) -> web.Response:
    """The form again, with the problem named, for the refusals a person can act on; anything else goes on."""
    if exc.code not in expected:
        raise exc
    response = render(request, visit, template, {**context, "problem": exc}, status=exc.status)
    response.headers.update(exc.headers)
    return response


@page("GET", "/forgot", who="anyone")
async def forgot_form(request: web.Request, visit: Visit) -> web.StreamResponse:
    """Ask for a password reset link"""
    return render(request, visit, "forgot.html", {"title": "Forgotten password", "email": ""})


@page("POST", "/forgot", who="anyone", rate="auth")
async def forgot(request: web.Request, visit: Visit) -> web.StreamResponse:
    """Send a password reset link (the same answer whether or not the account exists)"""
    email = visit.form.get("email", "").strip()[:MAX_EMAIL]
    context = {"title": "Forgotten password", "email": email}
    try:
        if not email:
            raise ApiError(Code.VALIDATION_FAILED, "enter your email address")
        await request.app[MAIL].request_reset(email, request[CLIENT_IP])
    except ApiError as exc:
        return _form_problem(request, visit, "forgot.html", context, exc, (Code.VALIDATION_FAILED, Code.RATE_LIMITED))
    return render(request, visit, "forgot.html", {**context, "sent": True}, status=202)


@page("GET", "/reset", who="anyone")
async def reset_form(request: web.Request, visit: Visit) -> web.StreamResponse:
    """Choose a new password with the link from the mail"""
    return render(request, visit, "reset.html", {"title": "New password"})


@page("POST", "/reset", who="anyone", rate="auth")
async def reset(request: web.Request, visit: Visit) -> web.StreamResponse:
    """Set the new password; every session of the account ends"""
    token, password = visit.form.get("token", "").strip(), visit.form.get("new_password", "")
    try:
        if not 0 < len(token) <= MAX_TOKEN:
            raise ApiError(Code.UNAUTHORIZED, "the link is not valid: open the link from the mail again")
        if password != visit.form.get("repeat", ""):
            raise ApiError(Code.VALIDATION_FAILED, "the two passwords differ",
                           errors=[FieldError("repeat", "type the same password twice")])
        body = validated(ResetPassword, {"reset_token": token, "new_password": password}, "new password")
        await request.app[AUTH].reset_password(body.reset_token, body.new_password, request[CLIENT_IP])
    except ApiError as exc:
        return _form_problem(request, visit, "reset.html", {"title": "New password"}, exc,
                             (Code.UNAUTHORIZED, Code.VALIDATION_FAILED, Code.RATE_LIMITED))
    return render(request, visit, "reset.html", {"title": "New password", "done": True})


@page("GET", "/verify-email", who="anyone")
async def verify_email_form(request: web.Request, visit: Visit) -> web.StreamResponse:
    """Verify an email address with the link from the mail"""
    return render(request, visit, "verify_email.html", {"title": "Verify your email"})


@page("POST", "/verify-email", who="anyone", rate="auth")
async def verify_email(request: web.Request, visit: Visit) -> web.StreamResponse:
    """Verify the address"""
    token = visit.form.get("token", "").strip()
    try:
        if not 0 < len(token) <= MAX_TOKEN:
            raise ApiError(Code.UNAUTHORIZED, "the link is not valid: open the link from the mail again")
        await request.app[MAIL].verify(token, request[CLIENT_IP])
    except ApiError as exc:
        return _form_problem(request, visit, "verify_email.html", {"title": "Verify your email"}, exc,
                             (Code.UNAUTHORIZED, Code.RATE_LIMITED))
    return render(request, visit, "verify_email.html", {"title": "Verify your email", "done": True})


# --- passkeys (services/passkeys.py) ---------------------------------------------------------------------
# /ui/static/passkeys.js asks an /options route for a ceremony's options (a form post, so CSRF-checked like
# any other), lets the browser's authenticator answer, and sends the answer in the page's own form: the
# result is an ordinary page. Challenges are bound to the browser by its session cookie's secret.


def _passkeys(request: web.Request):  # -> services.passkeys.Passkeys
    passkeys = request.app[PASSKEYS]
    if passkeys is None:
        raise ApiError(Code.NOT_FOUND, "passkeys are not configured on this server (BASTION_WEBAUTHN_ORIGINS)")
    return passkeys


async def _options(request: web.Request, make: Awaitable[str]) -> web.Response:
    """A ceremony's options as JSON; a refusal as problem+json, for the script to show."""
    try:
        return web.Response(text=await make, content_type="application/json")
    except ApiError as exc:
        response = problem_response(exc, request.get(REQUEST_ID))
        response.headers.update(exc.headers)
        return response


async def _passkeys_page(request: web.Request, visit: Visit, status: int = 200, **context: Any) -> web.Response:
    found = await _passkeys(request).list(visit.principal)
    return render(request, visit, "passkeys.html", {"title": "Passkeys", "passkeys": found, **context}, status=status)


@page("GET", "/passkeys")
async def passkeys(request: web.Request, visit: Visit) -> web.StreamResponse:
    """Your passkeys"""
    return await _passkeys_page(request, visit)


@page("POST", "/passkeys/options", rate="auth")
async def passkey_registration_options(request: web.Request, visit: Visit) -> web.StreamResponse:
    """The options to make a new passkey, once your password (or a code) is right"""
    form = visit.form
    return await _options(request, _passkeys(request).registration_options(
        visit.principal, form.get("password", "")[:MAX_PASSWORD] or None, form.get("code", "").strip()[:64] or None,
        row_id(visit.secret), request[CLIENT_IP]))


@page("POST", "/passkeys", rate="auth")
async def add_passkey(request: web.Request, visit: Visit) -> web.StreamResponse:
    """Add a passkey: the authenticator's answer to the options"""
    try:
        await _passkeys(request).register(visit.principal, visit.form.get("name", ""), visit.form.get("credential", ""),
                                          row_id(visit.secret), request[CLIENT_IP])
    except ApiError as exc:
        if exc.code not in (Code.PASSKEY_REFUSED, Code.VALIDATION_FAILED, Code.CONFLICT):
            raise
        return await _passkeys_page(request, visit, exc.status, problem=exc)
    return _see_other("/ui/passkeys")


@page("POST", "/passkeys/{id}/remove")
async def remove_passkey(request: web.Request, visit: Visit) -> web.StreamResponse:
    """Remove one of your passkeys"""
    passkeys = _passkeys(request)
    asking = _confirm(request, visit, f"Remove the passkey {visit.form.get('name', '')}? It no longer signs you in.",
                      "Remove", "/ui/passkeys")
    if asking is not None:
        return asking
    await passkeys.remove(visit.principal, request.match_info["id"], request[CLIENT_IP])
    return _see_other("/ui/passkeys")


@page("POST", "/login/passkey/options", who="anyone", rate="auth")
async def passkey_login_options(request: web.Request, visit: Visit) -> web.StreamResponse:
    """The options to sign in with a passkey: alone, or after the password (with its mfa_token)"""
    mfa_token = visit.form.get("mfa_token", "")[:200] or None
    return await _options(request, _passkeys(request).authentication_options(row_id(visit.secret), mfa_token))


@page("POST", "/login/passkey", who="anyone", rate="auth")
async def passkey_login(request: web.Request, visit: Visit) -> web.StreamResponse:
    """Sign in with a passkey: the authenticator's answer"""
    passkeys = _passkeys(request)
    mfa_token = visit.form.get("mfa_token", "")[:200] or None
    answer, browser, ip = visit.form.get("credential", ""), row_id(visit.secret), request[CLIENT_IP]
    user_agent = request.headers.get("User-Agent", "")
    try:
        if mfa_token is None:
            pair = await passkeys.sign_in(answer, browser, ip, user_agent)
        else:
            pair = await passkeys.second_factor(mfa_token, answer, browser, ip, user_agent)
    except ApiError as exc:
        if exc.code not in (Code.PASSKEY_REFUSED, Code.VALIDATION_FAILED, Code.UNAUTHORIZED, Code.RATE_LIMITED):
            raise
        # After the password, a refused passkey leaves the login's token with its other tries.
        return _refused_second_factor(request, visit, mfa_token, exc,
                                      again=mfa_token is not None and exc.code != Code.UNAUTHORIZED)
    response = _see_other("/ui/")
    set_session_cookie(response, await request.app[WEB_SESSIONS].open(pair))
    return response


# --- single sign-on (services/oidc.py) ----------------------------------------------------------------

# The pre-login cookie of a single sign-on: it carries the secret its state, nonce and PKCE verifier derive
# from. SameSite=Lax, unlike the session cookie: the provider sends the browser back from another site, and
# a Strict cookie would stay behind. It lives as long as the sign-in may take.
SSO_COOKIE = "__Host-bastion_sso"
SSO_COOKIE_MAX_AGE = 600


def _sso(request: web.Request):  # -> services.oidc.Oidc
    oidc = request.app[OIDC]
    if oidc is None:
        raise ApiError(Code.NOT_FOUND, "single sign-on is not configured on this server")
    return oidc


def _callback_url(request: web.Request) -> str:
    return request.app[SETTINGS].oidc_redirect_uri or f"{request.scheme}://{request.host}/ui/sso/callback"


@page("GET", "/sso/start", who="anyone", rate="auth")
async def sso_start(request: web.Request, visit: Visit) -> web.StreamResponse:
    """Sign in with the single sign-on provider"""
    # A link, not a form: the CSP's form-action 'self' would stop a form's redirect to the provider. Starting
    # a sign-in changes nothing that another site could misuse: the flow is bound to this browser's cookie.
    flow_secret, url = await _sso(request).begin(_callback_url(request))
    response = _see_other(url)
    response.set_cookie(SSO_COOKIE, flow_secret, path="/", httponly=True, secure=True, samesite="Lax",
                        max_age=SSO_COOKIE_MAX_AGE)
    return response


@page("GET", "/sso/callback", who="anyone", rate="auth")
async def sso_callback(request: web.Request, visit: Visit) -> web.StreamResponse:
    """Where the single sign-on provider sends the browser back"""
    oidc = _sso(request)
    params = {name: request.query.get(name, "") for name in ("state", "code", "error") if name in request.query}
    try:
        pair = await oidc.finish(request.cookies.get(SSO_COOKIE), params, _callback_url(request),
                                 request[CLIENT_IP], request.headers.get("User-Agent", ""))
    except ApiError as exc:
        # A second factor is due: the same page as after a password (its form posts from this site, with the
        # cookie of the session secret `page()` sets here, so it needs none of the provider's cross-site cookie).
        response = await _second_step(request, visit, exc) or render(
            request, visit, "sso_refused.html", {"title": "Single sign-on refused", "error": exc}, status=exc.status)
        response.headers.update(exc.headers)
    else:
        secret = await request.app[WEB_SESSIONS].open(pair)
        # A page that moves on by itself, not a redirect: the browser arrived here from the provider's site,
        # and would not send the new SameSite=Strict cookie along a redirect that began there.
        response = render(request, None, "sso_done.html", {"title": "Signed in", "email": pair.user.email})
        set_session_cookie(response, secret)
    response.del_cookie(SSO_COOKIE, path="/", secure=True, httponly=True, samesite="Lax")  # spent either way
    return response


# --- what every page shares: times, live tables, confirmations -----------------------------------------


def when(moment: datetime | str | None) -> str:
    """The one way the web view shows a time (live rows are drawn by the server too, so this is the only one)."""
    if moment is None:
        return "never"
    if isinstance(moment, str):
        moment = parse(moment)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _confirm(request: web.Request, visit: Visit, question: str, button: str, back: str) -> web.Response | None:
    """A destructive action asks first: None once the person confirmed, else the page that asks. The
    question page posts the same fields again, with `confirmed`, so that a form without script works too."""
    if visit.form.get("confirmed") == "yes":
        return None
    fields = {name: value for name, value in visit.form.items() if name not in ("csrf", "confirmed")}
    return render(request, visit, "confirm.html", {"title": "Confirm", "question": question, "button": button,
                                                   "action": request.path, "fields": fields, "back": back})


def _users_url(form: Mapping[str, str]) -> str:
    """The users page as it was when a form on it was sent: same search, same page."""
    kept = {name: form[name] for name in ("q", "cursor") if form.get(name)}
    return "/ui/users" + (f"?{urlencode(kept)}" if kept else "")


# --- the dashboard --------------------------------------------------------------------------------------

RECENT_EVENTS = 20


def _event_line(event: realtime.Event) -> dict[str, str]:
    """An event as a person reads it: when, what, and to what."""
    data = event.data
    if event.event == "audit.recorded":
        subject = " ".join(str(part) for part in (data.get("event"), data.get("target_id") or "") if part)
    else:
        subject = str(data.get("email") or data.get("name") or data.get("session_id") or data.get("id") or "")
    return {"id": event.id, "at": when(event.at), "iso": event.at, "event": event.event, "subject": subject}


@page("GET", "/")
async def dashboard(request: web.Request, visit: Visit) -> web.StreamResponse:
    """The dashboard: counts, and the recent events, kept live"""
    principal = visit.principal
    collections = await request.app[VECTORS].list(principal, PAGE_SIZE, None)
    topics = ["me"] + (["users", "audit"] if principal.is_admin else []) + [collection_topic(c.name) for c in collections.items]
    keys = await request.app[AUTH].list_api_keys(principal, PageQuery(limit=PAGE_SIZE))
    sessions = await request.app[AUTH].list_sessions(principal, PageQuery(limit=PAGE_SIZE))

    def counted(found: Page) -> str:
        return f"{len(found.items)}{'+' if found.next_cursor else ''}"

    counts = [("Collections", counted(collections), "/ui/collections"), ("API keys", counted(keys), "/ui/keys"),
              ("Sessions", counted(sessions), "/ui/sessions")]
    if principal.is_admin:
        counts.insert(0, ("Users", str(await request.app[USERS].count()), "/ui/users"))
    events = await realtime.recent(request.app[EVENTS], principal, set(topics), RECENT_EVENTS)
    return render(request, visit, "dashboard.html", {
        "title": "Dashboard", "live": topics, "counts": counts, "events": [_event_line(e) for e in events],
    })


# --- users (admins) -------------------------------------------------------------------------------------


@page("GET", "/users", who="admin")
async def users(request: web.Request, visit: Visit) -> web.StreamResponse:
    """Users"""
    q = request.query.get("q", "").strip()
    cursor = request.query.get("cursor") or None
    query = UserQuery.model_validate({"q": q or None, "cursor": cursor, "limit": PAGE_SIZE})
    found = await request.app[USERS].list(query)
    next_url = f"/ui/users?{urlencode({'q': q, 'cursor': found.next_cursor})}" if found.next_cursor else None
    return render(request, visit, "users.html", {"title": "Users", "users": found.items, "q": q,
                                                 "cursor": cursor or "", "next_url": next_url, "live": ["users"]})


async def _change_user(request: web.Request, visit: Visit, change: UpdateUser, question: str | None,
                       button: str = "") -> web.StreamResponse:
    """Apply a change from the users page (asking first when it takes something away), then show the
    page as it was."""
    user_id = request.match_info["id"]
    target = await request.app[USERS].get(visit.principal, user_id)
    back = _users_url(visit.form)
    if question is not None:
        asking = _confirm(request, visit, question.format(email=target.email), button, back)
        if asking is not None:
            return asking
    await request.app[USERS].update(visit.principal, user_id, change, request[CLIENT_IP])
    return _see_other(back)


@page("POST", "/users/{id}/status", who="admin")
async def set_user_status(request: web.Request, visit: Visit) -> web.StreamResponse:
    """Disable or enable a user"""
    disabled = {"disable": True, "enable": False}.get(visit.form.get("action", ""))
    if disabled is None:
        raise ApiError(Code.VALIDATION_FAILED, "the action must be disable or enable",
                       errors=[FieldError("action", "expected 'disable' or 'enable'")])
    if not disabled:  # enabling takes nothing away: no question
        return await _change_user(request, visit, UpdateUser(disabled=False), None)
    return await _change_user(request, visit, UpdateUser(disabled=True),
                              "Disable {email}? Their sessions end at once and they cannot log in.", "Disable")


@page("POST", "/users/{id}/role", who="admin")
async def set_user_role(request: web.Request, visit: Visit) -> web.StreamResponse:
    """Change a user's role"""
    role = visit.form.get("role", "")
    if role not in ("admin", "user"):
        raise ApiError(Code.VALIDATION_FAILED, "the role must be admin or user",
                       errors=[FieldError("role", "expected 'admin' or 'user'")])
    return await _change_user(request, visit, UpdateUser(role=role),
                              f"Make {{email}} {'an admin' if role == 'admin' else 'a user'}? Their sessions end, so the new role applies at once.",
                              "Change the role")


# --- API keys and sessions (your own) -------------------------------------------------------------------


async def _keys_page(request: web.Request, visit: Visit, status: int = 200, **context: Any) -> web.Response:
    found = await request.app[AUTH].list_api_keys(visit.principal, PageQuery(limit=PAGE_SIZE))
    form = {"name": "", "scope_read": "on", "expires": "", **context.pop("form", {})}
    return render(request, visit, "keys.html", {"title": "API keys", "keys": found.items, "more": bool(found.next_cursor),
                                                "form": form, "live": ["me"], **context}, status=status)


@page("GET", "/keys")
async def keys(request: web.Request, visit: Visit) -> web.StreamResponse:
    """Your API keys"""
    return await _keys_page(request, visit)


def key_from_form(form: Mapping[str, str]) -> CreateApiKey:
    """The key form's fields as the API's body; every unreadable field is named."""
    data: dict[str, Any] = {"name": form.get("name", "").strip(),
                            "scopes": [s for s in ("read", "write", "admin") if form.get(f"scope_{s}")]}
    expires = form.get("expires", "").strip()
    if expires:
        try:
            data["expires_at"] = datetime.combine(date.fromisoformat(expires), time(), UTC)
        except ValueError:
            raise ApiError(Code.VALIDATION_FAILED, "the key is not valid",
                           errors=[FieldError("expires", "expected a date such as 2027-01-31")]) from None
    return validated(CreateApiKey, data, "key")


@page("POST", "/keys")
async def create_key(request: web.Request, visit: Visit) -> web.StreamResponse:
    """Create an API key (its secret is shown this once)"""
    try:
        created = await request.app[AUTH].create_api_key(visit.principal, key_from_form(visit.form), request[CLIENT_IP])
    except ApiError as exc:
        if exc.code not in (Code.VALIDATION_FAILED, Code.FORBIDDEN):
            raise
        return await _keys_page(request, visit, exc.status, problem=exc, form=visit.form)
    # Answered here, never through a redirect: the secret is in this one no-store page and nowhere else.
    return await _keys_page(request, visit, 201, created=created)


@page("POST", "/keys/{id}/revoke")
async def revoke_key(request: web.Request, visit: Visit) -> web.StreamResponse:
    """Revoke an API key"""
    asking = _confirm(request, visit, f"Revoke the key {visit.form.get('name', '')} ({request.match_info['id']})? "
                      "Whatever uses it stops working at once.", "Revoke", "/ui/keys")
    if asking is not None:
        return asking
    await request.app[AUTH].revoke_api_key(visit.principal, request.match_info["id"], request[CLIENT_IP])
    return _see_other("/ui/keys")


@page("GET", "/sessions")
async def sessions(request: web.Request, visit: Visit) -> web.StreamResponse:
    """Your sessions"""
    found = await request.app[AUTH].list_sessions(visit.principal, PageQuery(limit=PAGE_SIZE))
    return render(request, visit, "sessions.html", {"title": "Sessions", "sessions": found.items,
                                                    "more": bool(found.next_cursor), "live": ["me"]})


@page("POST", "/sessions/{id}/revoke")
async def revoke_session(request: web.Request, visit: Visit) -> web.StreamResponse:
    """Revoke a session"""
    session_id = request.match_info["id"]
    current = session_id == visit.principal.session_id
    question = ("End this session? You will be logged out here." if current else
                f"End the session {session_id} ({visit.form.get('where', '')})? It is logged out at once.")
    asking = _confirm(request, visit, question, "End the session", "/ui/sessions")
    if asking is not None:
        return asking
    await request.app[AUTH].revoke_session(visit.principal, session_id, request[CLIENT_IP])
    return _see_other("/ui/login" if current else "/ui/sessions")


# --- collections ----------------------------------------------------------------------------------------

_NEW_COLLECTION = {"name": "", "dimension": "", "metric": "cosine", "precision": DEFAULT_PRECISION}
_CHOICES = {"metrics": get_args(Metric), "precisions": get_args(Precision)}  # the form's, as the API takes them


async def _collections_page(request: web.Request, visit: Visit, status: int = 200, **context: Any) -> web.Response:
    cursor = request.query.get("cursor") or None
    found = await request.app[VECTORS].list(visit.principal, PAGE_SIZE, cursor)
    next_url = f"/ui/collections?{urlencode({'cursor': found.next_cursor})}" if found.next_cursor else None
    form = {**_NEW_COLLECTION, **context.pop("form", {})}
    return render(request, visit, "collections.html", {"title": "Collections", "collections": found.items,
                                                       "next_url": next_url, "form": form, "live": ["me"],
                                                       **_CHOICES, **context},
                  status=status)


@page("GET", "/collections")
async def collections(request: web.Request, visit: Visit) -> web.StreamResponse:
    """Collections"""
    return await _collections_page(request, visit)


@page("POST", "/collections")
async def create_collection(request: web.Request, visit: Visit) -> web.StreamResponse:
    """Create a collection"""
    # A field left out takes the API's default (a page from before the field existed, a script).
    fields = {name: (visit.form.get(name) or default).strip() for name, default in _NEW_COLLECTION.items()}
    try:
        created = await request.app[VECTORS].create(visit.principal, validated(CollectionCreate, fields, "collection"))
    except ApiError as exc:
        if exc.code not in (Code.VALIDATION_FAILED, Code.CONFLICT):
            raise
        return await _collections_page(request, visit, exc.status, problem=exc, form=fields)
    return _see_other(f"/ui/collections/{created.name}")


@page("POST", "/collections/{name}/delete")
async def delete_collection(request: web.Request, visit: Visit) -> web.StreamResponse:
    """Delete a collection"""
    name = request.match_info["name"]
    found = await request.app[VECTORS].get(visit.principal, name)  # 404 before asking about what is not there
    asking = _confirm(request, visit, f"Delete the collection {found.name} and its {found.count} vectors? "
                      "This cannot be undone.", "Delete", f"/ui/collections/{found.name}")
    if asking is not None:
        return asking
    await request.app[VECTORS].delete(visit.principal, name)
    return _see_other("/ui/collections")


_DEFAULT_SEARCH = {"text": "", "mode": "", "vector": "", "id": "", "top_k": "10", "namespace": "", "filter": "",
                   "include_metadata": "on"}


@page("GET", "/collections/{name}")
async def collection(request: web.Request, visit: Visit) -> web.StreamResponse:
    """A collection and its search form"""
    found = await request.app[VECTORS].get(visit.principal, request.match_info["name"])
    return render(request, visit, "collection.html", {"title": found.name, "collection": found, "search": _DEFAULT_SEARCH,
                                                      "live": [collection_topic(found.name)]})


def query_from_form(form: Mapping[str, str]) -> QueryRequest:
    """The search form's text fields as the API's query body; every unreadable field is named."""
    data: dict[str, Any] = {"top_k": form.get("top_k", "").strip() or "10", "namespace": form.get("namespace", ""),
                            "include_metadata": "include_metadata" in form}
    errors = []
    vector, vector_id, raw_filter, text, mode = (
        form.get(name, "").strip() for name in ("vector", "id", "filter", "text", "mode")
    )
    if text:
        data |= {"text": text, "include_text": True}
    if mode:
        data["mode"] = mode
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
    return validated(QueryRequest, data, "search")


@page("POST", "/collections/{name}/query")
async def search(request: web.Request, visit: Visit) -> web.StreamResponse:
    """Search a collection"""
    name = request.match_info["name"]
    vectors = request.app[VECTORS]
    found = await vectors.get(visit.principal, name)
    context: dict[str, Any] = {"title": found.name, "collection": found, "search": {**_DEFAULT_SEARCH, **visit.form},
                               "live": [collection_topic(found.name)]}
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


# --- device login approval -------------------------------------------------------------------------------


@page("GET", "/device")
async def device(request: web.Request, visit: Visit) -> web.StreamResponse:
    """Approve a device login"""
    user_code = request.query.get("user_code", "")[:20]
    return render(request, visit, "device.html", {"title": "Approve a device", "user_code": user_code})


@page("POST", "/device")
async def decide_device(request: web.Request, visit: Visit) -> web.StreamResponse:
    """Approve or deny a device login"""
    approve = {"approve": True, "deny": False}.get(visit.form.get("action", ""))
    user_code = visit.form.get("user_code", "").strip()[:20]
    if approve is None or not user_code:
        raise ApiError(Code.VALIDATION_FAILED, "enter the code and choose approve or deny",
                       errors=[FieldError("action", "expected 'approve' or 'deny'")])
    context: dict[str, Any] = {"title": "Approve a device", "user_code": ""}
    try:
        context["decided"] = await request.app[DEVICE].decide(visit.principal, user_code, approve, request[CLIENT_IP])
        context["approved"] = approve
    except ApiError as exc:
        if exc.code not in (Code.NOT_FOUND, Code.FORBIDDEN):
            raise
        return render(request, visit, "device.html", {**context, "user_code": user_code, "problem": exc},
                      status=exc.status)
    return render(request, visit, "device.html", context)


# --- wiring ---------------------------------------------------------------------------------------------


async def favicon(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "favicon.ico")


async def no_such_page(request: web.Request, visit: Visit) -> web.StreamResponse:
    """A mistyped /ui/ address gets the site's own page (and its menu), not the API's problem+json."""
    raise ApiError(Code.NOT_FOUND, "there is no such page here")


def add_routes(app: web.Application) -> None:
    env = aiohttp_jinja2.setup(
        app, loader=jinja2.PackageLoader("daemon.web", "templates"), autoescape=True, default_helpers=False
    )
    env.filters["when"] = when
    pages.add_to(app.router)
    app.router.add_static("/ui/static", STATIC_DIR, append_version=False)
    app.router.add_get("/favicon.ico", favicon)  # browsers ask for it at the root, whatever the page says
    # Last: aiohttp tries the routes of a longer prefix first, so this takes only what no page or file took.
    app.router.add_get("/ui/{path:.*}", _page_handler("GET", "anyone", no_such_page))
