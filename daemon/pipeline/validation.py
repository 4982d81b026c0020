"""Stage 6: the body and the query are parsed into the route's declared pydantic models.

The handler then reads `request[BODY]` and `request[QUERY]`, already valid. Checks run in the
order a client would want to hear about them: size (413), media type (415), JSON syntax (400),
fields (422, naming each one).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError

from daemon.context import BODY, QUERY
from daemon.api.routing import endpoint_of
from daemon.pipeline import Next
from daemon.pipeline.errors import field_errors
from daemon.settings import Settings
from shared.errors import ApiError, Code


M = TypeVar("M", bound=BaseModel)


def validated(model: type[M], data: object, what: str) -> M:
    """`data` as `model`, or the contract's 422 naming each field: the API and the web view's forms."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(Code.VALIDATION_FAILED, f"the {what} is not valid", errors=field_errors(exc)) from None


def _too_large(limit: int) -> ApiError:
    return ApiError(Code.PAYLOAD_TOO_LARGE, f"the body is over the limit of {limit} bytes")


async def parse_body(request: web.Request, model: type[BaseModel], limit: int,
                     decode: Callable[[bytes | bytearray], Any] = orjson.loads) -> BaseModel:
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)
    if request.content_type != "application/json":
        raise ApiError(Code.UNSUPPORTED_MEDIA_TYPE, "send the body as application/json")
    # Read in chunks and stop at the route's own limit: a chunked body (no Content-Length) must not be
    # buffered up to the app-wide maximum (the largest limit of any route) before it is refused.
    raw = bytearray()
    async for chunk in request.content.iter_chunked(1 << 16):
        raw += chunk
        if len(raw) > limit:
            raise _too_large(limit)
    try:
        # orjson refuses invalid UTF-8 and nesting deeper than 1024 levels, bounding the work.
        data = decode(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(Code.INVALID_JSON, f"the body is not valid JSON: {exc.msg}") from None
    return validated(model, data, "body")


def parse_query(request: web.Request, model: type[BaseModel]) -> BaseModel:
    values: dict[str, object] = {}
    for key in request.query:
        found = request.query.getall(key)
        values[key] = found if len(found) > 1 else found[0]
    return validated(model, values, "query")


def validation(settings: Settings):
    @web.middleware
    async def middleware(request: web.Request, handler: Next) -> web.StreamResponse:
        spec = endpoint_of(request.match_info.handler)
        if spec is not None:
            if spec.query is not None:
                request[QUERY] = parse_query(request, spec.query)
            if spec.body is not None:
                limit = spec.max_body or settings.max_body_bytes
                if isinstance(limit, str):  # a setting's name, e.g. "max_upsert_bytes"
                    limit = getattr(settings, limit)
                request[BODY] = await parse_body(request, spec.body, limit, spec.decode or orjson.loads)
        return await handler(request)

    return middleware
