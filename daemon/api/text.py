"""/api/v1/embedders: the text embedding models this daemon can run (docs/api.md, Text search)."""

from __future__ import annotations

from aiohttp import web

from daemon.api.routing import Routes
from daemon.context import PRINCIPAL, TEXT
from shared.models.text import EmbedderList

routes = Routes(prefix="/api/v1")


@routes.get("/embedders", summary="The text embedding models this daemon knows, and which it can run",
            tag="vectors", response=EmbedderList)
async def list_embedders(request: web.Request) -> EmbedderList:
    return request.app[TEXT].list_embedders(request[PRINCIPAL])


def add_routes(app: web.Application) -> None:
    routes.add_to(app.router)
