"""The request pipeline: one middleware per stage, listed here in the order requests meet them.

aiohttp nests middlewares like an onion: the first listed sees the request first and the response
last. So the response stages of the design (error handling → transform → logging) appear here inside
out: the transform sits next to the handler, the error stage wraps everything that can raise
(rate limiting, authentication, validation, the handler), and the access log wraps it all, so it sees
the final status of every request, errors included.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

Next = Callable[[web.Request], Awaitable[web.StreamResponse]]


def pipeline(settings) -> list:
    from daemon.pipeline.access_log import access_log
    from daemon.pipeline.authentication import authentication
    from daemon.pipeline.errors import error_handling
    from daemon.pipeline.rate_limit import rate_limit
    from daemon.pipeline.request_context import request_context
    from daemon.pipeline.security_headers import security_headers
    from daemon.pipeline.transform import response_transform
    from daemon.pipeline.validation import validation

    return [
        request_context(settings),  # request id, client address
        access_log(),  # one JSON line + metrics per request, whatever happened inside
        security_headers(settings),  # on every response, errors included
        error_handling(),  # every exception below becomes problem+json
        rate_limit(settings),
        authentication(),
        validation(settings),
        response_transform(),  # models to JSON, next to the handler
    ]
