"""create_app(settings): the wiring, and nothing else.

Every store and background task opens and closes in `cleanup_ctx`, in the order they depend on each
other, so start-up reads top to bottom here and shutdown runs the same list backwards.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from daemon.api import auth as auth_api
from daemon.api import collections as collections_api
from daemon.api import device as device_api
from daemon.api import mail as mail_api
from daemon.api import mfa as mfa_api
from daemon.api import ops
from daemon.api import realtime
from daemon.api import text as text_api
from daemon.api import backups as backups_api
from daemon.api import transfer as transfer_api
from daemon.api import users as users_api
from daemon.api import webview
from daemon.bootstrap import FIRST_RUN_HINT
from daemon.context import AUDIT, BACKUPS, AUTH, AUTHENTICATOR, DEVICE, MAIL, MFA, OIDC, PASSKEYS, USERS, CACHE, DB, ENDPOINTS, EVENTS, FEED, METRICS, READINESS, REDIS, RUNTIME, SECRETS, SETTINGS, TEXT, VECTORS, WEB_SESSIONS, Runtime
from daemon.metrics import Metrics
from daemon.pipeline import pipeline
from daemon.services.realtime import Feed
from daemon.services.text import TextService
from daemon.services.backups import Backups
from daemon.services.vector_follower import VectorFollower
from daemon.services.vectors import VectorService
from daemon.services.wiring import build_account_services
from daemon.settings import Settings
from daemon.stores.cache.memory import MemoryCache
from daemon.stores.data_dir import make_private
from daemon.stores import redis_connect
from daemon.stores.cache.redis import RedisCache
from daemon.stores.events import Event
from daemon.stores.events.memory import MemoryEventBus
from daemon.stores.embedders import Embedders
from daemon.stores.events.redis import RedisEventBus
from daemon.stores.secrets import database_urls, open_secrets, shared_secrets
from daemon.stores.sql import open_database
from daemon.stores.sql.migrate import migrate, pending
from daemon.stores.vectors import open_vector_store
from daemon.stores.vectors.catalog import Catalog
from daemon.stores.vectors.replicated import ReplicatedVectorStore

log = logging.getLogger("bastion")


async def _data_dir(app: web.Application) -> AsyncIterator[None]:
    # Before anything writes there: the data directory and everything in it private (0700, 0600).
    found = await asyncio.to_thread(make_private, app[SETTINGS].data_dir)
    for path in found.fixed:
        log.warning("the data directory was open to other users; made private", extra={"path": str(path)})
    for path in found.not_ours:
        log.warning("the data directory is open to other users and not ours to change", extra={"path": str(path)})
    yield


async def _secrets(app: web.Application) -> AsyncIterator[None]:
    # First: a configured Vault that does not answer stops the start here, with one clear line.
    store = await open_secrets(app[SETTINGS])
    app[SECRETS] = store
    app[READINESS]["secrets"] = store.ping
    try:
        yield
    finally:
        await store.close()


async def _database(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    url, read_url = await database_urls(settings, app[SECRETS])
    db = await open_database(
        url, settings.sqlite_path, settings.database_pool_size, read_url, settings.read_your_writes_ms / 1000
    )
    try:
        if settings.auto_migrate:
            applied = await migrate(db)
            if applied:
                log.info("migrations applied", extra={"versions": [m.version for m in applied]})
        elif await pending(db):
            log.warning("the database schema is behind; run `bastiond migrate`")
        app[DB] = db
        app[READINESS]["database"] = db.ping
        # With PostgreSQL and no Vault the signing keys live in the database, which every replica shares.
        app[SECRETS] = shared_secrets(settings, app[SECRETS], db)
        yield
    finally:
        await db.close()


async def _redis(app: web.Application) -> AsyncIterator[None]:
    """One client for every Redis-backed store, when Redis is configured; else in-process state."""
    settings = app[SETTINGS]
    client = redis_connect.connect(settings, decode_responses=True) if redis_connect.configured(settings) else None
    app[REDIS] = client
    if client is not None:
        app[READINESS]["redis"] = RedisCache(client).ping
    try:
        yield
    finally:
        if client is not None:
            await redis_connect.close(client)


async def _cache(app: web.Application) -> AsyncIterator[None]:
    client = app[REDIS]
    cache = RedisCache(client, app[SETTINGS].redis_prefix) if client is not None else MemoryCache()
    app[CACHE] = cache
    if client is None:
        app[READINESS]["cache"] = cache.ping
    try:
        yield
    finally:
        await cache.close()


async def _events(app: web.Application) -> AsyncIterator[None]:
    settings, client, metrics = app[SETTINGS], app[REDIS], app[METRICS]

    def count(event: Event) -> None:
        metrics.events.labels(event.event).inc()

    if client is not None:
        bus = await RedisEventBus.open(client, settings.redis_prefix, settings.event_history, on_publish=count)
    else:
        bus = MemoryEventBus(settings.event_history, on_publish=count)
    app[EVENTS] = bus
    app[FEED] = Feed(bus)
    try:
        yield
    finally:
        await bus.close()


async def _reload_signing_keys(auth, every_s: float) -> None:
    """Picks up a key added by `bastiond rotate-signing-key`, so that it starts signing here too."""
    while True:
        await asyncio.sleep(every_s)
        try:
            await auth.reload_keys()
        except Exception:
            log.warning("could not reload the signing keys; keeping the current ones", exc_info=True)


async def _account_services(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    services = await build_account_services(settings, app[DB], app[CACHE], app[EVENTS], app[SECRETS])
    app[AUTH], app[USERS], app[AUDIT], app[MFA] = services.auth, services.users, services.audit, services.mfa
    app[DEVICE] = services.device
    app[AUTHENTICATOR] = services.auth
    app[WEB_SESSIONS] = services.web_sessions
    app[OIDC] = services.oidc
    app[MAIL] = services.mail
    app[PASSKEYS] = services.passkeys
    await services.sessions.warm()
    if await services.users.count() == 0:
        log.warning(FIRST_RUN_HINT)
    tasks = [asyncio.create_task(_reload_signing_keys(services.auth, settings.signing_key_reload_s)),
             asyncio.create_task(services.sessions.follow(), name="revocation-mirror"),
             asyncio.create_task(services.user_cache.follow(), name="user-cache")]
    if services.mail.configured:
        tasks.append(asyncio.create_task(services.mail.run(), name="mail"))
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        if services.mail.configured:
            # Waited for: a send cut short closes its SMTP connection before the loop goes.
            await asyncio.gather(tasks[-1], return_exceptions=True)
        if services.oidc is not None:
            await services.oidc.close()
        services.close()


async def _text(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    embedders = Embedders(settings.embed_model_dir, settings.embed_threads)  # models load at first use
    app[TEXT] = TextService(embedders)
    try:
        yield
    finally:
        await asyncio.to_thread(embedders.close)  # waits for a batch being embedded


async def _vectors(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    store = open_vector_store(
        settings.vector_backend, app[DB], settings.data_dir / "vectors", settings.vector_exact_max,
        settings.pinecone_api_key, settings.pinecone_host,
    )
    # On PostgreSQL other replicas write the collections table too; on SQLite this daemon alone does.
    service = VectorService(Catalog(app[DB]), store, app[EVENTS], app[TEXT],
                            keep_rows=app[DB].dialect != "postgresql")
    follower = None
    try:
        await service.warm()
        app[METRICS].registry.register(collections_api.IndexMetrics(service))
        if isinstance(store, ReplicatedVectorStore):  # PostgreSQL: other replicas write to the same table
            follower = asyncio.create_task(
                VectorFollower(store, app[EVENTS], registry=app[METRICS].registry).run(), name="vector-follower")
        app[VECTORS] = service
        app[READINESS]["vectors"] = store.ping
        yield
    finally:
        if follower is not None:
            follower.cancel()
            await asyncio.gather(follower, return_exceptions=True)  # not mid-catch-up when the store closes
        await store.close()


async def _backups(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    backups = Backups(settings, app[AUDIT])
    app[BACKUPS] = backups
    schedule = asyncio.create_task(backups.every(settings.backup_every_s), name="backups") if settings.backup_every_s else None
    try:
        yield
    finally:
        if schedule is not None:
            schedule.cancel()
        await backups.close()


async def _on_shutdown(app: web.Application) -> None:
    app[RUNTIME].shutting_down = True


def create_app(settings: Settings) -> web.Application:
    app = web.Application(
        middlewares=pipeline(settings),
        # The largest body any route takes; each route's own limit is checked in validation.
        client_max_size=max(settings.max_body_bytes, settings.max_upsert_bytes),
        # access_log=None: our own access log replaces aiohttp's, which would record query strings.
        # keepalive_timeout: aiohttp's default (3630 s) would let a slow-loris connection, one that never
        # finishes its request head, hold a socket for an hour; the timer runs from the connection's start.
        handler_args={"max_field_size": 16384, "max_line_size": 16384, "access_log": None,
                      "keepalive_timeout": settings.keepalive_timeout_s},
    )
    app[SETTINGS] = settings
    app[METRICS] = Metrics()
    app[READINESS] = {}
    app[RUNTIME] = Runtime()
    app[ENDPOINTS] = []
    app[AUTHENTICATOR] = None

    app.cleanup_ctx.append(_data_dir)
    app.cleanup_ctx.append(_secrets)
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_redis)
    app.cleanup_ctx.append(_cache)
    app.cleanup_ctx.append(_events)
    app.cleanup_ctx.append(_account_services)
    app.cleanup_ctx.append(_text)
    app.cleanup_ctx.append(_vectors)
    app.cleanup_ctx.append(_backups)
    app.cleanup_ctx.append(realtime.run_gateway)
    app.on_shutdown.append(_on_shutdown)
    app.on_shutdown.append(realtime.on_shutdown)  # 1001 to every WebSocket

    for module in (ops, auth_api, mfa_api, device_api, mail_api, users_api, collections_api, text_api, transfer_api, backups_api, realtime):
        module.add_routes(app)
        app[ENDPOINTS].extend(module.routes.endpoints)
    webview.add_routes(app)  # the HTML pages are not API routes: kept out of ENDPOINTS and /openapi.json
    return app
