"""Stage 3: helmet's default security headers on every response, and no Server version."""

from __future__ import annotations

from aiohttp import web
from multidict import CIMultiDict, istr

from daemon.pipeline import Next
from daemon.settings import Settings

# helmet's defaults (v7/v8), with its default Content-Security-Policy.
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';"
        "frame-ancestors 'self';img-src 'self' data:;object-src 'none';script-src 'self';"
        "script-src-attr 'none';style-src 'self' https: 'unsafe-inline';upgrade-insecure-requests"
    ),
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Origin-Agent-Cluster": "?1",
    "Referrer-Policy": "no-referrer",
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "X-Content-Type-Options": "nosniff",
    "X-DNS-Prefetch-Control": "off",
    "X-Download-Options": "noopen",
    "X-Frame-Options": "SAMEORIGIN",
    "X-Permitted-Cross-Domain-Policies": "none",
    "X-XSS-Protection": "0",
    # aiohttp would otherwise announce its own version here.
    "Server": "bastion",
}


_HEADERS = [(istr(name), value) for name, value in HEADERS.items()]  # case-folded once, not per request


def apply(headers: CIMultiDict[str]) -> None:
    """Adds them all (also to the WebSocket handshake). No response sets one of them itself, so they are
    added in one call rather than each after a look for the response's own (which cost a fifth of this
    stage's instructions, bench.instructions). A CSP a response did set would be enforced beside this one:
    it could only narrow what the page may do."""
    headers.extend(_HEADERS)


def _cors(origin: str) -> dict[str, str]:
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Credentials": "true",
        "Access-Control-Expose-Headers": "X-Request-ID, Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset",
        "Vary": "Origin",
    }


def security_headers(settings: Settings):
    """Also answers CORS: only the configured origins get CORS headers; `Origin: null` never does."""
    allowed = frozenset(settings.cors_origins)

    @web.middleware
    async def middleware(request: web.Request, handler: Next) -> web.StreamResponse:
        origin = request.headers.get("Origin", "")
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            response: web.StreamResponse = web.Response(status=204 if origin in allowed else 403)
            if origin in allowed:
                response.headers.update(_cors(origin))
                response.headers["Access-Control-Allow-Methods"] = "GET, POST, PATCH, DELETE"
                response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type, X-Request-ID"
                response.headers["Access-Control-Max-Age"] = "600"
        else:
            response = await handler(request)
        if not response.prepared:
            apply(response.headers)
            if origin in allowed:
                response.headers.update(_cors(origin))
        return response

    return middleware
