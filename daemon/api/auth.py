"""/api/v1/auth: login, refresh, logout, sessions, passwords, API keys; and the JWKS."""

from __future__ import annotations

from aiohttp import web

from daemon.api.routing import Routes
from daemon.context import AUTH, BODY, CLIENT_IP, MAIL, PRINCIPAL, QUERY, SETTINGS, USERS
from shared.errors import ApiError, Code
from shared.models import Page, PageQuery
from shared.models.auth import (
    ApiKey,
    ChangePassword,
    CreateApiKey,
    CreatedApiKey,
    Jwks,
    Login,
    Refresh,
    Register,
    ResetPassword,
    Session,
    TokenPair,
)
from shared.models.users import User

routes = Routes(prefix="/api/v1/auth")
TAG = "auth"


@routes.post("/register", summary="Create an account (when registration is open)", tag=TAG, body=Register,
             response=User, status=201, access="public", rate="auth", errors=(403, 409))
async def register(request: web.Request) -> User:
    if request.app[SETTINGS].registration != "open":
        raise ApiError(Code.FORBIDDEN, "registration is closed; ask an administrator for an account")
    body: Register = request[BODY]
    user = await request.app[USERS].create(body.email, body.password, "user", body.display_name, None, request[CLIENT_IP])
    request.app[MAIL].welcome(user.id, request[CLIENT_IP])  # a verification link, when mail is configured
    return user


@routes.post("/login", summary="Log in with email and password", tag=TAG, body=Login, response=TokenPair,
             access="public", rate="auth", errors=(401,))
async def login(request: web.Request) -> TokenPair:
    body: Login = request[BODY]
    return await request.app[AUTH].login(
        body.email, body.password, request[CLIENT_IP], request.headers.get("User-Agent", "")
    )


@routes.post("/refresh", summary="Trade a refresh token for a new pair", tag=TAG, body=Refresh, response=TokenPair,
             access="public", rate="auth", errors=(401,))
async def refresh(request: web.Request) -> TokenPair:
    return await request.app[AUTH].refresh(request[BODY].refresh_token, request[CLIENT_IP])


@routes.post("/logout", summary="End the current session", tag=TAG, response=None, status=204, scope="read")
async def logout(request: web.Request) -> None:
    await request.app[AUTH].logout(request[PRINCIPAL], request[CLIENT_IP])


@routes.get("/sessions", summary="Your sessions", tag=TAG, query=PageQuery, response=Page[Session])
async def list_sessions(request: web.Request) -> Page[Session]:
    return await request.app[AUTH].list_sessions(request[PRINCIPAL], request[QUERY])


@routes.delete("/sessions/{id}", summary="Revoke a session (yours; admins: any)", tag=TAG, response=None, status=204)
async def revoke_session(request: web.Request) -> None:
    await request.app[AUTH].revoke_session(request[PRINCIPAL], request.match_info["id"], request[CLIENT_IP])


@routes.post("/password", summary="Change your password; ends your other sessions", tag=TAG, body=ChangePassword,
             response=None, status=204, rate="auth")
async def change_password(request: web.Request) -> None:
    await request.app[AUTH].change_password(request[PRINCIPAL], request[BODY], request[CLIENT_IP])


@routes.post("/password-reset", summary="Set a new password with a reset token", tag=TAG, body=ResetPassword,
             response=None, status=204, access="public", rate="auth", errors=(401,))
async def reset_password(request: web.Request) -> None:
    body: ResetPassword = request[BODY]
    await request.app[AUTH].reset_password(body.reset_token, body.new_password, request[CLIENT_IP])


@routes.post("/api-keys", summary="Create an API key; the key is shown this once", tag=TAG, body=CreateApiKey,
             response=CreatedApiKey, status=201)
async def create_api_key(request: web.Request) -> CreatedApiKey:
    return await request.app[AUTH].create_api_key(request[PRINCIPAL], request[BODY], request[CLIENT_IP])


@routes.get("/api-keys", summary="Your API keys (never their secrets)", tag=TAG, query=PageQuery,
            response=Page[ApiKey])
async def list_api_keys(request: web.Request) -> Page[ApiKey]:
    return await request.app[AUTH].list_api_keys(request[PRINCIPAL], request[QUERY])


@routes.delete("/api-keys/{id}", summary="Revoke an API key", tag=TAG, response=None, status=204)
async def revoke_api_key(request: web.Request) -> None:
    await request.app[AUTH].revoke_api_key(request[PRINCIPAL], request.match_info["id"], request[CLIENT_IP])


jwks_routes = Routes()


@jwks_routes.get("/.well-known/jwks.json", summary="Public keys that verify access tokens", tag=TAG,
                 response=Jwks, access="public", rate="")
async def jwks(request: web.Request) -> dict:
    return request.app[AUTH].jwks()


routes.endpoints.extend(jwks_routes.endpoints)


def add_routes(app: web.Application) -> None:
    routes.add_to(app.router)
