"""Operations: health, readiness, metrics, the OpenAPI document and its Swagger UI."""

from __future__ import annotations

import asyncio
import hmac
import time
from importlib import resources
from pathlib import Path

import swagger_ui
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from daemon.api.openapi import build
from daemon.api.routing import Routes
from daemon.context import DB, ENDPOINTS, METRICS, READINESS, RUNTIME, SETTINGS
from daemon.pipeline.authentication import bearer_token
from shared.errors import ApiError, Code
from shared.models import Health

routes = Routes()
READY_TIMEOUT_S = 2.0
READY_REUSE_S = 1.0  # a probe every 2 s still sees a fresh answer


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


class _Check:
    """One run of every readiness check: its answer (the names down) and when it began."""

    def __init__(self, app: web.Application) -> None:
        self.began = time.monotonic()
        self.answer = asyncio.ensure_future(_run_checks(app))


async def _check_backends(app: web.Application) -> list[str]:
    """The backing services that are down. A check that began less than READY_REUSE_S ago, or is still
    running, answers every caller: each check is a round trip to each backend, and /readyz probes and
    /metrics scrapes (public by default) must not multiply them."""
    runtime = app[RUNTIME]
    check: _Check | None = runtime.readiness
    if check is None or time.monotonic() - check.began >= READY_REUSE_S:
        check = runtime.readiness = _Check(app)
    return await asyncio.shield(check.answer)  # a caller that gives up does not cancel it for the others


async def _run_checks(app: web.Application) -> list[str]:
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


def _require_metrics_token(request: web.Request) -> None:
    expected = request.app[SETTINGS].metrics_token
    if expected is None:
        return
    token = bearer_token(request) or ""
    if not hmac.compare_digest(token.encode(), expected.encode()):
        raise ApiError(Code.UNAUTHORIZED, "/metrics needs the metrics token (BASTION_METRICS_TOKEN)",
                       headers={"WWW-Authenticate": "Bearer"})


# Not rate limited: the limits live in Redis, and a scrape must answer while Redis is down (bastion_backend_up
# says so). A flood of scrapes costs one shared readiness check a second; BASTION_METRICS_TOKEN closes it.
@routes.get("/metrics", summary="Prometheus metrics", tag="operations", response=str, access="public", rate="",
    media_type="text/plain", errors=(401,))
async def metrics(request: web.Request) -> web.Response:
    _require_metrics_token(request)
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
