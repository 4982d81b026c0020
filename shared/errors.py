"""The stable error codes of docs/api.md and the exception that carries them.

Services raise `ApiError`; the daemon's error middleware renders it as problem+json, and the client
library raises the same class when it reads a problem back, so callers on both sides match on `code`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Code(StrEnum):
    INVALID_JSON = "invalid_json"
    UNAUTHORIZED = "unauthorized"
    INVALID_CREDENTIALS = "invalid_credentials"
    TOKEN_REUSED = "token_reused"
    MFA_REQUIRED = "mfa_required"
    MFA_ENROLMENT_REQUIRED = "mfa_enrolment_required"
    INVALID_MFA_CODE = "invalid_mfa_code"
    PASSKEY_REFUSED = "passkey_refused"
    # RFC 8628's answers to a device polling for its tokens (section 3.5): 400 with these codes.
    AUTHORIZATION_PENDING = "authorization_pending"
    SLOW_DOWN = "slow_down"
    EXPIRED_TOKEN = "expired_token"
    ACCESS_DENIED = "access_denied"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    CONFLICT = "conflict"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    HEADERS_TOO_LARGE = "headers_too_large"
    VALIDATION_FAILED = "validation_failed"
    RATE_LIMITED = "rate_limited"
    SERVICE_UNAVAILABLE = "service_unavailable"
    INTERNAL = "internal"


STATUS: dict[Code, int] = {
    Code.INVALID_JSON: 400,
    Code.UNAUTHORIZED: 401,
    Code.INVALID_CREDENTIALS: 401,
    Code.TOKEN_REUSED: 401,
    Code.MFA_REQUIRED: 401,
    Code.MFA_ENROLMENT_REQUIRED: 401,
    Code.INVALID_MFA_CODE: 401,
    Code.PASSKEY_REFUSED: 401,
    Code.AUTHORIZATION_PENDING: 400,
    Code.SLOW_DOWN: 400,
    Code.EXPIRED_TOKEN: 400,
    Code.ACCESS_DENIED: 400,
    Code.FORBIDDEN: 403,
    Code.NOT_FOUND: 404,
    Code.METHOD_NOT_ALLOWED: 405,
    Code.CONFLICT: 409,
    Code.PAYLOAD_TOO_LARGE: 413,
    Code.UNSUPPORTED_MEDIA_TYPE: 415,
    Code.HEADERS_TOO_LARGE: 431,
    Code.VALIDATION_FAILED: 422,
    Code.RATE_LIMITED: 429,
    Code.SERVICE_UNAVAILABLE: 503,
    Code.INTERNAL: 500,
}

TITLE: dict[Code, str] = {
    Code.INVALID_JSON: "The body is not valid JSON",
    Code.UNAUTHORIZED: "Authentication required",
    Code.INVALID_CREDENTIALS: "Invalid email or password",
    Code.TOKEN_REUSED: "Refresh token reused; the session is revoked",
    Code.MFA_REQUIRED: "A second factor is required",
    Code.MFA_ENROLMENT_REQUIRED: "Set up a second factor to log in",
    Code.INVALID_MFA_CODE: "The code is wrong or already used",
    Code.PASSKEY_REFUSED: "The passkey was not accepted",
    Code.AUTHORIZATION_PENDING: "Not approved yet",
    Code.SLOW_DOWN: "Polling too fast",
    Code.EXPIRED_TOKEN: "The device code has expired",
    Code.ACCESS_DENIED: "The request was denied",
    Code.FORBIDDEN: "Not allowed",
    Code.NOT_FOUND: "Not found",
    Code.METHOD_NOT_ALLOWED: "Method not allowed",
    Code.CONFLICT: "Conflict",
    Code.PAYLOAD_TOO_LARGE: "Payload too large",
    Code.UNSUPPORTED_MEDIA_TYPE: "Unsupported media type",
    Code.HEADERS_TOO_LARGE: "Request headers too large",
    Code.VALIDATION_FAILED: "Validation failed",
    Code.RATE_LIMITED: "Too many requests",
    Code.SERVICE_UNAVAILABLE: "Service unavailable",
    Code.INTERNAL: "Internal error",
}


@dataclass
class FieldError:
    field: str
    message: str


@dataclass
class ApiError(Exception):
    """An error with a stable code; `headers` carries e.g. Retry-After or Allow, and `extra` members of the
    problem body beyond RFC 9457's (the `mfa_token` of `mfa_required`)."""

    code: Code
    detail: str = ""
    errors: list[FieldError] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.code, self.detail)

    @property
    def status(self) -> int:
        return STATUS[self.code]

    @property
    def title(self) -> str:
        return TITLE[self.code]

    def __str__(self) -> str:
        return f"{self.code}: {self.detail or self.title}"


def problem_type(code: Code) -> str:
    return f"urn:bastion:problem:{code}"


def unavailable(service: str, retry_after_s: int = 5) -> ApiError:
    return ApiError(
        Code.SERVICE_UNAVAILABLE, f"{service} is unavailable", headers={"Retry-After": str(retry_after_s)}
    )


def not_found(what: str = "resource") -> ApiError:
    return ApiError(Code.NOT_FOUND, f"no such {what}")
