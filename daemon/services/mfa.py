"""Second factors: TOTP (RFC 6238: SHA-1, 6 digits, 30 s steps) with ten single-use recovery codes, and the
`mfa_token` that carries a login from its right password to its code.

- A code is never accepted twice: each factor keeps the time step of the last code it accepted, and a
  code is taken only by raising that step (one UPDATE, so two requests racing with the same code cannot
  both win). Codes of the step before and after the current one are accepted for clock drift.
- Every code tried counts toward the account's failed-login limits (the login's own policy in
  services/guesses.py), reserved before the code is checked, and toward its `mfa_token`'s five tries, also
  taken first: a flood of concurrent guesses cannot get past either. A password given here counts as a
  password change's does.
- Enrolment: the password (or, when a role makes MFA compulsory, the `mfa_token` of that login) starts
  it, the first good code confirms it and returns the recovery codes, which are stored only as hashes.
- The TOTP secret is sealed with a key from the secrets store, so a copy of the database is not enough to
  make codes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import NoReturn

import pyotp
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from daemon.clock import iso, now
from daemon.services.audit import Audit
from daemon.services.guesses import LOGIN, PASSWORD_CHANGE, Guesses
from daemon.services.passwords import Passwords
from daemon.services.principal import Principal
from daemon.services.user_cache import UserCache
from daemon.services.users import normalise_email, token_hash
from daemon.stores.secrets import SecretStore, get_or_create
from daemon.stores.sql import Row
from daemon.stores.sql.accounts import Accounts
from daemon.stores.sql.mfa import MfaRows
from shared.errors import ApiError, Code, not_found
from shared.models.auth import TotpSecret

CHALLENGE_TTL = timedelta(minutes=5)
CODES_PER_CHALLENGE = 5
RECOVERY_CODES = 10
ISSUER = "Bastion"
_RECOVERY_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I to misread
_SECRET_NAME = "mfa_key"


def new_recovery_code() -> str:
    """80 random bits as four groups of four: xxxx-xxxx-xxxx-xxxx."""
    raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(16))
    return "-".join(raw[i:i + 4] for i in range(0, 16, 4))


def _recovery_hash(user_id: str, code: str) -> str:
    plain = "".join(ch for ch in code.upper() if ch.isalnum())
    return hashlib.sha256(f"{user_id}:{plain}".encode()).hexdigest()


def _is_totp_code(code: str) -> bool:
    return len(code) == 6 and code.isascii() and code.isdigit()


@dataclass(frozen=True)
class SecretSealer:
    """AES-GCM with one key from the secrets store, bound to the user it belongs to."""

    key: bytes

    @classmethod
    async def load(cls, store: SecretStore) -> SecretSealer:
        blob = await get_or_create(store, _SECRET_NAME, lambda: {"key": base64.b64encode(os.urandom(32)).decode()})
        return cls(base64.b64decode(blob["key"]))

    def seal(self, user_id: str, secret: str) -> bytes:
        nonce = os.urandom(12)
        return nonce + AESGCM(self.key).encrypt(nonce, secret.encode(), user_id.encode())

    def unseal(self, user_id: str, sealed: bytes) -> str:
        return AESGCM(self.key).decrypt(sealed[:12], sealed[12:], user_id.encode()).decode()


class Mfa:
    def __init__(
        self,
        rows: MfaRows,
        accounts: Accounts,
        passwords: Passwords,
        sealer: SecretSealer,
        guesses: Guesses,
        audit: Audit,
        user_cache: UserCache,
        required_roles: tuple[str, ...] = (),
    ) -> None:
        self._rows = rows
        self._accounts = accounts
        self._passwords = passwords
        self._sealer = sealer
        self._guesses = guesses
        self._audit = audit
        self._user_cache = user_cache
        self._required_roles = frozenset(required_roles)

    # -- the login's second step --------------------------------------------------------------------

    async def gate(self, user: Row) -> None:
        """Called once a login's password was right: refuses it with an `mfa_token` when a code is due."""
        if user["mfa_enabled"]:
            purpose, code, detail = "verify", Code.MFA_REQUIRED, "enter the code from your authenticator app"
        elif user["role"] in self._required_roles:
            purpose, code, detail = "enrol", Code.MFA_ENROLMENT_REQUIRED, \
                f"the {user['role']} role needs a second factor: set one up with POST /auth/mfa/totp"
        else:
            return
        token = secrets.token_urlsafe(32)
        moment = now()
        await self._rows.purge_challenges(iso(moment))
        await self._rows.insert_challenge(token_hash(token), user["id"], purpose, iso(moment), iso(moment + CHALLENGE_TTL))
        raise ApiError(code, detail, extra={"mfa_token": token})

    async def verify(self, mfa_token: str, code: str, ip: str) -> Row:
        """The user whose `mfa_token` this is, once `code` (TOTP or recovery) is right; the token is spent."""
        return await self.verify_factor(mfa_token, lambda user: self._check_code(user, code, ip), ip)

    async def verify_factor(self, mfa_token: str, check: Callable[[Row], Awaitable[str]], ip: str) -> Row:
        """The user whose `mfa_token` this is, once `check(user)` passed (it raises, or names the factor: a
        code above, a passkey in services/passkeys.py); the token is spent. Each check spends a try first."""
        hashed, user = await self._take_try(mfa_token, "verify")
        method = await check(user)
        if not await self._rows.spend_challenge(hashed, iso(now())):
            raise self._dead_token()  # a concurrent request with the same token won
        await self._audit.record("mfa.verified", actor_id=user["id"], target_id=user["id"], ip=ip, method=method)
        return user

    # -- enrolment ------------------------------------------------------------------------------------

    async def start_totp(self, principal: Principal | None, password: str | None, mfa_token: str | None,
                         ip: str) -> TotpSecret:
        user = await self._enrolling_user(principal, password, mfa_token, ip)
        factor = await self._rows.totp(user["id"])
        if factor is not None and factor["confirmed_at"]:
            raise ApiError(Code.CONFLICT, "TOTP is already on; turn it off first to enrol a new device")
        secret = pyotp.random_base32(32)  # 160 bits, as RFC 4226 recommends
        await self._rows.put_pending_totp(user["id"], self._sealer.seal(user["id"], secret), iso(now()))
        await self._audit.record("mfa.enrolment_started", actor_id=user["id"], target_id=user["id"], ip=ip)
        uri = pyotp.TOTP(secret).provisioning_uri(name=user["email"], issuer_name=ISSUER)
        return TotpSecret(secret=secret, otpauth_uri=uri)

    async def confirm_totp(self, principal: Principal | None, code: str, mfa_token: str | None,
                           ip: str) -> tuple[list[str], Row]:
        """The first good code turns TOTP on; returns the recovery codes (this once) and the user."""
        if principal is not None:
            self.session_only(principal)
            user, hashed = await self._user(principal.user_id), None
        elif mfa_token is not None:
            hashed, user = await self._take_try(mfa_token, "enrol")
        else:
            raise ApiError(Code.UNAUTHORIZED, "authentication required: a bearer token or an mfa_token")
        factor = await self._rows.totp(user["id"])
        if factor is None or factor["confirmed_at"]:
            raise ApiError(Code.CONFLICT, "no TOTP enrolment is waiting for its first code; start one with POST /auth/mfa/totp")
        guess = await self._guesses.reserve(LOGIN, account=normalise_email(user["email"]), address=ip)
        step = self._matching_step(factor, code)
        if step is None or not await self._rows.take_step(user["id"], step):
            await self._failed(user, ip, "totp")
        codes = [new_recovery_code() for _ in range(RECOVERY_CODES)]
        moment = iso(now())
        async with self._rows.db.transaction() as tx:
            if hashed is not None and not await self._rows.spend_challenge(hashed, moment, tx):
                raise self._dead_token()
            await self._rows.confirm_totp(user["id"], moment, [_recovery_hash(user["id"], c) for c in codes], tx)
            if principal is not None and principal.session_id:
                await self._rows.mark_session_mfa(principal.session_id, tx)  # it has just shown the factor
        await guess.right()
        await self._user_cache.changed("user.updated", user["id"])
        await self._audit.record("mfa.enabled", actor_id=user["id"], target_id=user["id"], ip=ip)
        return codes, {**user, "mfa_enabled": True}

    async def totp_on(self, user_id: str) -> bool:
        """Whether the user has a confirmed TOTP factor (`mfa_enabled` may come from a passkey alone)."""
        factor = await self._rows.totp(user_id)
        return factor is not None and bool(factor["confirmed_at"])

    async def disable_totp(self, principal: Principal, password: str, code: str, ip: str) -> None:
        self.session_only(principal)
        user = await self._user(principal.user_id)
        if not await self.totp_on(user["id"]):
            raise ApiError(Code.CONFLICT, "TOTP is not on")
        await self._check_password(user, password, ip)
        await self._check_code(user, code, ip)
        await self._rows.remove(user["id"], iso(now()), passkeys=False)  # passkeys are turned off one by one
        await self._user_cache.changed("user.updated", user["id"])
        await self._audit.record("mfa.disabled", actor_id=user["id"], target_id=user["id"], ip=ip)

    async def reset(self, principal: Principal, user_id: str, ip: str) -> None:
        """An admin removes a user's second factors (a lost phone and lost recovery codes)."""
        if not principal.is_admin:
            raise not_found("user")
        await self._user(user_id)
        await self._rows.remove(user_id, iso(now()))
        await self._user_cache.changed("user.updated", user_id)
        await self._audit.record("mfa.reset", actor_id=principal.user_id, target_id=user_id, ip=ip)

    async def reauthenticate(self, principal: Principal, password: str | None, code: str | None, ip: str) -> Row:
        """A signed-in user shows it is still them before adding a sign-in method (a passkey): a TOTP or
        recovery code when they have TOTP on and give one, else the password; counted as elsewhere."""
        self.session_only(principal)
        user = await self._user(principal.user_id)
        if code:
            await self._check_code(user, code, ip)
        elif password:
            await self._check_password(user, password, ip)
        else:
            raise ApiError(Code.VALIDATION_FAILED, "enter your password, or a code from your authenticator app")
        return user

    # -- the parts ------------------------------------------------------------------------------------

    @staticmethod
    def session_only(principal: Principal) -> None:
        if principal.session_id is None:
            raise ApiError(Code.FORBIDDEN, "an API key cannot change second factors; log in")

    async def _user(self, user_id: str) -> Row:
        user = await self._accounts.user(user_id)
        if user is None:
            raise not_found("user")
        return user

    @staticmethod
    def _dead_token() -> ApiError:
        return ApiError(Code.UNAUTHORIZED, "the mfa_token is not valid (used, expired or too many wrong codes); log in again")

    async def pending_user(self, mfa_token: str) -> Row:
        """The user of a live login `mfa_token` waiting for its second factor, without spending a try (to
        offer that user's passkeys)."""
        challenge = await self._rows.live_challenge(token_hash(mfa_token), iso(now()), CODES_PER_CHALLENGE)
        if challenge is None or challenge["purpose"] != "verify":
            raise self._dead_token()
        user = await self._accounts.user(challenge["user_id"])
        if user is None or user["disabled"]:
            raise self._dead_token()
        return user

    async def _take_try(self, mfa_token: str, purpose: str) -> tuple[str, Row]:
        """Spend one of the token's five tries before its code is looked at; its user, who must still be
        allowed in."""
        hashed = token_hash(mfa_token)
        moment = iso(now())
        challenge = await self._rows.live_challenge(hashed, moment, CODES_PER_CHALLENGE)
        if challenge is None or challenge["purpose"] != purpose \
                or not await self._rows.take_challenge_try(hashed, moment, CODES_PER_CHALLENGE):
            raise self._dead_token()
        user = await self._accounts.user(challenge["user_id"])
        if user is None or user["disabled"]:
            raise self._dead_token()
        return hashed, user

    async def _enrolling_user(self, principal: Principal | None, password: str | None, mfa_token: str | None,
                              ip: str) -> Row:
        if principal is not None:
            self.session_only(principal)
            if password is None:
                raise ApiError(Code.VALIDATION_FAILED, "enter your password to set up TOTP")
            user = await self._user(principal.user_id)
            await self._check_password(user, password, ip)
            return user
        if mfa_token is None:
            raise ApiError(Code.UNAUTHORIZED, "authentication required: a bearer token or an mfa_token")
        challenge = await self._rows.live_challenge(token_hash(mfa_token), iso(now()), CODES_PER_CHALLENGE)
        if challenge is None or challenge["purpose"] != "enrol":
            raise self._dead_token()
        return await self._user(challenge["user_id"])

    def _matching_step(self, factor: Row, code: str) -> int | None:
        """The time step (now, or one either side) whose code `code` is."""
        code = code.strip()
        if not _is_totp_code(code):
            return None
        totp = pyotp.TOTP(self._sealer.unseal(factor["user_id"], factor["sealed_secret"]))
        current = totp.timecode(time.time())
        for step in (current - 1, current, current + 1):
            if hmac.compare_digest(totp.generate_otp(step), code):
                return step
        return None

    async def _check_code(self, user: Row, code: str, ip: str) -> str:
        """'totp' or 'recovery' when `code` is one of the user's and not used before; else the failure."""
        guess = await self._guesses.reserve(LOGIN, account=normalise_email(user["email"]), address=ip)
        factor = await self._rows.totp(user["id"])
        if factor is None or not factor["confirmed_at"]:
            await self._failed(user, ip, "none")
        if _is_totp_code(code.strip()):
            step = self._matching_step(factor, code)
            if step is None or not await self._rows.take_step(user["id"], step):
                await self._failed(user, ip, "totp")
            method = "totp"
        else:
            if not await self._rows.spend_recovery_code(user["id"], _recovery_hash(user["id"], code), iso(now())):
                await self._failed(user, ip, "recovery")
            method = "recovery"
        await guess.right()
        return method

    async def _failed(self, user: Row, ip: str, method: str) -> NoReturn:
        await self._audit.record("mfa.failed", target_id=user["id"], ip=ip, method=method)
        raise ApiError(Code.INVALID_MFA_CODE, "the code is wrong, or was already used")

    async def _check_password(self, user: Row, password: str, ip: str) -> None:
        guess = await self._guesses.reserve(PASSWORD_CHANGE, account=user["id"])
        if not await guess.check(self._passwords.verify(await self._accounts.password_hash(user["id"]), password)):
            await self._audit.record("mfa.password_failed", target_id=user["id"], ip=ip)
            raise ApiError(Code.INVALID_CREDENTIALS, "the password is wrong")
        await guess.right()
