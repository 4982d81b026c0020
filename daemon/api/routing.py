"""Routes with the metadata the pipeline and the OpenAPI document both read.

A handler declares, once, what it takes (body and query models), what it answers (model and status),
who may call it and how it is rate limited. The validation and authentication middlewares read that
declaration from `request.match_info.handler`, and `api/openapi.py` turns the same declarations into
the OpenAPI document, so the docs cannot drift from what the code enforces.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel

Handler = Callable[[web.Request], Awaitable[Any]]
Access = Literal["public", "optional", "user", "admin"]

_SPEC_ATTR = "__bastion_endpoint__"


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: Any = None  # a model or type; None means no body (204)
    status: int = 200
    access: Access = "user"
    scope: str | None = None  # API-key scope needed; by default read for GET, write otherwise
    rate: str = "api"  # the rate-limit class, see pipeline/rate_limit.py
    max_body: int | str | None = None  # overrides the default body limit: bytes, or the name of a Settings field
    # How the body's bytes become what the body model validates; None: orjson.loads. It must raise
    # orjson.JSONDecodeError where orjson.loads would (pipeline/vector_json.py).
    decode: Callable[[bytes | bytearray], Any] | None = None
    errors: tuple[int, ...] = ()  # error statuses worth documenting beyond the usual ones
    media_type: str = "application/json"  # of the success response

    @property
    def required_scope(self) -> str:
        if self.scope:
            return self.scope
        if self.access == "admin":
            return "admin"
        return "read" if self.method in ("GET", "HEAD") else "write"


def endpoint_of(handler: Any) -> Endpoint | None:
    return getattr(handler, _SPEC_ATTR, None)


@dataclass
class Routes:
    """Like `web.RouteTableDef`, keeping an `Endpoint` for each route."""

    prefix: str = ""
    endpoints: list[Endpoint] = field(default_factory=list)

    def route(self, method: str, path: str, *, summary: str, tag: str, **options: Any) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            spec = Endpoint(method, self.prefix + path, handler, summary, tag, **options)
            setattr(handler, _SPEC_ATTR, spec)
            self.endpoints.append(spec)
            return handler

        return register

    def get(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self.route("GET", path, **options)

    def post(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self.route("POST", path, **options)

    def patch(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self.route("PATCH", path, **options)

    def delete(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self.route("DELETE", path, **options)

    def add_to(self, router: web.UrlDispatcher) -> None:
        for spec in self.endpoints:
            router.add_route(spec.method, _excluding_literals(spec.path, self.endpoints), spec.handler)


def _excluding_literals(path: str, endpoints: list[Endpoint]) -> str:
    """`/users/{id}` as aiohttp should match it: never where another route has a literal segment
    (`/users/me`). Otherwise `DELETE /users/me` would reach the `{id}` handler with id "me", and a 405
    on `/users/me` would list the methods of `/users/{id}` in its Allow header."""
    segments = path.split("/")
    for i, segment in enumerate(segments):
        if not (segment.startswith("{") and segment.endswith("}")):
            continue
        literals = sorted({
            other[i] for other in (e.path.split("/") for e in endpoints)
            if len(other) > i and other[:i] == segments[:i] and not other[i].startswith("{")
        })
        if literals:
            excluded = "|".join(re.escape(literal) for literal in literals)
            segments[i] = f"{{{segment[1:-1]}:(?!(?:{excluded})$)[^/]+}}"
    return "/".join(segments)
