"""Browser sessions of the web view: the tokens stay on the server, the browser holds only a secret.

A login through the web view is an ordinary login of the auth service (same checks, same failed-login
limits, same session that logout and revocation end). Its token pair is kept server-side, sealed with
a key derived from a random secret that only the browser's HttpOnly cookie carries; the table keys the
row by the secret's SHA-256. Each request turns the secret back into the pair, authenticates the access
token, and refreshes the pair through the auth service when the access token has expired. When the auth
session ends (logout anywhere, a disabled user, a revoked session), the browser session ends with it.

CSRF tokens are derived from the same secret (an HMAC), so each one is bound to one browser session,
is checked on the server, and needs no storage; a browser without a session (the login form) gets a
fresh secret in its cookie first, so the login form is protected the same way.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import time
from datetime import timedelta

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from daemon.clock import iso, now
from daemon.services.auth import Auth
from daemon.services.principal import Principal
from daemon.stores.sql.web_sessions import WebSessionRows
from shared.errors import ApiError, Code
from shared.models.auth import TokenPair

# token_urlsafe(32): 43 characters of the URL-safe alphabet. Anything else in a cookie is ignored
# before it reaches the database.
_SECRET_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")
# Verification allows some clock skew past `exp`, but the WebSocket gateway closes a connection at `exp`:
# a token this close to its end is refreshed first, so that a live feed is not opened only to close.
REFRESH_AHEAD_S = 5
# What refusing a token pair looks like; any other error (a database that is down) is not a logout.
_ENDED = {Code.UNAUTHORIZED, Code.TOKEN_REUSED}


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def well_formed(secret: str | None) -> bool:
    return secret is not None and _SECRET_SHAPE.fullmatch(secret) is not None


def csrf_token(secret: str) -> str:
    return hmac.new(secret.encode(), b"bastion web view csrf", hashlib.sha256).hexdigest()


def csrf_matches(secret: str | None, token: str | None) -> bool:
    if not well_formed(secret) or not token:
        return False
    return hmac.compare_digest(csrf_token(secret), token)


def row_id(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _aead(secret: str) -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"bastion web session tokens").derive(secret.encode())
    return AESGCM(key)


def seal_tokens(secret: str, access: str, refresh: str) -> bytes:
    nonce = os.urandom(12)
    payload = json.dumps({"access": access, "refresh": refresh}).encode()
    return nonce + _aead(secret).encrypt(nonce, payload, row_id(secret).encode())


def unseal_tokens(secret: str, sealed: bytes) -> dict[str, str]:
    return json.loads(_aead(secret).decrypt(sealed[:12], sealed[12:], row_id(secret).encode()))


class WebSessions:
    def __init__(self, rows: WebSessionRows, auth: Auth, lifetime_s: int) -> None:
        self._rows = rows
        self._auth = auth
        # As long as the auth session's refresh tokens live; past that a refresh would fail anyway.
        self._lifetime = timedelta(seconds=lifetime_s)

    async def login(self, email: str, password: str, ip: str, user_agent: str) -> str:
        """Log in through the auth service; returns the new session's secret for the cookie.

        Always a new secret, never the one the login form was served with, so a secret planted in a
        browser before login is worth nothing after it."""
        return await self.open(await self._auth.login(email, password, ip, user_agent))

    async def verify_mfa(self, mfa_token: str, code: str, ip: str, user_agent: str) -> str:
        """A login's second step (after `login` raised `mfa_required`); the new session's secret, as `login`."""
        return await self.open(await self._auth.verify_mfa(mfa_token, code, ip, user_agent))

    async def open(self, pair: TokenPair) -> str:
        """A browser session around a session the auth service opened (a login, its second step, a single
        sign-on); returns its secret for the cookie."""
        secret = new_secret()
        moment = now()
        await self._rows.purge(iso(moment))
        await self._rows.insert(
            row_id(secret), pair.user.id, seal_tokens(secret, pair.access_token, pair.refresh_token),
            iso(moment), iso(moment + self._lifetime),
        )
        return secret

    async def principal(self, secret: str | None, ip: str) -> Principal | None:
        """Who the browser holding this secret is, or None when it has no live session."""
        if not well_formed(secret):
            return None
        row = await self._rows.get(row_id(secret), iso(now()))
        if row is None:
            return None
        try:
            tokens = unseal_tokens(secret, row["sealed_tokens"])
        except (InvalidTag, ValueError):
            await self._rows.delete(row["id"])
            return None
        try:
            principal = await self._auth.authenticate(tokens["access"])
            if principal.expires_at is None or principal.expires_at > time.time() + REFRESH_AHEAD_S:
                return principal
        except ApiError as exc:
            if exc.code not in _ENDED:
                raise
        # The access token has (nearly) expired, or its session has ended: a refresh tells which.
        try:
            pair = await self._auth.refresh(tokens["refresh"], ip)
        except ApiError as exc:
            if exc.code not in _ENDED:
                raise
            await self._rows.delete(row["id"])
            return None
        await self._rows.reseal(row["id"], seal_tokens(secret, pair.access_token, pair.refresh_token))
        return await self._auth.authenticate(pair.access_token)

    async def logout(self, secret: str | None, ip: str) -> None:
        principal = await self.principal(secret, ip)
        if principal is None:
            return
        await self._auth.logout(principal, ip)
        await self._rows.delete(row_id(secret))
