"""/api/v1/auth: the links by mail (services/mail.py): password reset requests and email verification."""

from __future__ import annotations

from aiohttp import web

from daemon.api.routing import Routes
from daemon.context import BODY, CLIENT_IP, MAIL, PRINCIPAL
from shared.models.auth import RequestPasswordReset, VerifyEmail

routes = Routes(prefix="/api/v1/auth")
TAG = "auth"


def _accepted() -> web.Response:
    # Accepted, with no body: the mail goes out later, if at all, and the answer says nothing about the account.
    return web.Response(status=202)


@routes.post("/password-reset/request", summary="Mail a password reset link (202 whether or not the account exists)",
             tag=TAG, body=RequestPasswordReset, response=None, status=202, access="public", rate="auth",
             errors=(404,))
async def request_reset(request: web.Request) -> web.Response:
    await request.app[MAIL].request_reset(request[BODY].email, request[CLIENT_IP])
    return _accepted()


@routes.post("/verify-email/request", summary="Mail a verification link to your own address", tag=TAG,
             response=None, status=202, rate="auth", errors=(404, 409))
async def request_verification(request: web.Request) -> web.Response:
    await request.app[MAIL].request_verification(request[PRINCIPAL], request[CLIENT_IP])
    return _accepted()


@routes.post("/verify-email", summary="Verify your email address with the token of its link", tag=TAG,
             body=VerifyEmail, response=None, status=204, access="public", rate="auth", errors=(401,))
async def verify_email(request: web.Request) -> None:
    body: VerifyEmail = request[BODY]
    await request.app[MAIL].verify(body.token, request[CLIENT_IP])


def add_routes(app: web.Application) -> None:
    routes.add_to(app.router)
