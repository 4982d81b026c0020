"""Stage 5: a bearer token becomes a Principal, and the route's access rule is enforced.

The token rules live in the auth service (the AUTHENTICATOR); this stage only finds the token where
it may be (the Authorization header, never the URL) and checks the route's declared access.
"""

from __future__ import annotations

from typing import Protocol

from aiohttp import web

from daemon.context import AUTHENTICATOR, PRINCIPAL
from daemon.api.routing import endpoint_of
from daemon.pipeline import Next
from daemon.services.principal import Principal
from daemon.stores.sql import reads_scoped_to
from shared.errors import ApiError, Code

_URL_TOKEN_PARAMS = ("access_token", "token", "api_key", "apikey")


class Authenticator(Protocol):
    async def authenticate(self, token: str) -> Principal:
        """Raise ApiError(unauthorized) for any token that is not good now."""


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(Code.UNAUTHORIZED, "expected 'Authorization: Bearer <token>'")
    return token.strip()


def authorize(principal: Principal | None, access: str, scope: str) -> None:
    """The route-level rule; object-level rules are the services' own."""
    if access in ("public", "optional"):
        return
    if principal is None:
        raise ApiError(Code.UNAUTHORIZED, "authentication required", headers={"WWW-Authenticate": "Bearer"})
    if not principal.can(scope):
        raise ApiError(Code.FORBIDDEN, f"this credential lacks the '{scope}' scope")
    if access == "admin" and not principal.is_admin:
        raise ApiError(Code.FORBIDDEN, "administrators only")


def authentication():
    @web.middleware
    async def middleware(request: web.Request, handler: Next) -> web.StreamResponse:
        spec = endpoint_of(request.match_info.handler)
        if spec is None:
            return await handler(request)
        if request.query_string and any(name in request.query for name in _URL_TOKEN_PARAMS):
            raise ApiError(Code.UNAUTHORIZED, "tokens are not accepted in the URL; use the Authorization header")
        token = bearer_token(request)
        principal = None
        if token is not None and spec.access != "public":
            principal = await request.app[AUTHENTICATOR].authenticate(token)
        request[PRINCIPAL] = principal
        authorize(principal, spec.access, spec.required_scope)
        # With a read replica, what this caller just wrote is read back from the primary for a moment.
        with reads_scoped_to(principal.user_id if principal else None):
            return await handler(request)

    return middleware
