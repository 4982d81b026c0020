"""Operations: health, readiness, metrics, the OpenAPI document and its Swagger UI."""

from __future__ import annotations

import asyncio
from importlib import resources
from pathlib import Path

import swagger_ui
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from daemon.api.openapi import build
from daemon.api.routing import Routes
from daemon.context import DB, ENDPOINTS, METRICS, READINESS, RUNTIME
from shared.errors import ApiError, Code
from shared.models import Health

routes = Routes()
READY_TIMEOUT_S = 2.0


@routes.get("/healthz", summary="The process is running", tag="operations", response=Health, access="public", rate="")
async def healthz(request: web.Request) -> Health:
    return Health(status="ok")


@routes.get(
    "/readyz", summary="Every backing service answers", tag="operations", response=Health, access="public", rate=""
)
async def readyz(request: web.Request) -> Health:
    if request.app[RUNTIME].shutting_down:
        # Draining (cli.py): answered at once, whatever the backends say, so load balancers move away.
        raise ApiError(
            Code.SERVICE_UNAVAILABLE, "not ready: shutting down; this instance takes no new traffic",
            headers={"Retry-After": "5"},
        )
    names = list(request.app[READINESS])
    down = await _check_backends(request.app)
    if down:
        raise ApiError(Code.SERVICE_UNAVAILABLE, f"not ready: {', '.join(down)}", headers={"Retry-After": "5"})
    return Health(status="ok", checks={name: "ok" for name in names})


async def _check_backends(app: web.Application) -> list[str]:
    """Run every readiness check at once, record each in bastion_backend_up, return those down."""
    checks = app[READINESS]
    names = list(checks)
    results = await asyncio.gather(
        *(asyncio.wait_for(checks[name](), READY_TIMEOUT_S) for name in names), return_exceptions=True
    )
    down = [name for name, result in zip(names, results) if isinstance(result, BaseException)]
    for name in names:
        app[METRICS].backend_up.labels(name).set(0 if name in down else 1)
    return down


@routes.get("/metrics", summary="Prometheus metrics", tag="operations", response=str, access="public", rate="",
    media_type="text/plain")
async def metrics(request: web.Request) -> web.Response:
    app_metrics = request.app[METRICS]
    for state, count in request.app[DB].pool_stats().items():  # size, in_use (and replica_* with a replica)
        app_metrics.db_pool.labels(state).set(count)
    # Health is measured at scrape time too, so the gauges are fresh even where nothing polls /readyz.
    await _check_backends(request.app)
    body = generate_latest(app_metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


@routes.get("/openapi.json", summary="This document", tag="operations", response=dict, access="public", rate="")
async def openapi(request: web.Request) -> dict:
    return _document(request.app)


def _document(app: web.Application) -> dict:
    from daemon import __version__

    runtime = app[RUNTIME]
    if runtime.openapi is None:
        runtime.openapi = build(app[ENDPOINTS], __version__)
    return runtime.openapi

SWAGGER_ASSETS = Path(swagger_ui.__file__).parent / "static"


async def docs(request: web.Request) -> web.Response:
    page = resources.files("daemon.web").joinpath("docs.html").read_text()
    return web.Response(text=page, content_type="text/html", charset="utf-8")


async def swagger_asset(request: web.Request) -> web.FileResponse:
    name = request.match_info["name"]
    if name not in ("swagger-ui-bundle.js", "swagger-ui.css", "docs-init.js", "favicon-32x32.png"):
        raise web.HTTPNotFound()
    if name == "docs-init.js":
        return web.FileResponse(Path(str(resources.files("daemon.web").joinpath("docs-init.js"))))
    return web.FileResponse(SWAGGER_ASSETS / name)


def add_routes(app: web.Application) -> None:
    routes.add_to(app.router)
    app.router.add_get("/docs", docs)
    app.router.add_get("/docs/assets/{name}", swagger_asset)
