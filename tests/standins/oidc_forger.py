"""A stand-in OpenID Connect provider that forges: its ID tokens are spoiled on purpose, one way at a time
(`spoil`), to show that the daemon refuses each. A real provider never issues such tokens, which is why
this one is a stand-in; the real provider (tests/oidc_provider) covers the sign-ins that should work.

It does what a provider does otherwise: discovery, a JWKS, an authorization endpoint (which signs in
carol@example.com at once and sends the browser back with a code and the state it was given), and a token
endpoint that checks the code, the client and the PKCE verifier before it answers.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from tests.conftest import free_port

CLIENT_ID = "bastion-forged"
CLIENT_SECRET = "bastion-forged-secret"
SPOILS = ("nonce", "issuer", "audience", "key", "expired")


class Forger:
    def __init__(self, port: int) -> None:
        self.issuer = f"http://localhost:{port}"
        self.key = RSAKey.generate_key(2048, parameters={"kid": "forger", "use": "sig", "alg": "RS256"}, private=True)
        # Another key under the same kid: a token signed with it claims to be the provider's and is not.
        self.impostor = RSAKey.generate_key(2048, parameters={"kid": "forger", "use": "sig", "alg": "RS256"}, private=True)
        self.spoil: str | None = None
        self.codes: dict[str, dict[str, str]] = {}
        self.token_requests = 0

    def discovery(self) -> dict:
        return {"issuer": self.issuer, "authorization_endpoint": f"{self.issuer}/auth",
                "token_endpoint": f"{self.issuer}/token", "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"], "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"], "code_challenge_methods_supported": ["S256"]}

    def authorize(self, query: dict[str, str]) -> str:
        code = secrets.token_urlsafe(16)
        self.codes[code] = query
        return f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query['state']})}"

    def token(self, form: dict[str, str], authorization: str) -> tuple[int, dict]:
        self.token_requests += 1
        asked = self.codes.pop(form.get("code", ""), None)
        basic = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        verifier = form.get("code_verifier", "").encode()
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=").decode()
        if asked is None or authorization != basic or challenge != asked.get("code_challenge"):
            return 400, {"error": "invalid_grant"}
        moment = int(time.time())
        claims = {"iss": self.issuer, "sub": "sub-forged-carol", "aud": CLIENT_ID, "iat": moment, "exp": moment + 300,
                  "nonce": asked["nonce"], "email": "carol@example.com", "email_verified": True}
        if self.spoil == "nonce":
            claims["nonce"] = "a-nonce-of-another-sign-in"
        elif self.spoil == "issuer":
            claims["iss"] = "http://localhost:1/another-issuer"
        elif self.spoil == "audience":
            claims["aud"] = "another-client"
        elif self.spoil == "expired":
            claims["iat"], claims["exp"] = moment - 7200, moment - 3600
        signer = self.impostor if self.spoil == "key" else self.key
        id_token = jwt.encode({"alg": "RS256", "kid": "forger"}, claims, signer)
        return 200, {"access_token": secrets.token_urlsafe(16), "token_type": "Bearer", "id_token": id_token}


@contextmanager
def forging_provider() -> Iterator[Forger]:
    port = free_port()
    forger = Forger(port)

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: dict | None = None, location: str | None = None) -> None:
            data = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            if location:
                self.send_header("Location", location)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            url = urlsplit(self.path)
            if url.path == "/.well-known/openid-configuration":
                self._answer(200, forger.discovery())
            elif url.path == "/jwks":
                self._answer(200, KeySet([forger.key]).as_dict(private=False))
            elif url.path == "/auth":
                self._answer(302, location=forger.authorize({k: v[0] for k, v in parse_qs(url.query).items()}))
            else:
                self._answer(404, {"error": "not_found"})

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length", "0"))
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            self._answer(*forger.token(form, self.headers.get("Authorization", "")))

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield forger
    finally:
        server.shutdown()
        server.server_close()
