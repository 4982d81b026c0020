"""Stage 1: the request id, and the client's address; and, while draining, the end of the connection.

A well-formed incoming X-Request-ID is kept so that a caller can follow its request through our logs;
anything else is replaced. The client address comes from X-Forwarded-For only when the direct peer is a
proxy named in BASTION_TRUSTED_PROXIES; otherwise anyone could pick the address their limits count on.

While draining (cli.py), every answer ends its connection: a keep-alive connection would keep a client
here past the load balancer's choice (kube-proxy balances connections, not requests). This is done here
rather than in an `on_response_prepare` hook, which aiohttp would await for every response.
"""

from __future__ import annotations

import ipaddress
import itertools
import re
import secrets

from aiohttp import web

from daemon.context import CLIENT_IP, REQUEST_ID, RUNTIME
from daemon.pipeline import Next
from daemon.settings import Settings

_WELL_FORMED = re.compile(r"[A-Za-z0-9._:-]{8,128}")


def _request_ids():
    # Unique, not secret: a random per-process prefix and a counter (uuid4 per request cost ~10% of
    # a small request's time).
    prefix = secrets.token_hex(8)
    for n in itertools.count():
        yield f"{prefix}{n:016x}"


def _is_trusted(address: str, trusted: tuple) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def client_ip(request: web.Request, trusted: tuple) -> str:
    peer = request.remote or ""
    if not trusted or not _is_trusted(peer, trusted):
        return peer
    hops = [h.strip() for h in ",".join(request.headers.getall("X-Forwarded-For", [])).split(",") if h.strip()]
    # Walk from the nearest hop back; the first address that is not one of our proxies is the client.
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted):
            return hop
    return hops[0] if hops else peer


def request_context(settings: Settings):
    trusted = settings.trusted_proxies
    ids = _request_ids()

    @web.middleware
    async def middleware(request: web.Request, handler: Next) -> web.StreamResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _WELL_FORMED.fullmatch(incoming) else next(ids)
        request[REQUEST_ID] = request_id
        request[CLIENT_IP] = client_ip(request, trusted)
        response = await handler(request)
        if not response.prepared:
            response.headers["X-Request-ID"] = request_id
        if request.app[RUNTIME].shutting_down:
            response.force_close()  # before prepare: with `Connection: close`; after: closed all the same
        return response

    return middleware
