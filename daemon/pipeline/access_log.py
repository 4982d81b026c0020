"""Stage 2 (request) and last (response): one structured log line and the metrics for each request.

It records the route template, not the raw path, so ids in URLs neither leak into logs nor explode the
metrics' label sets. It never logs headers, query strings or bodies: that is where tokens and
passwords travel.
"""

from __future__ import annotations

import logging
import time

from aiohttp import web

from daemon.context import CLIENT_IP, METRICS, PRINCIPAL, REQUEST_ID
from daemon.pipeline import Next

log = logging.getLogger("bastion.access")


def route_template(request: web.Request) -> str:
    route = request.match_info.route
    resource = route.resource
    if resource is None:
        return "unmatched"
    return resource.canonical


def access_log():
    @web.middleware
    async def middleware(request: web.Request, handler: Next) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:  # only possible if raised outside the error stage
            status = exc.status
            raise
        finally:
            latency = time.perf_counter() - started
            route = route_template(request)
            request.app[METRICS].requests.observe(request.method, route, status, latency)
            if log.isEnabledFor(logging.INFO):
                principal = request.get(PRINCIPAL)
                log.info(
                    "request",
                    extra={
                        "request_id": request.get(REQUEST_ID),
                        "method": request.method,
                        "route": route,
                        "status": status,
                        "latency_ms": round(latency * 1000, 3),
                        "user_id": principal.user_id if principal else None,
                        "ip": request.get(CLIENT_IP),
                    },
                )

    return middleware
