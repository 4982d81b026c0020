"""Password hashing: argon2id with OWASP's parameters, off the event loop, with bounded concurrency.

Hashing is deliberately expensive (about 19 MiB and tens of milliseconds each), so it runs in a small
thread pool (argon2-cffi releases the GIL) and at most `concurrency + queue` hashes may be pending;
past that a login is refused with 503 and Retry-After rather than queueing without bound, which keeps
memory flat and the event loop free for everything else.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from importlib import resources

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from shared.errors import ApiError, Code, FieldError

# OWASP Password Storage Cheat Sheet: argon2id, m=19456 KiB, t=2, p=1.
OWASP = {"time_cost": 2, "memory_cost": 19456, "parallelism": 1}


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    text = resources.files("daemon.data").joinpath("common-passwords.txt").read_text()
    return frozenset(line for line in text.splitlines() if line and not line.startswith("#"))


def check_policy(password: str, field: str = "password") -> None:
    """Length is checked by the models (10..1024 characters); here, the list of common passwords.

    Compared exactly, never case-folded or truncated: the password is what the user typed.
    """
    if password in common_passwords():
        raise ApiError(
            Code.VALIDATION_FAILED,
            "choose a less common password",
            errors=[FieldError(field, "this password is among the most common ones")],
        )


class Passwords:
    def __init__(self, concurrency: int = 2, queue: int = 64, params: dict | None = None) -> None:
        self._hasher = PasswordHasher(type=Type.ID, **(params or OWASP))
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="argon2")
        self._capacity = concurrency + queue
        self._pending = 0
        # A hash of nothing in particular, so an unknown account costs the same verify as a known one.
        self._decoy = self._hasher.hash("decoy password, never matches")

    async def _run(self, fn, *args):
        if self._pending >= self._capacity:
            raise ApiError(Code.SERVICE_UNAVAILABLE, "too many logins at once", headers={"Retry-After": "1"})
        self._pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)
        finally:
            self._pending -= 1

    async def hash(self, password: str) -> str:
        return await self._run(self._hasher.hash, password)

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        """False for a wrong password; with no stored hash, spends a verify all the same."""

        def check() -> bool:
            try:
                return self._hasher.verify(stored_hash or self._decoy, password) and stored_hash is not None
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False

        return await self._run(check)

    def needs_rehash(self, stored_hash: str) -> bool:
        return self._hasher.check_needs_rehash(stored_hash)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
