"""Logins, rotating refresh tokens, sessions, passwords and API keys; and turning a bearer token
into a Principal for every request.

Refresh tokens are opaque (256 random bits), stored only as SHA-256 hashes, and spent on use. When a
token is spent, the pair that replaced it is stored sealed with a key derived from the spent token
itself: a client that retries within the grace window (a lost response) gets the same pair back,
while nobody without the token, a database reader included, can read it. A spent token replayed
after the grace window is theft or a bug: the whole session is revoked.
"""

from __future__ import annotations

import os
import secrets
from datetime import datetime, timedelta

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from daemon.clock import iso, now, parse
from daemon.ids import new_id
from daemon.services.audit import Audit
from daemon.services.guesses import LOGIN, PASSWORD_CHANGE, RESET_TOKEN, Guesses
from daemon.services.mfa import Mfa
from daemon.services.pages import decode_cursor, next_cursor
from daemon.services.passwords import Passwords, check_policy
from daemon.services.principal import Principal, scopes_for_role
from daemon.services.realtime import PRIVATE
from daemon.services.sessions import Sessions
from daemon.services.tokens import Tokens
from daemon.services.user_cache import UserCache
from daemon.services.users import normalise_email, token_hash
from daemon.stores.events import EventBus
from daemon.stores.sql.accounts import Accounts
from shared.errors import ApiError, Code
from shared.models import Page, PageQuery
from shared.models.auth import ApiKey, ChangePassword, CreateApiKey, CreatedApiKey, Session, TokenPair, TotpConfirmed
from shared.models.users import User

API_KEY_PREFIX = "bst_"
REFRESH_PREFIX = "brt_"
API_KEY_TOUCH_EVERY = timedelta(minutes=1)


def _seal_key(token: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"bastion refresh successor").derive(token.encode())


def seal(token: str, payload: bytes) -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(_seal_key(token)).encrypt(nonce, payload, None)


def unseal(token: str, sealed: bytes) -> bytes:
    return AESGCM(_seal_key(token)).decrypt(sealed[:12], sealed[12:], None)


class Auth:
    def __init__(
        self,
        accounts: Accounts,
        passwords: Passwords,
        tokens: Tokens,
        sessions: Sessions,
        user_cache: UserCache,
        audit: Audit,
        events: EventBus,
        guesses: Guesses,
        refresh_ttl_s: int,
        reuse_grace_s: int,
        mfa: Mfa,
    ) -> None:
        self._accounts = accounts
        self._passwords = passwords
        self._tokens = tokens
        self._sessions = sessions
        self._user_cache = user_cache
        self._audit = audit
        self._events = events
        self._guesses = guesses
        self._refresh_ttl = timedelta(seconds=refresh_ttl_s)
        self._grace_s = reuse_grace_s
        self._mfa = mfa

    # authentication of every request

    async def authenticate(self, token: str) -> Principal:
        if token.startswith(API_KEY_PREFIX):
            return await self._authenticate_key(token)
        claims = await self._tokens.verify(token)
        if await self._sessions.is_revoked(claims["sid"]):
            raise ApiError(Code.UNAUTHORIZED, "the session has ended")
        # A token says who its user was when it was issued; what they may do now is the user's row now
        # (from the user cache, so no round trip on most requests). Revocations alone did not cover it: a
        # deleted user's sessions go with the user, so after a restart nothing remembered them and the
        # token of a deleted admin worked again (issue 21).
        user = await self._user_cache.get(claims["sub"])
        if user is None or user.disabled:
            raise ApiError(Code.UNAUTHORIZED, "the account is deleted or disabled")
        # Never more than both say: a promotion applies from the next login, a demotion at once.
        role = "admin" if user.role == "admin" and claims.get("role") == "admin" else "user"
        return Principal(
            user_id=claims["sub"],
            role=role,
            session_id=claims["sid"],
            scopes=scopes_for_role(role),
            expires_at=float(claims["exp"]),
        )

    async def _authenticate_key(self, key: str) -> Principal:
        row = await self._accounts.api_key_by_hash(token_hash(key))
        moment = now()
        if (
            row is None
            or row["revoked_at"]
            or row["disabled"]
            or (row["expires_at"] and parse(row["expires_at"]) <= moment)
        ):
            raise ApiError(Code.UNAUTHORIZED, "the API key is not valid")
        # last_used_at is approximate on purpose: a write per request would serialise every reader.
        if row["last_used_at"] is None or parse(row["last_used_at"]) < moment - API_KEY_TOUCH_EVERY:
            await self._accounts.touch_api_key(row["id"], iso(moment))
        scopes = frozenset(row["scopes"].split()) & scopes_for_role(row["role"])
        # The key's expiry goes with it, so that a WebSocket opened with the key closes when it expires.
        expires_at = parse(row["expires_at"]).timestamp() if row["expires_at"] else None
        return Principal(user_id=row["user_id"], role=row["role"], api_key_id=row["id"], scopes=scopes,
                         expires_at=expires_at)

    # login and tokens

    async def login(self, email: str, password: str, ip: str, user_agent: str) -> TokenPair:
        email = normalise_email(email)
        guess = await self._guesses.reserve(LOGIN, account=email, address=ip)
        row = await self._accounts.user_with_hash_by_email(email)
        # Unknown accounts spend the same verify as known ones, so timing does not tell them apart.
        good = await guess.check(self._passwords.verify(row["password_hash"] if row else None, password))
        if not good or row is None or row["disabled"]:
            await self._audit.record("login.failed", target_id=row["id"] if row else None, ip=ip)
            raise ApiError(Code.INVALID_CREDENTIALS, "the email or the password is wrong")
        await guess.right()
        if self._passwords.needs_rehash(row["password_hash"]):
            await self._accounts.update_user(row["id"], {"password_hash": await self._passwords.hash(password)})
        await self._mfa.gate(row)  # refuses with an mfa_token when a second factor is due
        return await self.open_session(row, ip, user_agent, mfa=False)

    async def login_federated(self, row: dict, ip: str, user_agent: str) -> TokenPair:
        """A login that a single sign-on provider vouched for (services/oidc.py) in place of the password:
        the same second-factor gate and the same session as any other."""
        await self._mfa.gate(row)
        return await self.open_session(row, ip, user_agent, mfa=False)

    async def verify_mfa(self, mfa_token: str, code: str, ip: str, user_agent: str) -> TokenPair:
        """A login's second step: the `mfa_token` of its right password, and a code."""
        return await self.open_session(await self._mfa.verify(mfa_token, code, ip), ip, user_agent, mfa=True)

    async def confirm_totp(self, principal: Principal | None, code: str, mfa_token: str | None, ip: str,
                           user_agent: str) -> TotpConfirmed:
        """TOTP's first code; confirmed with the `mfa_token` of a login, it also opens that login's session."""
        codes, user = await self._mfa.confirm_totp(principal, code, mfa_token, ip)
        session = await self.open_session(user, ip, user_agent, mfa=True) if principal is None else None
        return TotpConfirmed(recovery_codes=codes, session=session)

    async def open_session(self, row: dict, ip: str, user_agent: str, mfa: bool) -> TokenPair:
        """A new session for the user `row` (a login that passed every check, or an approved device)."""
        moment = now()
        session_id = new_id("ses")
        refresh = REFRESH_PREFIX + secrets.token_urlsafe(32)
        # One round trip to PostgreSQL for the four writes, in one transaction, and the user's row as they
        # leave it: a login's SQL otherwise cost the event loop about as much as everything else in it
        # (each round trip costs the loop about 130 us of CPU here).
        session = {
            "id": session_id,
            "user_id": row["id"],
            "created_at": iso(moment),
            "last_used_at": iso(moment),
            "expires_at": iso(moment + self._refresh_ttl),
            "user_agent": user_agent[:300],
            "ip": ip,
            "mfa": mfa,
        }
        async with self._accounts.db.batch() as writes:
            await self._accounts.insert_session(session, writes)
            await self._accounts.insert_refresh(token_hash(refresh), session_id, iso(moment), iso(moment + self._refresh_ttl), writes)
            entry = await self._audit.record("login.succeeded", actor_id=row["id"], target_id=row["id"], ip=ip,
                                             session_id=session_id, conn=writes)
            self._accounts.record_login(row["id"], iso(moment), writes)  # last: the user's row comes back
        await self._audit.announce(entry)
        if writes.row is None:  # deleted the moment it logged in: its session went with it
            raise ApiError(Code.INVALID_CREDENTIALS, "the email or the password is wrong")
        user = await self._user_cache.changed("user.updated", row["id"], writes.row)  # last_login_at
        # The session as GET /auth/sessions lists it (no expiry, no MFA flag there), with its owner.
        await self._events.publish(PRIVATE, "session.created",
                                   {k: v for k, v in session.items() if k not in ("expires_at", "mfa")})
        return self._pair(user, session_id, refresh)

    def _pair(self, user: User, session_id: str, refresh: str) -> TokenPair:
        access, _ = self._tokens.issue(user.id, user.role, session_id)
        return TokenPair(access_token=access, refresh_token=refresh, expires_in=self._tokens.ttl_s, user=user)

    async def refresh(self, token: str, ip: str) -> TokenPair:
        hashed = token_hash(token)
        row = await self._accounts.refresh_token(hashed)
        moment = now()
        if row is None or row["revoked_at"] or parse(row["expires_at"]) <= moment:
            raise ApiError(Code.UNAUTHORIZED, "the refresh token is not valid")
        if row["spent_at"] is None:
            user = await self._user_cache.get(row["user_id"])
            if user is None or user.disabled:
                raise ApiError(Code.UNAUTHORIZED, "the refresh token is not valid")
            successor = REFRESH_PREFIX + secrets.token_urlsafe(32)
            pair = self._pair(user, row["session_id"], successor)
            async with self._accounts.db.transaction() as tx:
                won = await self._accounts.spend_refresh(hashed, iso(moment), seal(token, pair.model_dump_json().encode()), tx)
                if won:
                    await self._accounts.insert_refresh(
                        token_hash(successor), row["session_id"], iso(moment), row["session_expires_at"], tx
                    )
                    await self._accounts.touch_session(row["session_id"], iso(moment), tx)
            if won:
                return pair
            row = await self._accounts.refresh_token(hashed)  # a concurrent refresh spent it first
            if row is None:
                raise ApiError(Code.UNAUTHORIZED, "the refresh token is not valid")
        return await self._replay(token, row, moment, ip)

    async def _replay(self, token: str, row: dict, moment: datetime, ip: str) -> TokenPair:
        spent_at = parse(row["spent_at"])
        if moment - spent_at <= timedelta(seconds=self._grace_s) and row["successor"]:
            return TokenPair.model_validate_json(unseal(token, bytes(row["successor"])))
        await self._sessions.revoke(row["session_id"], row["user_id"], "refresh token reused")
        await self._audit.record("refresh.reused", target_id=row["user_id"], ip=ip, session_id=row["session_id"])
        raise ApiError(Code.TOKEN_REUSED, "this refresh token was already used; the session is revoked")

    async def logout(self, principal: Principal, ip: str) -> None:
        if principal.session_id is None:
            raise ApiError(Code.FORBIDDEN, "an API key has no session to end; revoke the key instead")
        await self._sessions.revoke(principal.session_id, principal.user_id, "logout")
        await self._audit.record("session.revoked", actor_id=principal.user_id, target_id=principal.user_id, ip=ip, session_id=principal.session_id, reason="logout")

    # sessions

    async def list_sessions(self, principal: Principal, page: PageQuery) -> Page[Session]:
        rows = await self._accounts.live_sessions(principal.user_id, iso(now()), decode_cursor(page.cursor), page.limit + 1)
        cursor = next_cursor(rows, page.limit)
        items = [Session.model_validate({**r, "current": r["id"] == principal.session_id}) for r in rows]
        return Page[Session](items=items, next_cursor=cursor)

    async def revoke_session(self, principal: Principal, session_id: str, ip: str) -> None:
        row = await self._accounts.session(session_id)
        if row is None or (row["user_id"] != principal.user_id and not principal.is_admin) or row["revoked_at"]:
            raise ApiError(Code.NOT_FOUND, "no such session")
        await self._sessions.revoke(session_id, row["user_id"], "revoked")
        await self._audit.record("session.revoked", actor_id=principal.user_id, target_id=row["user_id"], ip=ip, session_id=session_id, reason="revoked")

    # passwords

    async def change_password(self, principal: Principal, body: ChangePassword, ip: str) -> None:
        if principal.api_key_id is not None:
            raise ApiError(Code.FORBIDDEN, "an API key cannot change its owner's password; log in to change it")
        guess = await self._guesses.reserve(PASSWORD_CHANGE, account=principal.user_id)
        stored = await self._accounts.password_hash(principal.user_id)
        if not await guess.check(self._passwords.verify(stored, body.current_password)):
            raise ApiError(Code.INVALID_CREDENTIALS, "the current password is wrong")
        await guess.right()
        check_policy(body.new_password, "new_password")
        new_hash = await self._passwords.hash(body.new_password)
        async with self._accounts.db.transaction() as tx:
            await self._accounts.update_user(principal.user_id, {"password_hash": new_hash, "updated_at": iso(now())}, tx)
            await self._sessions.revoke_all(principal.user_id, "password changed", keep=principal.session_id, conn=tx)
        await self._user_cache.changed("user.updated", principal.user_id)  # updated_at
        await self._audit.record("password.changed", actor_id=principal.user_id, target_id=principal.user_id, ip=ip)

    async def reset_password(self, reset_token: str, new_password: str, ip: str) -> None:
        check_policy(new_password, "new_password")
        guess = await self._guesses.reserve(RESET_TOKEN, address=ip)
        new_hash = await self._passwords.hash(new_password)
        async with self._accounts.db.transaction() as tx:
            user_id = await self._accounts.spend_reset(token_hash(reset_token), iso(now()), tx)
            if user_id is None:
                raise ApiError(Code.UNAUTHORIZED, "the reset token is not valid")
            await self._accounts.update_user(user_id, {"password_hash": new_hash, "updated_at": iso(now())}, tx)
            await self._accounts.spend_user_resets(user_id, iso(now()), tx)  # an older link by mail, say
            await self._sessions.revoke_all(user_id, "password reset", conn=tx)
        await guess.right()
        await self._user_cache.changed("user.updated", user_id)  # updated_at
        await self._audit.record("password.reset", target_id=user_id, ip=ip)

    # API keys

    async def create_api_key(self, principal: Principal, body: CreateApiKey, ip: str) -> CreatedApiKey:
        wanted = frozenset(body.scopes)
        if not wanted <= principal.scopes:
            raise ApiError(Code.FORBIDDEN, "a key cannot have scopes its creator lacks")
        moment = now()
        if body.expires_at is not None and body.expires_at <= moment:
            raise ApiError(Code.VALIDATION_FAILED, "expires_at is in the past")
        key = API_KEY_PREFIX + secrets.token_urlsafe(32)
        row = {
            "id": new_id("key"),
            "user_id": principal.user_id,
            "name": body.name,
            "key_hash": token_hash(key),
            "scopes": " ".join(sorted(wanted)),
            "created_at": iso(moment),
            "expires_at": iso(body.expires_at) if body.expires_at else None,
        }
        await self._accounts.insert_api_key(row)
        created = CreatedApiKey(
            id=row["id"], name=body.name, scopes=sorted(wanted), created_at=moment, expires_at=body.expires_at, key=key
        )
        await self._events.publish(PRIVATE, "key.created", {
            **created.model_dump(mode="json", exclude={"key"}), "user_id": principal.user_id})
        await self._audit.record("api_key.created", actor_id=principal.user_id, target_id=principal.user_id, ip=ip, key_id=row["id"], scopes=sorted(wanted))
        return created

    async def list_api_keys(self, principal: Principal, page: PageQuery) -> Page[ApiKey]:
        rows = await self._accounts.api_keys(principal.user_id, decode_cursor(page.cursor), page.limit + 1)
        cursor = next_cursor(rows, page.limit)
        items = [ApiKey.model_validate({**r, "scopes": r["scopes"].split()}) for r in rows]
        return Page[ApiKey](items=items, next_cursor=cursor)

    def jwks(self) -> dict:
        return self._tokens.jwks()

    async def reload_keys(self) -> None:
        await self._tokens.reload()

    async def revoke_api_key(self, principal: Principal, key_id: str, ip: str) -> None:
        owner = await self._accounts.api_key_owner(key_id)
        if owner is None or (owner != principal.user_id and not principal.is_admin):
            raise ApiError(Code.NOT_FOUND, "no such API key")
        if await self._accounts.revoke_api_key(key_id, iso(now())):
            await self._events.publish(PRIVATE, "key.revoked", {"id": key_id, "user_id": owner})
        await self._audit.record("api_key.revoked", actor_id=principal.user_id, target_id=owner, ip=ip, key_id=key_id)
