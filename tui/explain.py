"""How a failure reads to a person: one line, never a traceback, never a token (the TUI and the CLI both)."""

from __future__ import annotations

from shared.errors import ApiError
from tui import config, credentials


def describe_error(error: BaseException) -> str:
    from shared.client import BadServerURL, Unreachable  # here: the TUI's first screen does not wait for aiohttp

    if isinstance(error, ApiError):
        line = f"{error.title}: {error.detail}" if error.detail and error.detail != error.title else error.title
        if error.errors:
            line += " (" + "; ".join(f"{e.field}: {e.message}" for e in error.errors) + ")"
        return line
    if isinstance(error, (Unreachable, BadServerURL, credentials.NoKeyring, config.ConfigError)):
        return str(error)
    return f"unexpected error: {type(error).__name__}: {error}"
