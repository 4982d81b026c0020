"""Single sign-on with OpenID Connect: the authorization code flow with PKCE (S256), for the web view.

- Each sign-in starts from a random secret that only the browser's pre-login cookie carries; its `state`,
  `nonce` and PKCE verifier are HMACs of that secret, so they are bound to that browser and never stored.
  The server keeps the secret's SHA-256 (table oidc_flows) so that each sign-in finishes once, within
  FLOW_TTL. A callback arriving in a browser that did not start it, or twice, is refused.
- The ID token comes from the provider's token endpoint (over the back channel, with our client secret),
  and is checked anyway: its signature against the provider's JWKS with the algorithms pinned here, and
  its iss, aud (and azp), exp, iat and nonce (authlib's CodeIDToken rules, on joserfc).
- Accounts link by the provider's (issuer, sub), which never change. A provider account with no link signs
  in only with an email the provider says is verified, in BASTION_OIDC_ALLOWED_DOMAINS: it links to the
  Bastion account of that email, or creates one with the role `user` and no usable password.
- The session is an ordinary one of the auth service (same revocation and limits, and the same second-factor
  gate: an account with TOTP on, or of a role that needs it, gets an `mfa_token` and the web view's code or
  enrolment page, as after a right password; the session opens only once that is done).
Every outcome is audited: sso.linked, user.created, login.succeeded, and sso.refused with its reason.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

from daemon.clock import iso, now
from daemon.services.audit import Audit
from daemon.services.auth import Auth
from daemon.services.users import Users, normalise_email
from daemon.settings import Settings
from daemon.stores.errors import UniqueViolation
from daemon.stores.oidc_provider import ProviderClient
from daemon.stores.sql import Row
from daemon.stores.sql.accounts import Accounts
from daemon.stores.sql.oidc import OidcRows
from shared.errors import ApiError, Code
from shared.models.auth import TokenPair

FLOW_TTL = timedelta(minutes=10)
SCOPE = "openid email profile"
# Asymmetric algorithms only: an HS256 token would be "signed" with our own client secret, and `none` not at all.
ALGORITHMS = ("RS256", "PS256", "ES256", "EdDSA")
CLOCK_SKEW_S = 60
MAX_PARAM = 2048  # a callback's code and state are short; anything longer is not from a provider


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    client_id: str
    allowed_domains: frozenset[str]


def flow_id(flow_secret: str) -> str:
    return hashlib.sha256(flow_secret.encode()).hexdigest()


def _derive(flow_secret: str, purpose: str) -> str:
    digest = hmac.new(flow_secret.encode(), f"bastion oidc {purpose}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()  # 43 characters: RFC 7636's minimum


def refused(reason: str, detail: str) -> ApiError:
    """A sign-in the provider vouched for, that Bastion's rules refuse (403), with the audit's reason."""
    return ApiError(Code.FORBIDDEN, detail, extra={"reason": reason})


def unverified(reason: str, detail: str) -> ApiError:
    """A sign-in whose answer cannot be trusted: not started here, tampered with, or forged (401)."""
    return ApiError(Code.UNAUTHORIZED, detail, extra={"reason": reason})


class Oidc:
    def __init__(self, config: OidcConfig, provider: ProviderClient, rows: OidcRows, accounts: Accounts,
                 users: Users, auth: Auth, audit: Audit) -> None:
        self.config = config
        self._provider = provider
        self._rows = rows
        self._accounts = accounts
        self._users = users
        self._auth = auth
        self._audit = audit

    async def begin(self, redirect_uri: str) -> tuple[str, str]:
        """A new sign-in: (the secret for the pre-login cookie, the provider's URL to send the browser to)."""
        endpoints = await self._provider.endpoints()
        flow_secret = secrets.token_urlsafe(32)
        moment = now()
        await self._rows.start_flow(flow_id(flow_secret), iso(moment), iso(moment + FLOW_TTL))
        url = prepare_grant_uri(
            endpoints.authorization, self.config.client_id, "code", redirect_uri=redirect_uri, scope=SCOPE,
            state=_derive(flow_secret, "state"), nonce=_derive(flow_secret, "nonce"),
            code_challenge=create_s256_code_challenge(_derive(flow_secret, "pkce")), code_challenge_method="S256",
        )
        return flow_secret, url

    async def finish(self, flow_secret: str | None, params: Mapping[str, str], redirect_uri: str, ip: str,
                     user_agent: str) -> TokenPair:
        """The provider's answer at the callback, in the browser holding `flow_secret`: the token pair of a
        new session, or an ApiError (audited as sso.refused)."""
        try:
            claims = await self._verified_claims(flow_secret, params, redirect_uri)
            row = await self._account(claims, ip)
            if row["disabled"]:
                raise refused("disabled", "this Bastion account is disabled")
            # An account with a second factor (or a role that needs one) is refused here with an mfa_token, as
            # after a right password: the web view asks for the code, and only that opens the session.
            return await self._auth.login_federated(row, ip, user_agent)
        except ApiError as exc:
            if exc.code in (Code.FORBIDDEN, Code.UNAUTHORIZED):
                await self._audit.record("sso.refused", ip=ip, issuer=self.config.issuer,
                                         reason=exc.extra.get("reason", exc.code.value))
            raise

    async def _verified_claims(self, flow_secret: str | None, params: Mapping[str, str],
                               redirect_uri: str) -> dict[str, Any]:
        if not flow_secret or not await self._rows.take_flow(flow_id(flow_secret), iso(now())):
            raise unverified("no_flow", "this sign-in was not started in this browser, was already used, or "
                                        "has expired; start again from the login page")
        state = params.get("state", "")
        if not hmac.compare_digest(state.encode()[:MAX_PARAM], _derive(flow_secret, "state").encode()):
            raise unverified("state", "the sign-in's state does not match this browser's; start again")
        if "error" in params:
            error = params["error"][:80]
            raise refused("provider_error", f"the provider did not sign you in ({error})")
        code = params.get("code", "")
        if not code or len(code) > MAX_PARAM:
            raise unverified("no_code", "the provider's answer has no authorization code; start again")
        answer = await self._provider.exchange(code, _derive(flow_secret, "pkce"), redirect_uri)
        return await self._check_id_token(str(answer["id_token"]), _derive(flow_secret, "nonce"),
                                          answer.get("access_token"))

    async def _check_id_token(self, id_token: str, nonce: str, access_token: Any) -> dict[str, Any]:
        endpoints = await self._provider.endpoints()
        algorithms = [alg for alg in ALGORITHMS if alg in endpoints.algorithms]
        try:
            try:
                token = jwt.decode(id_token, KeySet.import_key_set(await self._provider.jwks()), algorithms=algorithms)
            except InvalidKeyIdError:  # a key the provider added since we read its set
                token = jwt.decode(id_token, KeySet.import_key_set(await self._provider.jwks(refresh=True)),
                                   algorithms=algorithms)
            claims = CodeIDToken(
                token.claims, token.header,
                options={"iss": {"essential": True, "value": self.config.issuer},
                         "aud": {"essential": True, "value": self.config.client_id}},
                params={"nonce": nonce, "client_id": self.config.client_id,
                        "access_token": access_token if isinstance(access_token, str) else None},
            )
            claims.validate(now=int(time.time()), leeway=CLOCK_SKEW_S)
        except (JoseError, ValueError) as exc:
            # Which check failed is the audit's and the log's business: the page says only that it failed.
            raise unverified(f"id_token:{getattr(exc, 'error', 'invalid')}:{getattr(exc, 'claim', '')}".rstrip(":"),
                             "the provider's ID token did not pass its checks; the sign-in is refused") from None
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise unverified("id_token:sub", "the provider's ID token names no account")
        return dict(claims)

    async def _account(self, claims: Mapping[str, Any], ip: str) -> Row:
        """The Bastion account this provider account signs in as: by its link, else linked (or created)
        by its verified email in an allowed domain."""
        issuer, subject = self.config.issuer, claims["sub"]
        user_id = await self._rows.linked_user(issuer, subject)
        if user_id is None:
            user_id = await self._link(claims, ip)
        row = await self._accounts.user(user_id)
        if row is None:  # deleted since: its link went with it
            raise refused("deleted", "this Bastion account no longer exists")
        await self._rows.touch(issuer, subject, iso(now()))
        return row

    async def _link(self, claims: Mapping[str, Any], ip: str) -> str:
        email = claims.get("email")
        if not isinstance(email, str) or "@" not in email or claims.get("email_verified") is not True:
            raise refused("email_unverified", "the provider did not vouch for this account's email address, so "
                                              "it cannot be matched to a Bastion account")
        email = normalise_email(email)
        domain = email.rsplit("@", 1)[1]
        if domain not in self.config.allowed_domains:
            raise refused("domain", f"accounts of {domain} may not sign in here; ask an administrator")
        existing = await self._accounts.user_with_hash_by_email(email)
        if existing is not None:
            user_id = existing["id"]
        else:
            name = claims.get("name") if isinstance(claims.get("name"), str) else ""
            user_id = (await self._users.create_federated(email, name, ip, via=self.config.issuer)).id
        try:
            await self._rows.link(self.config.issuer, claims["sub"], user_id, email, iso(now()))
        except UniqueViolation:  # a sign-in of the same account racing this one linked it first
            linked = await self._rows.linked_user(self.config.issuer, claims["sub"])
            if linked is None:
                raise
            return linked
        await self._audit.record("sso.linked", target_id=user_id, ip=ip, issuer=self.config.issuer,
                                 subject=claims["sub"], email=email, created=existing is None)
        return user_id

    async def close(self) -> None:
        await self._provider.close()


def build_oidc(settings: Settings, accounts: Accounts, users: Users, auth: Auth, audit: Audit) -> Oidc | None:
    """Single sign-on as the settings configure it, or None when BASTION_OIDC_ISSUER is not set."""
    if not settings.oidc_issuer:
        return None
    config = OidcConfig(settings.oidc_issuer, settings.oidc_client_id, frozenset(settings.oidc_allowed_domains))
    provider = ProviderClient(settings.oidc_issuer, settings.oidc_client_id, settings.oidc_client_secret)
    return Oidc(config, provider, OidcRows(accounts.db), accounts, users, auth, audit)
