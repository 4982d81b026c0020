"""Errors every adapter raises in the same shape, whatever system sits behind it."""


class StoreError(Exception):
    pass


class Unavailable(StoreError):
    """The backing system cannot be reached; the request may succeed later."""

    def __init__(self, service: str, reason: str = "") -> None:
        super().__init__(f"{service} unavailable: {reason}" if reason else f"{service} unavailable")
        self.service = service


class UniqueViolation(StoreError):
    """A unique key is taken."""
