"""Access tokens: JWTs signed with Ed25519 (EdDSA), each naming its key by `kid`.

The keys live in the secrets store as one JSON document (`signing_keys`): the newest key signs, the
older ones still verify until the tokens they signed have expired. Verification pins the algorithm,
requires every claim, allows 5 s of clock skew (replicas' clocks agree far better than that; a minute
kept a stolen token alive a minute past its expiry), and refuses headers that would let a token pick its
own key (jku, x5u, jwk, x5c).
"""

from __future__ import annotations

import base64
import secrets
import time
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from daemon.stores.secrets import SecretsError, SecretStore, get_or_create
from shared.errors import ApiError, Code

ALGORITHM = "EdDSA"
LEEWAY_S = 5
REQUIRED_CLAIMS = ["exp", "iat", "nbf", "iss", "aud", "sub", "sid", "typ"]
FORBIDDEN_HEADERS = ("jku", "x5u", "jwk", "x5c")
SECRET_NAME = "signing_keys"
# A token whose kid this replica does not know makes it read the keys again (another replica may have rotated
# them), at most this often: a flood of forged kids costs the key store one read a second. Counted from the
# last such read only, not from the periodic ones: at 10 s from any reload, a replica that had just reloaded
# before a rotation refused the new key's tokens until its next reload (CI: 401 "the token's key is unknown").
KID_RELOAD_EVERY_S = 1.0
VERIFIED_CACHE_SIZE = 10_000
ROTATION_TRIES = 10  # reads of the keys a rotation makes while other rotations keep writing first


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private: Ed25519PrivateKey
    created_at: float

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(kid=secrets.token_hex(8), private=Ed25519PrivateKey.generate(), created_at=time.time())

    def to_dict(self) -> dict[str, Any]:
        pem = self.private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return {"kid": self.kid, "private_pem": pem.decode(), "created_at": self.created_at}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SigningKey:
        private = serialization.load_pem_private_key(data["private_pem"].encode(), password=None)
        if not isinstance(private, Ed25519PrivateKey):
            raise ValueError("signing keys must be Ed25519")
        return cls(kid=data["kid"], private=private, created_at=float(data["created_at"]))

    def jwk(self) -> dict[str, str]:
        raw = self.public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {"kty": "OKP", "crv": "Ed25519", "x": _b64(raw), "kid": self.kid, "alg": ALGORITHM, "use": "sig"}


def _decode_keys(blob: dict[str, Any] | None) -> list[SigningKey]:
    return [SigningKey.from_dict(item) for item in (blob or {}).get("keys", [])]


def _encode_keys(keys: list[SigningKey]) -> dict[str, Any]:
    return {"keys": [k.to_dict() for k in keys]}


async def load_keys(store: SecretStore) -> list[SigningKey]:
    """The keys in the store; on a fresh install the first one, generated once even when several
    replicas start together."""
    return _decode_keys(await get_or_create(store, SECRET_NAME, lambda: _encode_keys([SigningKey.generate()])))


async def rotate_keys(store: SecretStore, retire_after_s: float) -> SigningKey:
    """Add a new signing key; drop keys that stopped signing more than `retire_after_s` ago.

    Written over the keys read only (SecretStore.replace), read again when another rotation wrote first: two
    at once (a scheduled run overlapping an operator's) each wrote back what they had read plus their own key,
    so the second dropped the first's, which the replicas that had loaded it went on signing with, and
    every other replica refused those tokens."""
    for _ in range(ROTATION_TRIES):
        stored = await store.get(SECRET_NAME)
        keys = _decode_keys(stored)
        new = SigningKey.generate()
        now = time.time()
        kept = [k for i, k in enumerate(keys) if i + 1 < len(keys) and keys[i + 1].created_at > now - retire_after_s]
        if keys:
            kept.append(keys[-1])  # the key that signed until now verifies its tokens until they expire
        if await store.replace(SECRET_NAME, stored, _encode_keys([*kept, new])):
            return new
    raise SecretsError(f"the signing keys changed under this rotation {ROTATION_TRIES} times: try it again")


class Tokens:
    def __init__(self, store: SecretStore, keys: list[SigningKey], issuer: str, audience: str, ttl_s: int) -> None:
        self._store = store
        self._set_keys(keys)
        self.issuer = issuer
        self.audience = audience
        self.ttl_s = ttl_s
        self._last_kid_reload = -KID_RELOAD_EVERY_S
        self._verified: dict[str, dict[str, Any]] = {}

    def _set_keys(self, keys: list[SigningKey]) -> None:
        self._keys = {k.kid: k for k in keys}
        self._signer = max(keys, key=lambda k: k.created_at)

    async def reload(self) -> None:
        self._set_keys(await load_keys(self._store))

    def issue(self, user_id: str, role: str, session_id: str) -> tuple[str, int]:
        now = int(time.time())
        exp = now + self.ttl_s
        claims = {
            "sub": user_id,
            "sid": session_id,
            "role": role,
            "iat": now,
            "nbf": now,
            "exp": exp,
            "iss": self.issuer,
            "aud": self.audience,
            "typ": "access",
        }
        token = jwt.encode(claims, self._signer.private, algorithm=ALGORITHM, headers={"kid": self._signer.kid})
        return token, exp

    async def verify(self, token: str) -> dict[str, Any]:
        # A token whose signature and claims were checked once is remembered until it expires: the
        # signature cannot change, and only time can change the verdict (revocation is checked by
        # the caller on every request). This halves the cost of an authenticated request.
        known = self._verified.get(token)
        if known is not None:
            if known["exp"] + LEEWAY_S > time.time() and known["kid"] in self._keys:
                return known
            del self._verified[token]
        claims = await self._verify(token)
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.pop(next(iter(self._verified)))  # the oldest entry
        self._verified[token] = claims
        return claims

    async def _verify(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise ApiError(Code.UNAUTHORIZED, "the token is malformed") from None
        if header.get("alg") != ALGORITHM:
            raise ApiError(Code.UNAUTHORIZED, "the token's algorithm is not accepted")
        if any(name in header for name in FORBIDDEN_HEADERS):
            raise ApiError(Code.UNAUTHORIZED, "the token names its own key, which is not accepted")
        kid = header.get("kid")
        key = self._keys.get(kid) if isinstance(kid, str) else None
        if key is None and isinstance(kid, str) and time.monotonic() - self._last_kid_reload > KID_RELOAD_EVERY_S:
            self._last_kid_reload = time.monotonic()
            await self.reload()  # another replica may have rotated the keys
            key = self._keys.get(kid)
        if key is None:
            raise ApiError(Code.UNAUTHORIZED, "the token's key is unknown")
        try:
            claims = jwt.decode(
                token,
                key.public,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                leeway=LEEWAY_S,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError:
            raise ApiError(Code.UNAUTHORIZED, "the token has expired") from None
        except jwt.PyJWTError:
            raise ApiError(Code.UNAUTHORIZED, "the token is not valid") from None
        if claims.get("typ") != "access":
            raise ApiError(Code.UNAUTHORIZED, "not an access token")
        return {**claims, "kid": kid}

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [k.jwk() for k in self._keys.values()]}
