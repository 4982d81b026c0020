"""/api/v1/auth/device: device login (RFC 8628) for terminals without a browser."""

from __future__ import annotations

from aiohttp import web

from daemon.api.routing import Routes
from daemon.context import BODY, CLIENT_IP, DEVICE, PRINCIPAL
from shared.models import Page
from shared.models.auth import DeviceApproval, DeviceAuthorization, DeviceRequest, DeviceToken, StartDeviceLogin, TokenPair

routes = Routes(prefix="/api/v1/auth/device")
TAG = "auth"


def base_url(request: web.Request) -> str:
    """Where the person who approves reaches this daemon: as the device reached it."""
    return f"{request.scheme}://{request.host}"


@routes.post("", summary="Start a device login: a user code for someone signed in to approve", tag=TAG,
             body=StartDeviceLogin, response=DeviceAuthorization, access="public", rate="auth")
async def start(request: web.Request) -> DeviceAuthorization:
    return await request.app[DEVICE].start(request[BODY].client_name, request[CLIENT_IP], base_url(request))


@routes.post("/token", summary="Poll for a device login's tokens", tag=TAG, body=DeviceToken, response=TokenPair,
             access="public", rate="auth", errors=(400,))
async def token(request: web.Request) -> TokenPair:
    return await request.app[DEVICE].token(request[BODY].device_code, request[CLIENT_IP],
                                           request.headers.get("User-Agent", ""))


@routes.post("/approve", summary="Approve or deny a device login by its user code; the session is yours", tag=TAG,
             body=DeviceApproval, response=DeviceRequest, errors=(404,))
async def approve(request: web.Request) -> DeviceRequest:
    body: DeviceApproval = request[BODY]
    return await request.app[DEVICE].decide(request[PRINCIPAL], body.user_code, body.approve, request[CLIENT_IP])


@routes.get("/pending", summary="Device logins waiting for approval", tag=TAG, response=Page[DeviceRequest])
async def pending(request: web.Request) -> Page[DeviceRequest]:
    return Page[DeviceRequest](items=await request.app[DEVICE].pending(request[PRINCIPAL]), next_cursor=None)


def add_routes(app: web.Application) -> None:
    routes.add_to(app.router)
