"""Users and roles: who may see and change whom.

A non-admin asking about another user hears 404, never 403, so ids of other accounts cannot be
probed. The last active admin cannot be demoted, disabled or deleted (409). Every change is
announced on the `users` topic and recorded in the audit trail.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import TYPE_CHECKING

from webauthn.helpers import base64url_to_bytes

from daemon.clock import iso, now
from daemon.ids import new_id
from daemon.services.audit import Audit
from daemon.services.pages import decode_cursor, next_cursor
from daemon.services.passwords import Passwords, check_policy
from daemon.services.principal import Principal
from daemon.services.sessions import Sessions
from daemon.services.user_cache import UserCache
from daemon.stores.errors import UniqueViolation
from daemon.stores.sql import Connection
from daemon.stores.sql import mfa as mfa_rows
from daemon.stores.sql import passkeys as passkey_rows
from daemon.stores.sql.accounts import Accounts
from shared.errors import ApiError, Code, not_found
from shared.models import Page
from shared.models.transfer import ExportedUser, ImportResult
from shared.models.users import CreateUser, ResetToken, UpdateMe, UpdateUser, User, UserQuery

if TYPE_CHECKING:  # mfa.py imports this module
    from daemon.services.mfa import SecretSealer

RESET_TTL = timedelta(hours=1)
# Not an argon2 hash, so no password ever verifies against it (passwords.py answers False for it).
NO_PASSWORD = "!no-password"


def normalise_email(email: str) -> str:
    # The domain part is case-insensitive; local parts are too in practice, and treating them so
    # stops two accounts that differ only in case.
    return email.strip().lower()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Users:
    def __init__(self, accounts: Accounts, passwords: Passwords, sessions: Sessions, audit: Audit, cache: UserCache,
                 sealer: SecretSealer) -> None:
        self._accounts = accounts
        self._passwords = passwords
        self._sessions = sessions
        self._audit = audit
        self._cache = cache
        self._sealer = sealer

    async def _load(self, user_id: str) -> User:
        user = await self._cache.get(user_id)
        if user is None:
            raise not_found("user")
        return user

    async def _changed(self, event: str, user_id: str) -> User:
        user = await self._cache.changed(event, user_id)
        if user is None:
            raise not_found("user")  # deleted by someone else in the meantime
        return user

    async def get(self, principal: Principal, user_id: str) -> User:
        if user_id != principal.user_id and not principal.is_admin:
            raise not_found("user")
        return await self._load(user_id)

    async def count(self) -> int:
        return await self._accounts.count_users()

    async def list(self, query: UserQuery) -> Page[User]:
        rows = await self._accounts.list_users(
            query.q, query.role, query.disabled, decode_cursor(query.cursor), query.limit + 1
        )
        cursor = next_cursor(rows, query.limit)
        return Page[User](items=[User.model_validate(r) for r in rows], next_cursor=cursor)

    async def create(
        self, email: str, password: str, role: str, display_name: str, actor: Principal | None, ip: str | None
    ) -> User:
        check_policy(password)
        return await self._insert(email, await self._passwords.hash(password), role, display_name,
                                  actor.user_id if actor else None, ip)

    async def create_federated(self, email: str, display_name: str, ip: str | None, via: str) -> User:
        """An account made at its first single sign-on (services/oidc.py): role `user`, and no password
        of its own until a reset (an administrator's, or a link by mail); its address counts as verified, since
        the provider vouched for it (oidc.py signs in only with `email_verified`)."""
        return await self._insert(email, NO_PASSWORD, "user", display_name[:200], None, ip, verified=True, via=via)

    async def _insert(self, email: str, password_hash: str, role: str, display_name: str, actor_id: str | None,
                      ip: str | None, verified: bool = False, **detail: str) -> User:
        stamp = iso(now())
        row = {
            "id": new_id("usr"),
            "email": normalise_email(email),
            "display_name": display_name,
            "role": role,
            "disabled": False,
            "password_hash": password_hash,
            "created_at": stamp,
            "updated_at": stamp,
            "email_verified": verified,
        }
        try:
            await self._accounts.insert_user(row)
        except UniqueViolation:
            raise ApiError(Code.CONFLICT, "an account with this email exists") from None
        await self._audit.record("user.created", actor_id=actor_id, target_id=row["id"], ip=ip, role=role, **detail)
        return await self._changed("user.created", row["id"])

    async def create_by_admin(self, actor: Principal, body: CreateUser, ip: str | None) -> User:
        return await self.create(body.email, body.password, body.role, body.display_name, actor, ip)

    async def import_users(self, actor: Principal, records: list[ExportedUser], ip: str | None) -> ImportResult:
        """Accounts moved from another daemon (`bastiond export users`), with their ids and password hashes,
        so that they log in here as there. One whose id or email is taken is skipped, which makes running an
        interrupted import again safe. Each one added is audited and announced as `user.created`."""
        created = 0
        for record in records:
            stamp = iso(now())
            row = {**record.model_dump(exclude={"created_at", "totp", "recovery_codes", "passkeys"}),
                   "email": normalise_email(record.email),
                   "created_at": iso(record.created_at) if record.created_at else stamp, "updated_at": stamp}
            try:
                # One transaction: an account never arrives without the second factors it had.
                async with self._accounts.db.transaction() as tx:
                    await self._accounts.insert_user(row, tx)
                    await self._insert_factors(tx, record, stamp)
            except UniqueViolation:
                continue
            await self._audit.record("user.created", actor_id=actor.user_id, target_id=row["id"], ip=ip,
                                     role=row["role"], imported=True)
            await self._changed("user.created", row["id"])
            created += 1
        return ImportResult(created=created, skipped=len(records) - created)

    async def _insert_factors(self, tx: Connection, record: ExportedUser, stamp: str) -> None:
        totp = None
        if record.totp is not None:
            totp = {"sealed_secret": self._sealer.seal(record.id, record.totp.secret),
                    "confirmed_at": iso(record.totp.confirmed_at), "last_step": record.totp.last_step}
        await mfa_rows.insert_imported(tx, record.id, totp, record.recovery_codes, stamp)
        await passkey_rows.insert_rows(tx, [
            {**passkey.model_dump(), "user_id": record.id, "public_key": base64url_to_bytes(passkey.public_key),
             "created_at": iso(passkey.created_at),
             "last_used_at": iso(passkey.last_used_at) if passkey.last_used_at else None}
            for passkey in record.passkeys
        ])
        await mfa_rows.refresh_mfa_flag(tx, record.id, stamp)

    async def update_me(self, principal: Principal, body: UpdateMe) -> User:
        changes = body.model_dump(exclude_unset=True, exclude_none=True)
        if not changes:
            return await self._load(principal.user_id)
        changes["updated_at"] = iso(now())
        await self._accounts.update_user(principal.user_id, changes)
        return await self._changed("user.updated", principal.user_id)

    async def update(self, actor: Principal, user_id: str, body: UpdateUser, ip: str | None) -> User:
        changes = body.model_dump(exclude_unset=True, exclude_none=True)
        async with self._accounts.db.transaction() as tx:
            await self._accounts.lock_admins(tx)
            current = await self._accounts.user(user_id, tx)
            if current is None:
                raise not_found("user")
            loses_admin = current["role"] == "admin" and not current["disabled"] and (
                changes.get("role") == "user" or changes.get("disabled") is True
            )
            if loses_admin and await self._accounts.active_admin_ids(tx) == [user_id]:
                raise ApiError(Code.CONFLICT, "this is the last active admin; promote another user first")
            if changes:
                await self._accounts.update_user(user_id, {**changes, "updated_at": iso(now())}, tx)
            if changes.get("disabled") is True and not current["disabled"]:
                await self._sessions.revoke_all(user_id, "user disabled", conn=tx)
            elif changes.get("role", current["role"]) != current["role"]:
                # Access tokens carry the role; ending the sessions makes the new role apply at once.
                await self._sessions.revoke_all(user_id, "role changed", conn=tx)
        for field, event in (("role", "user.role_changed"), ("disabled", "user.status_changed")):
            if field in changes and changes[field] != (bool(current[field]) if field == "disabled" else current[field]):
                await self._audit.record(
                    event, actor_id=actor.user_id, target_id=user_id, ip=ip, **{"from": current[field], "to": changes[field]}
                )
        if changes:
            return await self._changed("user.updated", user_id)
        return await self._load(user_id)

    async def delete(self, actor: Principal, user_id: str, ip: str | None) -> None:
        async with self._accounts.db.transaction() as tx:
            await self._accounts.lock_admins(tx)
            current = await self._accounts.user(user_id, tx)
            if current is None:
                raise not_found("user")
            if await self._accounts.active_admin_ids(tx) == [user_id]:
                raise ApiError(Code.CONFLICT, "this is the last active admin; promote another user first")
            await self._sessions.revoke_all(user_id, "user deleted", conn=tx)
            await self._accounts.delete_user(user_id, tx)
        await self._audit.record("user.deleted", actor_id=actor.user_id, target_id=user_id, ip=ip, email=current["email"])
        await self._cache.deleted(user_id)

    async def issue_reset(self, actor: Principal, user_id: str, ip: str | None) -> ResetToken:
        await self._load(user_id)
        issued = await self.new_reset_token(user_id, RESET_TTL)
        await self._audit.record("password_reset.issued", actor_id=actor.user_id, target_id=user_id, ip=ip)
        return issued

    async def new_reset_token(self, user_id: str, ttl: timedelta) -> ResetToken:
        """A reset token (an admin's, or a link by mail: services/mail.py); only its hash is kept."""
        token = "prt_" + secrets.token_urlsafe(32)
        moment = now()
        await self._accounts.insert_reset(token_hash(token), user_id, iso(moment), iso(moment + ttl))
        return ResetToken(reset_token=token, expires_at=moment + ttl)
