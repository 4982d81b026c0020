"""Opaque, time-ordered ids: a type prefix, 48 bits of milliseconds, 80 random bits, base32.

Ordering by id is ordering by creation, which makes cursor pagination a plain `id > ?`.
"""

from __future__ import annotations

import secrets
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford's base32, lower case


def _b32(value: int, length: int) -> str:
    out = []
    for _ in range(length):
        out.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(out))


def new_id(prefix: str) -> str:
    ms = time.time_ns() // 1_000_000
    return f"{prefix}_{_b32(ms, 10)}{_b32(secrets.randbits(80), 16)}"
