"""Passkeys (WebAuthn) in the web view, with py_webauthn: a second factor after the password, and a sign-in
without one.

- The relying party is this daemon as `BASTION_WEBAUTHN_ORIGINS` and `BASTION_WEBAUTHN_RP_ID` name it,
  never the request's Host header: a passkey is bound to the rp id, and a response is accepted only from
  those origins.
- Challenges are 32 random bytes, one per ceremony, kept server-side only as their SHA-256, bound to the
  browser they were handed to (the SHA-256 of its web-session cookie secret) and, for a registration or a
  second factor, to the user. A response names its challenge in its clientDataJSON: that challenge is
  spent (one UPDATE) before anything else in the response is looked at, so each is used once, failed
  attempts included, and only within CHALLENGE_TTL. py_webauthn then checks the rest (type, origin, rp id
  hash, flags, algorithm, signature).
- The signature counter is checked here, in the same UPDATE that records the use
  (PasskeyRows.take_count), not by py_webauthn's read-then-compare, which two assertions racing with one
  counter would both pass. A counter that does not go up means the key was copied: refused and audited
  as `passkey.clone_suspected`.
- Alone (the password-less sign-in) a passkey must verify its user (PIN or biometrics): it is then both
  factors, and the session counts as one with MFA. After the password, presence is enough.
- Adding a passkey needs a signed-in session that shows it is still its user (the password, or a TOTP
  code: Mfa.reauthenticate), and a passkey is a second factor, so the user's logins with the password
  ask for it (users.mfa_enabled; stores/sql/mfa.py).
"""

from __future__ import annotations

import hashlib
import os
from datetime import timedelta
from typing import Any, NoReturn

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url, parse_client_data_json
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.parse_authentication_credential_json import parse_authentication_credential_json
from webauthn.helpers.parse_registration_credential_json import parse_registration_credential_json
from webauthn.helpers.structs import (
    AuthenticationCredential,
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    RegistrationCredential,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from daemon.clock import iso, now
from daemon.ids import new_id
from daemon.services.audit import Audit
from daemon.services.auth import Auth
from daemon.services.mfa import Mfa
from daemon.services.principal import Principal
from daemon.services.user_cache import UserCache
from daemon.stores.sql import Row
from daemon.stores.sql.accounts import Accounts
from daemon.stores.sql.passkeys import PasskeyRows
from shared.errors import ApiError, Code, not_found
from shared.models.auth import TokenPair
from shared.models.transfer import MAX_FACTORS

CHALLENGE_TTL = timedelta(minutes=5)
RP_NAME = "Bastion"
MAX_NAME = 64
MAX_RESPONSE = 16 * 1024  # a response with "none" attestation is well under 2 KiB


def _hash(challenge: bytes) -> str:
    return hashlib.sha256(challenge).hexdigest()


class Passkeys:
    def __init__(self, rows: PasskeyRows, accounts: Accounts, mfa: Mfa, auth: Auth, audit: Audit,
                 user_cache: UserCache, rp_id: str, origins: tuple[str, ...]) -> None:
        self._rows = rows
        self._accounts = accounts
        self._mfa = mfa
        self._auth = auth
        self._audit = audit
        self._user_cache = user_cache
        self._rp_id = rp_id
        self._origins = list(origins)

    # -- the owner's list ----------------------------------------------------------------------------

    async def list(self, principal: Principal) -> list[Row]:
        return await self._rows.of_user(principal.user_id)

    async def remove(self, principal: Principal, passkey_id: str, ip: str) -> None:
        """Only the owner removes a passkey; anyone else's id is not there for them (404)."""
        Mfa.session_only(principal)
        if not await self._rows.delete(passkey_id, principal.user_id, iso(now())):
            raise not_found("passkey")
        await self._user_cache.changed("user.updated", principal.user_id)
        await self._audit.record("passkey.removed", actor_id=principal.user_id, target_id=principal.user_id, ip=ip,
                                 passkey_id=passkey_id)

    # -- registration --------------------------------------------------------------------------------

    async def registration_options(self, principal: Principal, password: str | None, code: str | None,
                                   browser: str, ip: str) -> str:
        """The options for navigator.credentials.create(), as JSON, once the user showed it is them."""
        existing = await self._rows.of_user(principal.user_id)
        self._room_for_one(existing)  # before the password is spent on it
        user = await self._mfa.reauthenticate(principal, password, code, ip)
        options = generate_registration_options(
            rp_id=self._rp_id, rp_name=RP_NAME, user_name=user["email"],
            user_display_name=user["display_name"] or user["email"],
            user_id=user["id"].encode(),  # random, not personal: the user handle an assertion names
            challenge=await self._challenge("register", browser, user["id"]),
            timeout=int(CHALLENGE_TTL.total_seconds() * 1000),
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.PREFERRED, user_verification=UserVerificationRequirement.PREFERRED),
            exclude_credentials=[PublicKeyCredentialDescriptor(id=_raw(r)) for r in existing],
        )
        return options_to_json(options)

    async def register(self, principal: Principal, name: str, response: str, browser: str, ip: str) -> Row:
        Mfa.session_only(principal)
        name = name.strip() or "Passkey"
        if len(name) > MAX_NAME:
            raise ApiError(Code.VALIDATION_FAILED, f"a passkey's name has at most {MAX_NAME} characters")
        self._room_for_one(await self._rows.of_user(principal.user_id))
        credential = self._parse(response, parse_registration_credential_json)
        challenge = await self._spend(credential, "register", browser)
        if challenge is None or challenge["user_id"] != principal.user_id:
            await self._refuse(principal.user_id, ip, "challenge")
        try:
            verified = verify_registration_response(
                credential=credential, expected_challenge=challenge["bytes"], expected_rp_id=self._rp_id,
                expected_origin=self._origins)
        except WebAuthnException as exc:
            await self._refuse(principal.user_id, ip, "registration", exc)
        moment = iso(now())
        row = {
            "id": new_id("pk"), "user_id": principal.user_id,
            "credential_id": bytes_to_base64url(verified.credential_id),
            "public_key": verified.credential_public_key, "sign_count": verified.sign_count, "name": name,
            "aaguid": verified.aaguid, "backed_up": verified.credential_backed_up, "created_at": moment,
            "transports": " ".join(t.value for t in credential.response.transports or []), "last_used_at": None,
        }
        outcome = await self._rows.insert(row, MAX_FACTORS)
        if outcome == "taken":
            raise ApiError(Code.CONFLICT, "this passkey is registered already")
        if outcome == "full":
            raise _full()
        await self._user_cache.changed("user.updated", principal.user_id)
        await self._audit.record("passkey.added", actor_id=principal.user_id, target_id=principal.user_id, ip=ip,
                                 passkey_id=row["id"], name=name)
        return row

    @staticmethod
    def _room_for_one(existing: list[Row]) -> None:
        """An account holds as many passkeys as `bastiond import` carries for one (each is a row and an
        exclusion every ceremony lists); a 51st waits for one to be removed."""
        if len(existing) >= MAX_FACTORS:
            raise _full()

    # -- authentication ------------------------------------------------------------------------------

    async def authentication_options(self, browser: str, mfa_token: str | None) -> str:
        """The options for navigator.credentials.get(), as JSON: for the login whose password earned
        `mfa_token` (that user's passkeys), or for a sign-in without a password (any passkey of this rp)."""
        user_id, allowed = None, []
        if mfa_token:
            user = await self._mfa.pending_user(mfa_token)
            user_id = user["id"]
            allowed = [PublicKeyCredentialDescriptor(id=_raw(r)) for r in await self._rows.of_user(user_id)]
            if not allowed:
                raise ApiError(Code.CONFLICT, "this account has no passkey; enter a code instead")
        options = generate_authentication_options(
            rp_id=self._rp_id, challenge=await self._challenge("authenticate", browser, user_id),
            timeout=int(CHALLENGE_TTL.total_seconds() * 1000), allow_credentials=allowed,
            user_verification=UserVerificationRequirement.PREFERRED if mfa_token else UserVerificationRequirement.REQUIRED,
        )
        return options_to_json(options)

    async def sign_in(self, response: str, browser: str, ip: str, user_agent: str) -> TokenPair:
        """A sign-in with a passkey alone: it must have verified its user."""
        user = await self._assert(response, browser, ip, None)
        return await self._auth.open_session(user, ip, user_agent, mfa=True)

    async def second_factor(self, mfa_token: str, response: str, browser: str, ip: str, user_agent: str) -> TokenPair:
        """A login's second step with a passkey of the user whose password earned `mfa_token`."""
        async def check(user: Row) -> str:
            await self._assert(response, browser, ip, user)
            return "passkey"

        user = await self._mfa.verify_factor(mfa_token, check, ip)
        return await self._auth.open_session(user, ip, user_agent, mfa=True)

    async def _assert(self, response: str, browser: str, ip: str, expected: Row | None) -> Row:
        """The user whose passkey signed this response to a live challenge of this browser, after every check."""
        expected_id = expected["id"] if expected else None
        credential = self._parse(response, parse_authentication_credential_json)
        challenge = await self._spend(credential, "authenticate", browser)
        if challenge is None or challenge["user_id"] != expected_id:
            await self._refuse(expected_id, ip, "challenge")
        passkey = await self._rows.by_credential_id(bytes_to_base64url(credential.raw_id))
        if passkey is None:  # never registered, or removed
            await self._refuse(expected_id, ip, "unknown_credential")
        if expected_id is not None and passkey["user_id"] != expected_id:
            await self._refuse(expected_id, ip, "another_users_credential", passkey_id=passkey["id"])
        handle = credential.response.user_handle
        if handle is not None and handle != passkey["user_id"].encode():
            await self._refuse(passkey["user_id"], ip, "user_handle", passkey_id=passkey["id"])
        user = expected or await self._accounts.user(passkey["user_id"])
        if user is None or user["disabled"]:
            await self._refuse(passkey["user_id"], ip, "disabled", passkey_id=passkey["id"])
        try:
            # The counter is checked below, atomically; 0 here keeps py_webauthn from comparing it itself.
            verified = verify_authentication_response(
                credential=credential, expected_challenge=challenge["bytes"], expected_rp_id=self._rp_id,
                expected_origin=self._origins, credential_public_key=passkey["public_key"],
                credential_current_sign_count=0, require_user_verification=expected is None)
        except WebAuthnException as exc:
            await self._refuse(passkey["user_id"], ip, "assertion", exc, passkey_id=passkey["id"])
        if not await self._rows.take_count(passkey["id"], verified.new_sign_count, iso(now())):
            await self._audit.record("passkey.clone_suspected", target_id=passkey["user_id"], ip=ip,
                                     passkey_id=passkey["id"], sign_count=verified.new_sign_count)
            raise ApiError(Code.PASSKEY_REFUSED, "this passkey's signature counter went back: it may have been "
                           "copied, so it is refused")
        await self._audit.record("passkey.used", actor_id=passkey["user_id"], target_id=passkey["user_id"], ip=ip,
                                 passkey_id=passkey["id"], purpose="second_factor" if expected else "sign_in")
        return user

    # -- the parts -----------------------------------------------------------------------------------

    async def _challenge(self, purpose: str, browser: str, user_id: str | None) -> bytes:
        challenge = os.urandom(32)
        moment = now()
        await self._rows.insert_challenge(_hash(challenge), purpose, browser, user_id, iso(moment),
                                          iso(moment + CHALLENGE_TTL))
        return challenge

    @staticmethod
    def _parse(response: str, parse: Any) -> Any:
        if not response or len(response) > MAX_RESPONSE:
            raise ApiError(Code.VALIDATION_FAILED, "no passkey answer came with the form")
        try:
            return parse(response)
        except (WebAuthnException, ValueError, TypeError, KeyError):
            raise ApiError(Code.VALIDATION_FAILED, "the passkey answer is not readable") from None

    async def _spend(self, credential: RegistrationCredential | AuthenticationCredential, purpose: str,
                     browser: str) -> dict | None:
        """The challenge the response names, spent now, if it was this browser's, live and unspent."""
        try:
            challenge = parse_client_data_json(credential.response.client_data_json).challenge
        except (WebAuthnException, ValueError, TypeError, KeyError):
            raise ApiError(Code.VALIDATION_FAILED, "the passkey answer is not readable") from None
        row = await self._rows.spend_challenge(_hash(challenge), purpose, browser, iso(now()))
        return None if row is None else {**row, "bytes": challenge}

    async def _refuse(self, user_id: str | None, ip: str, reason: str, exc: Exception | None = None,
                      **detail: str) -> NoReturn:
        await self._audit.record("passkey.failed", target_id=user_id, ip=ip, reason=reason,
                                 **({"error": str(exc)[:200]} if exc else {}), **detail)
        raise ApiError(Code.PASSKEY_REFUSED, "the passkey was not accepted (a used or expired challenge, an unknown "
                       "passkey, or a signature that does not check out); try again")


def _raw(row: Row) -> bytes:
    return base64url_to_bytes(row["credential_id"])


def _full() -> ApiError:
    return ApiError(Code.CONFLICT, f"an account holds at most {MAX_FACTORS} passkeys: remove one to add another")
