"""/api/v1/admin/backups: the archives this daemon keeps, and taking one now."""

from __future__ import annotations

from aiohttp import web

from daemon.api.routing import Routes
from daemon.context import BACKUPS, CLIENT_IP, PRINCIPAL
from shared.models.backups import BackupList, BackupRun

routes = Routes(prefix="/api/v1")
TAG = "admin"


@routes.get("/admin/backups", summary="The backups in BASTION_BACKUP_DIR, and the latest run", tag=TAG,
            response=BackupList, access="admin")
async def list_backups(request: web.Request) -> BackupList:
    return request.app[BACKUPS].list()


@routes.post("/admin/backups", summary="Take a backup now (answers at once; GET shows when it is done)", tag=TAG,
             response=BackupRun, status=202, access="admin", errors=(409,))
async def run_backup(request: web.Request) -> BackupRun:
    return await request.app[BACKUPS].run(request[PRINCIPAL], request[CLIENT_IP])


def add_routes(app: web.Application) -> None:
    routes.add_to(app.router)
