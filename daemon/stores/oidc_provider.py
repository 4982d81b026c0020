"""The HTTP side of an OpenID Connect provider: its discovery document, its signing keys (JWKS) and its
token endpoint. What the answers mean, and whether to trust them, is services/oidc.py's business.

The discovery document is read at the first sign-in, not at start, so a provider that is down stops
single sign-on only, never the daemon; it is kept for an hour. The keys are kept until a token names
one that is not among them (the provider rotated), then read again, at most once a minute.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from shared.errors import ApiError, Code

DISCOVERY_TTL_S = 3600
JWKS_MIN_REFRESH_S = 60
TIMEOUT = aiohttp.ClientTimeout(total=10)
MAX_ANSWER_BYTES = 1 << 20


@dataclass(frozen=True)
class Endpoints:
    issuer: str
    authorization: str
    token: str
    jwks: str
    algorithms: tuple[str, ...]  # id_token_signing_alg_values_supported


def _unavailable(what: str) -> ApiError:
    return ApiError(Code.SERVICE_UNAVAILABLE, f"the single sign-on provider could not be reached ({what}); try again")


class ProviderClient:
    def __init__(self, issuer: str, client_id: str, client_secret: str) -> None:
        self._issuer = issuer
        self._auth = aiohttp.BasicAuth(client_id, client_secret)
        self._session: aiohttp.ClientSession | None = None
        self._endpoints: tuple[float, Endpoints] | None = None
        self._jwks: tuple[float, dict[str, Any]] | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:  # made in the running loop, at first use
            self._session = aiohttp.ClientSession(timeout=TIMEOUT)
        return self._session

    async def _json(self, response: aiohttp.ClientResponse, what: str) -> dict[str, Any]:
        body = await response.content.read(MAX_ANSWER_BYTES)
        try:
            data = json.loads(body)
        except ValueError:
            raise _unavailable(f"{what}: not JSON") from None
        if not isinstance(data, dict):
            raise _unavailable(f"{what}: not a JSON object")
        return data

    async def _get(self, url: str, what: str) -> dict[str, Any]:
        try:
            async with self._http().get(url, allow_redirects=False) as response:
                if response.status != 200:
                    raise _unavailable(f"{what}: HTTP {response.status}")
                return await self._json(response, what)
        except (aiohttp.ClientError, TimeoutError):
            raise _unavailable(what) from None

    async def endpoints(self) -> Endpoints:
        if self._endpoints and self._endpoints[0] > time.monotonic():
            return self._endpoints[1]
        doc = await self._get(self._issuer.rstrip("/") + "/.well-known/openid-configuration", "discovery")
        # OpenID Connect Discovery 1.0, section 4.3: the document must name exactly the issuer asked for,
        # or a provider could speak for another.
        if doc.get("issuer") != self._issuer:
            raise _unavailable("discovery: the document names another issuer")
        try:
            found = Endpoints(doc["issuer"], doc["authorization_endpoint"], doc["token_endpoint"], doc["jwks_uri"],
                              tuple(doc.get("id_token_signing_alg_values_supported", ("RS256",))))
        except KeyError as missing:
            raise _unavailable(f"discovery: no {missing.args[0]}") from None
        self._endpoints = (time.monotonic() + DISCOVERY_TTL_S, found)
        return found

    async def jwks(self, refresh: bool = False) -> dict[str, Any]:
        """The provider's public keys; `refresh` reads them again, unless they were read under a minute ago."""
        stale = self._jwks is None or (refresh and self._jwks[0] + JWKS_MIN_REFRESH_S < time.monotonic())
        if stale:
            keys = await self._get((await self.endpoints()).jwks, "keys")
            self._jwks = (time.monotonic(), keys)
        return self._jwks[1]

    async def exchange(self, code: str, verifier: str, redirect_uri: str) -> dict[str, Any]:
        """The authorization code for tokens (RFC 6749 4.1.3 with RFC 7636's verifier), the client
        authenticated with HTTP Basic (client_secret_basic, every provider's default)."""
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                "code_verifier": verifier}
        try:
            async with self._http().post((await self.endpoints()).token, data=form, auth=self._auth,
                                         allow_redirects=False) as response:
                answer = await self._json(response, "token")
        except (aiohttp.ClientError, TimeoutError):
            raise _unavailable("token") from None
        if response.status != 200 or "id_token" not in answer:
            # The provider's own error code (invalid_grant: a code spent or not issued to us) is safe to show.
            error = str(answer.get("error", f"HTTP {response.status}"))[:80]
            raise ApiError(Code.UNAUTHORIZED, f"the provider did not accept the sign-in ({error}); start again")
        return answer

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
