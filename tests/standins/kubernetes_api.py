"""A stand-in for the one Kubernetes API call Vault's Kubernetes auth makes: TokenReview.

No Kubernetes cluster runs here. Vault (OpenBao in the tests) is real; when a pod logs in with its
service account token, Vault asks the cluster's API server whether that token is genuine
(POST /apis/authentication.k8s.io/v1/tokenreviews). This server answers that question for the tokens
a test registers, in the shape the API server uses, and says "not authenticated" for any other.
"""

from __future__ import annotations

from dataclasses import dataclass

import datetime

import jwt
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class ServiceAccount:
    namespace: str
    name: str
    uid: str

    @property
    def username(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.name}"


SIGNING_KEY = ec.generate_private_key(ec.SECP256R1())


def service_account_token(account: ServiceAccount) -> str:
    """A token with the claims a (legacy) service account token carries; Vault reads them unverified
    and leaves the verdict to TokenReview."""
    claims = {
        "iss": "kubernetes/serviceaccount",
        "sub": account.username,
        "kubernetes.io/serviceaccount/namespace": account.namespace,
        "kubernetes.io/serviceaccount/service-account.name": account.name,
        "kubernetes.io/serviceaccount/service-account.uid": account.uid,
    }
    return jwt.encode(claims, SIGNING_KEY, algorithm="ES256")


def ca_certificate() -> str:
    """A self-signed CA certificate in PEM: Vault's Kubernetes auth insists on one in its config, though
    it talks plain HTTP to this stand-in and never uses it."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes stand-in")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(SIGNING_KEY.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(SIGNING_KEY, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def tokenreview_app(accounts: dict[str, ServiceAccount]) -> web.Application:
    """The stand-in API server: `accounts` maps each genuine token to its service account."""

    async def review(request: web.Request) -> web.Response:
        body = await request.json()
        account = accounts.get(body.get("spec", {}).get("token", ""))
        status: dict = {"authenticated": account is not None}
        if account is not None:
            status["user"] = {"username": account.username, "uid": account.uid, "groups": ["system:serviceaccounts"]}
        return web.json_response(
            {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": body.get("spec", {}), "status": status},
            status=201,
        )

    app = web.Application()
    app.router.add_post("/apis/authentication.k8s.io/v1/tokenreviews", review)
    return app
