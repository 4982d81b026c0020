"""/api/v1/admin/import: data moved in from another daemon (`bastiond import`), through the services, so
that every record raises the events and audit entries its ordinary creation would."""

from __future__ import annotations

from aiohttp import web

from daemon.api.routing import Routes
from daemon.context import BODY, CLIENT_IP, PRINCIPAL, USERS
from shared.models.transfer import ImportResult, ImportUsers

routes = Routes(prefix="/api/v1")
TAG = "admin"


@routes.post("/admin/import/users", summary="Add accounts exported from another daemon, password hashes included",
             tag=TAG, body=ImportUsers, response=ImportResult, access="admin")
async def import_users(request: web.Request) -> ImportResult:
    return await request.app[USERS].import_users(request[PRINCIPAL], request[BODY].users, request[CLIENT_IP])


def add_routes(app: web.Application) -> None:
    routes.add_to(app.router)
