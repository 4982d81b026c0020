"""/api/v1/auth/mfa: TOTP enrolment and a login's second step; and an admin's reset of a user's factors."""

from __future__ import annotations

from aiohttp import web

from daemon.api.routing import Routes
from daemon.context import AUTH, BODY, CLIENT_IP, MFA, PRINCIPAL
from shared.models.auth import ConfirmTotp, DisableTotp, StartTotp, TokenPair, TotpConfirmed, TotpSecret, VerifyMfa

routes = Routes(prefix="/api/v1")
TAG = "auth"


@routes.post("/auth/mfa/verify", summary="A login's second step: the mfa_token and a TOTP or recovery code",
             tag=TAG, body=VerifyMfa, response=TokenPair, access="public", rate="auth", errors=(401,))
async def verify(request: web.Request) -> TokenPair:
    body: VerifyMfa = request[BODY]
    return await request.app[AUTH].verify_mfa(body.mfa_token, body.code, request[CLIENT_IP],
                                              request.headers.get("User-Agent", ""))


@routes.post("/auth/mfa/totp", summary="Start TOTP enrolment (your password, or a login's mfa_token)", tag=TAG,
             body=StartTotp, response=TotpSecret, status=201, access="optional", rate="auth", errors=(401, 409))
async def start_totp(request: web.Request) -> TotpSecret:
    body: StartTotp = request[BODY]
    return await request.app[MFA].start_totp(request[PRINCIPAL], body.password, body.mfa_token, request[CLIENT_IP])


@routes.post("/auth/mfa/totp/confirm", summary="Turn TOTP on with its first code; the recovery codes, shown once",
             tag=TAG, body=ConfirmTotp, response=TotpConfirmed, access="optional", rate="auth", errors=(401, 409))
async def confirm_totp(request: web.Request) -> TotpConfirmed:
    body: ConfirmTotp = request[BODY]
    return await request.app[AUTH].confirm_totp(request[PRINCIPAL], body.code, body.mfa_token, request[CLIENT_IP],
                                                request.headers.get("User-Agent", ""))


@routes.delete("/auth/mfa/totp", summary="Turn TOTP off (your password and a code)", tag=TAG, body=DisableTotp,
               response=None, status=204, rate="auth", errors=(401, 409))
async def disable_totp(request: web.Request) -> None:
    body: DisableTotp = request[BODY]
    await request.app[MFA].disable_totp(request[PRINCIPAL], body.password, body.code, request[CLIENT_IP])


@routes.delete("/users/{id}/mfa", summary="Remove a user's second factors (audited)", tag="users", response=None,
               status=204, access="admin")
async def reset(request: web.Request) -> None:
    await request.app[MFA].reset(request[PRINCIPAL], request.match_info["id"], request[CLIENT_IP])


def add_routes(app: web.Application) -> None:
    routes.add_to(app.router)
