"""The error stage: every exception becomes problem+json (RFC 9457) with a stable code.

An unexpected exception is logged here, once, with its traceback and the request id, and answered
500 `internal` with nothing of the traceback or the SQL in the body.
"""

from __future__ import annotations

import asyncio
import logging

import orjson
from aiohttp import web
from pydantic import ValidationError

from daemon.context import REQUEST_ID
from daemon.pipeline import Next
from daemon.stores.errors import Unavailable
from shared.errors import ApiError, Code, FieldError, problem_type, unavailable

log = logging.getLogger("bastion.errors")

_BY_STATUS = {
    400: Code.INVALID_JSON,
    401: Code.UNAUTHORIZED,
    403: Code.FORBIDDEN,
    404: Code.NOT_FOUND,
    405: Code.METHOD_NOT_ALLOWED,
    409: Code.CONFLICT,
    413: Code.PAYLOAD_TOO_LARGE,
    415: Code.UNSUPPORTED_MEDIA_TYPE,
    422: Code.VALIDATION_FAILED,
    429: Code.RATE_LIMITED,
    431: Code.HEADERS_TOO_LARGE,
    503: Code.SERVICE_UNAVAILABLE,
}


# A body of 100,000 bad elements must not earn an answer with 100,000 complaints (megabytes).
MAX_FIELD_ERRORS = 20


def field_errors(exc: ValidationError, prefix: str = "") -> list[FieldError]:
    errors = []
    items = exc.errors(include_url=False, include_input=False)
    for item in items[:MAX_FIELD_ERRORS]:
        path = ".".join(str(part) for part in item["loc"])
        errors.append(FieldError(field=f"{prefix}{path}" if path else prefix.rstrip(".") or "body", message=item["msg"]))
    if len(items) > MAX_FIELD_ERRORS:
        errors.append(FieldError(field=prefix.rstrip(".") or "body",
                                 message=f"{len(items) - MAX_FIELD_ERRORS} more errors not listed"))
    return errors


def problem_response(error: ApiError, request_id: str | None) -> web.Response:
    body = {
        "type": problem_type(error.code),
        "title": error.title,
        "status": error.status,
        "detail": error.detail or error.title,
        "code": str(error.code),
        "request_id": request_id,
    }
    body.update((name, value) for name, value in error.extra.items() if name not in body)
    if error.errors:
        body["errors"] = [{"field": e.field, "message": e.message} for e in error.errors]
    response = web.Response(
        body=orjson.dumps(body), status=error.status, content_type="application/problem+json", charset="utf-8"
    )
    response.headers.update(error.headers)
    return response


def _from_http(exc: web.HTTPException) -> ApiError:
    code = _BY_STATUS.get(exc.status, Code.INTERNAL if exc.status >= 500 else Code.VALIDATION_FAILED)
    headers = {}
    if exc.status == 405 and "Allow" in exc.headers:
        headers["Allow"] = exc.headers["Allow"]
    detail = {404: "no such route", 405: "method not allowed on this route"}.get(exc.status, exc.reason)
    return ApiError(code, detail, headers=headers)


def error_handling():
    @web.middleware
    async def middleware(request: web.Request, handler: Next) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as exc:
            error = exc
        except web.HTTPException as exc:
            if exc.status < 400:
                raise  # redirects are answers, not errors
            error = _from_http(exc)
        except ValidationError as exc:
            error = ApiError(Code.VALIDATION_FAILED, "the request is not valid", errors=field_errors(exc))
        except Unavailable as exc:
            log.warning("backing service unavailable", extra={"request_id": request.get(REQUEST_ID), "service": exc.service})
            error = unavailable(exc.service)
        except (asyncio.CancelledError, ConnectionResetError):
            raise  # the client went away; there is nobody to answer
        except Exception:
            log.exception("unhandled error", extra={"request_id": request.get(REQUEST_ID)})
            error = ApiError(Code.INTERNAL, "an internal error occurred; quote the request id when reporting it")
        return problem_response(error, request.get(REQUEST_ID))

    return middleware
