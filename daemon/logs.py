"""Structured logs: one JSON object per line on stderr, ready for a log shipper.

Fields passed with `extra=` become top-level keys. Nothing here knows about tokens: the callers never
pass them (the access log records no headers, bodies or query strings), and tests check the output.
"""

from __future__ import annotations

import logging
import sys
import traceback

import orjson

from daemon.clock import iso_now

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": iso_now(), "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage()}
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return orjson.dumps(entry, default=str).decode()


def configure(level: str = "info", stream=None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").disabled = True  # our access log replaces it
    # aiosqlite logs every statement with its parameters at DEBUG: hashes of tokens and passwords.
    logging.getLogger("aiosqlite").setLevel(logging.INFO)
