"""Cursor pagination for the services' lists (the cursor format itself is daemon/cursors.py)."""

from __future__ import annotations

from daemon import cursors
from shared.errors import ApiError, Code, FieldError


def decode_cursor(cursor: str | None) -> str | None:
    if not cursor:
        return None
    try:
        return cursors.decode(cursor)
    except ValueError as exc:
        raise ApiError(Code.VALIDATION_FAILED, "the cursor is not valid", errors=[FieldError("cursor", str(exc))]) from None


def next_cursor(rows: list, limit: int, key: str = "id") -> str | None:
    """Rows are fetched with limit + 1: a surplus row means there is a next page."""
    if len(rows) <= limit:
        return None
    del rows[limit:]
    return cursors.encode(rows[-1][key])
