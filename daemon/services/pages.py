"""Opaque cursors for lists ordered by id: the client hands back what we gave it, nothing more."""

from __future__ import annotations

import base64
import binascii

from shared.errors import ApiError, Code, FieldError


def encode_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(last_id.encode()).rstrip(b"=").decode()


def decode_cursor(cursor: str | None) -> str | None:
    if not cursor:
        return None
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ApiError(Code.VALIDATION_FAILED, "the cursor is not valid", errors=[FieldError("cursor", "not a cursor this server issued")]) from None


def next_cursor(rows: list, limit: int, key: str = "id") -> str | None:
    """Rows are fetched with limit + 1: a surplus row means there is a next page."""
    if len(rows) <= limit:
        return None
    del rows[limit:]
    return encode_cursor(rows[-1][key])
