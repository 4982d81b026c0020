"""Opaque list cursors: the last key of a page, base64url-encoded. One rule for every list.

Only what `encode` could have produced decodes: the standard decoder would skip stray characters, and a
key with control characters (a NUL that PostgreSQL refuses) must never reach a query.
"""

from __future__ import annotations

import base64
import binascii
import re

_KEY = re.compile(r"[\x20-\x7e]{1,512}")  # printable ASCII: every id Bastion issues or accepts


def encode(last_key: str) -> str:
    return base64.urlsafe_b64encode(last_key.encode()).rstrip(b"=").decode()


def decode(cursor: str) -> str:
    """The key a cursor stands for; ValueError for anything this server did not issue."""
    try:
        key = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        key = ""
    if not _KEY.fullmatch(key) or encode(key) != cursor:
        raise ValueError("the cursor is not one this server gave out")
    return key
