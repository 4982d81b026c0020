"""What a user types as the server, made canonical: a module of its own, so that the console's first
screen can use it without importing the client (aiohttp, pydantic)."""

from __future__ import annotations

from urllib.parse import urlsplit


class BadServerURL(ValueError):
    """What was given as the server is not an http(s) URL of a host."""


def normalise_server(server: str) -> str:
    """`host:port` or a URL, as one canonical `http(s)://host[:port]` (the key remembered servers go by)."""
    text = server.strip()
    if "://" not in text:
        text = "http://" + text
    text = text.rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname or " " in text or parts.path:
        raise BadServerURL(f"not a server URL: {server!r} (expected http://host:port)")
    return f"{parts.scheme}://{parts.netloc}"
