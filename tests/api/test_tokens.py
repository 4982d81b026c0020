"""Access-token verification: each way of forging or misusing a token is refused (401)."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from daemon.context import AUTH, SECRETS
from daemon.services.tokens import SECRET_NAME, Tokens, load_keys, rotate_keys
from tests.helpers import problem

ME = "/api/v1/users/me"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def _key(api):
    keys = await load_keys(api.app[SECRETS])
    return keys[-1]


def _claims(actor, **changes):
    now = int(time.time())
    claims = {
        "sub": actor.id, "sid": jwt.decode(actor.access_token, options={"verify_signature": False})["sid"],
        "role": "admin", "iat": now, "nbf": now, "exp": now + 300, "iss": "bastion", "aud": "bastion-api", "typ": "access",
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


async def _refused(api, token: str) -> None:
    response = await api.get(ME, headers={"Authorization": f"Bearer {token}"})
    assert response.status == 401
    assert (await problem(response))["code"] == "unauthorized"


async def test_a_genuine_token_is_accepted(api, alice):
    key = await _key(api)
    token = jwt.encode(_claims(alice, role="user"), key.private, algorithm="EdDSA", headers={"kid": key.kid})
    assert (await api.get(ME, headers={"Authorization": f"Bearer {token}"})).status == 200


async def test_alg_none_is_refused(api, alice):
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = _b64(json.dumps(_claims(alice)).encode())
    await _refused(api, f"{header}.{payload}.")


async def test_hs256_signed_with_the_public_key_is_refused(api, alice):
    key = await _key(api)
    public_pem = key.public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": key.kid}).encode())
    payload = _b64(json.dumps(_claims(alice)).encode())
    import hashlib
    import hmac

    signature = _b64(hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest())
    await _refused(api, f"{header}.{payload}.{signature}")


async def test_an_unknown_kid_is_refused(api, alice):
    stranger = Ed25519PrivateKey.generate()
    await _refused(api, jwt.encode(_claims(alice), stranger, algorithm="EdDSA", headers={"kid": "not-ours"}))


@pytest.mark.parametrize("header", ["jku", "x5u", "jwk"])
async def test_headers_that_name_a_key_are_refused(api, alice, header):
    key = await _key(api)
    value = {"kty": "OKP"} if header == "jwk" else "https://evil.example.com/keys"
    token = jwt.encode(_claims(alice), key.private, algorithm="EdDSA", headers={"kid": key.kid, header: value})
    await _refused(api, token)


@pytest.mark.parametrize(
    "changes",
    [
        {"aud": "someone-else"},
        {"iss": "https://evil.example.com"},
        {"exp": -120, "iat": -1000, "nbf": -1000},
        {"nbf": 600},
        {"typ": "refresh"},
    ],
    ids=["wrong-aud", "wrong-iss", "expired", "not-yet-valid", "refresh-typ"],
)
async def test_wrong_claims_are_refused(api, alice, changes):
    # Times are offsets from the moment the test runs, not from collection: a long run outlived them.
    now = int(time.time())
    changes = {name: now + value if name in ("exp", "iat", "nbf") else value for name, value in changes.items()}
    key = await _key(api)
    token = jwt.encode(_claims(alice, **changes), key.private, algorithm="EdDSA", headers={"kid": key.kid})
    await _refused(api, token)


@pytest.mark.parametrize("missing", ["exp", "iat", "nbf", "iss", "aud", "sub", "sid", "typ"])
async def test_every_claim_is_required(api, alice, missing):
    key = await _key(api)
    token = jwt.encode(_claims(alice, **{missing: None}), key.private, algorithm="EdDSA", headers={"kid": key.kid})
    await _refused(api, token)


async def test_a_few_seconds_of_clock_skew_are_allowed_and_thirty_are_not(api, alice):
    key = await _key(api)
    skewed = jwt.encode(_claims(alice, role="user", exp=int(time.time()) - 2), key.private, algorithm="EdDSA",
                        headers={"kid": key.kid})
    assert (await api.get(ME, headers={"Authorization": f"Bearer {skewed}"})).status == 200
    expired = jwt.encode(_claims(alice, role="user", exp=int(time.time()) - 30), key.private, algorithm="EdDSA",
                         headers={"kid": key.kid})
    await _refused(api, expired)


async def test_a_refresh_token_is_not_an_access_token(api, alice):
    await _refused(api, alice.refresh_token)


async def test_garbage_and_other_schemes_are_refused(api):
    await _refused(api, "not.a.jwt")
    response = await api.get(ME, headers={"Authorization": "Basic YWxpY2U6cHc="})
    assert response.status == 401


async def test_a_rotated_key_signs_while_the_old_one_still_verifies(api, alice):
    store = api.app[SECRETS]
    old_kid = jwt.get_unverified_header(alice.access_token)["kid"]
    new_key = await rotate_keys(store, retire_after_s=900)
    # Other replicas pick the new key up when they meet its kid; this one is told directly.
    await api.app[AUTH].reload_keys()
    assert (await api.get(ME, headers=alice.headers)).status == 200
    fresh = await api.post("/api/v1/auth/login", json={"email": alice.email, "password": alice.password})
    token = (await fresh.json())["access_token"]
    assert jwt.get_unverified_header(token)["kid"] == new_key.kid != old_kid
    kids = {k["kid"] for k in (await (await api.get("/.well-known/jwks.json")).json())["keys"]}
    assert kids == {old_kid, new_key.kid}
    assert (await store.get(SECRET_NAME))["keys"][-1]["kid"] == new_key.kid


async def test_a_key_rotated_elsewhere_verifies_here_even_right_after_a_reload(api, alice):
    """Another replica rotates the keys just after this one's periodic reload, and signs with the new key at
    its own next reload: this replica reads the keys again when it first meets the new kid. Before, a read
    was allowed only 10 s after any reload, so here the new key's tokens were refused until the next one."""
    store, here = api.app[SECRETS], api.app[AUTH]
    await here.reload_keys()  # the periodic reload, just before the rotation
    await rotate_keys(store, retire_after_s=900)
    mine = here._tokens
    elsewhere = Tokens(store, await load_keys(store), mine.issuer, mine.audience, mine.ttl_s)
    claims = jwt.decode(alice.access_token, options={"verify_signature": False})
    token, _ = elsewhere.issue(claims["sub"], claims["role"], claims["sid"])
    response = await api.get(ME, headers={"Authorization": f"Bearer {token}"})
    assert response.status == 200, await response.text()
