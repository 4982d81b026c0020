"""Stage 7: what a handler returns (a model, a list, a dict, or None) becomes the HTTP response."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web
from pydantic import BaseModel

from daemon.api.routing import endpoint_of
from daemon.pipeline import Next


def _default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    raise TypeError(f"cannot serialise {type(value).__name__}")


def json_response(value: Any, status: int = 200) -> web.Response:
    if isinstance(value, BaseModel):
        body = value.__pydantic_serializer__.to_json(value)
    else:
        body = orjson.dumps(value, default=_default)
    return web.Response(body=body, status=status, content_type="application/json", charset="utf-8")


def response_transform():
    @web.middleware
    async def middleware(request: web.Request, handler: Next) -> web.StreamResponse:
        result = await handler(request)
        if isinstance(result, web.StreamResponse):
            return result
        spec = endpoint_of(request.match_info.handler)
        if result is None:
            return web.Response(status=204)
        return json_response(result, spec.status if spec else 200)

    return middleware
