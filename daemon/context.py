"""The typed keys under which the app keeps its shared objects."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from daemon.api.routing import Endpoint
from daemon.metrics import Metrics
from daemon.settings import Settings
from daemon.stores.cache import Cache
from daemon.stores.events import EventBus
from daemon.stores.secrets import SecretStore
from daemon.stores.sql import Database

@dataclass
class Runtime:
    """The app's few mutable flags (an app's own mapping is frozen once it runs)."""

    shutting_down: bool = False
    openapi: dict | None = None
    readiness: Any = None  # api.ops: the last readiness check, shared for a moment by /readyz and /metrics


SETTINGS = web.AppKey("settings", Settings)
DB = web.AppKey("db", Database)
CACHE = web.AppKey("cache", Cache)
EVENTS = web.AppKey("events", EventBus)
SECRETS = web.AppKey("secrets", SecretStore)
METRICS = web.AppKey("metrics", Metrics)
ENDPOINTS = web.AppKey("endpoints", list[Endpoint])
# Turns a bearer token into a Principal; the auth service fills it (pipeline/authentication.py).
AUTHENTICATOR = web.AppKey("authenticator", Any)
# Named checks that /readyz runs: name -> coroutine function raising when the service is down.
READINESS = web.AppKey("readiness", dict)
RUNTIME = web.AppKey("runtime", Runtime)
# The redis.asyncio client the Redis-backed stores share, or None when state is in-process.
REDIS = web.AppKey("redis", Any)

# The services (daemon/services/), built once the stores are open.
AUTH = web.AppKey("auth", Any)  # services.auth.Auth
USERS = web.AppKey("users", Any)  # services.users.Users
AUDIT = web.AppKey("audit", Any)  # services.audit.Audit
MFA = web.AppKey("mfa", Any)  # services.mfa.Mfa
DEVICE = web.AppKey("device", Any)  # services.device.DeviceLogins
MAIL = web.AppKey("mail", Any)  # services.mail.Mail: reset and verification links by mail
OIDC = web.AppKey("oidc", Any)  # services.oidc.Oidc, or None without single sign-on
PASSKEYS = web.AppKey("passkeys", Any)  # services.passkeys.Passkeys, or None without BASTION_WEBAUTHN_ORIGINS
WEB_SESSIONS = web.AppKey("web_sessions", Any)  # services.web_sessions.WebSessions
VECTORS = web.AppKey("vectors", Any)  # services.vectors.VectorService
TEXT = web.AppKey("text", Any)  # services.text.TextService
FEED = web.AppKey("feed", Any)  # services.realtime.Feed: the event bus as the WebSocket gateway sees it
BACKUPS = web.AppKey("backups", Any)  # services.backups.Backups
GATEWAY = web.AppKey("gateway", Any)  # api.realtime.Gateway: the open WebSockets

# Per-request values the pipeline stages hand on to the handler.
REQUEST_ID = web.RequestKey("request_id", str)
CLIENT_IP = web.RequestKey("client_ip", str)
PRINCIPAL = web.RequestKey("principal", Any)  # a services.principal.Principal, or None
BODY = web.RequestKey("body", Any)  # the route's body model, validated
QUERY = web.RequestKey("query", Any)  # the route's query model, validated
