"""Device login (RFC 8628) for the CLI and the console: a terminal without a browser asks for a code, a person
signed in elsewhere (the web view, another console) approves it, and the terminal polls for its tokens.

- The session the device gets belongs to the approver, opened like a login's (audited, listed among the
  approver's sessions). With MFA on, only a session that passed MFA may approve: a stolen password alone
  must not be turned into a session through a device code.
- Polling faster than the interval answers `slow_down` and adds five seconds to it (section 3.5); the
  tokens go out once (the grant is spent as they do), a denied request answers `access_denied` once, and an
  expired, spent or unknown device code `expired_token`.
- The user code is eight letters from an alphabet without vowels or look-alikes (section 6.1), shown as
  XXXX-XXXX; case and the hyphen do not matter when it is typed.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from daemon.clock import iso, now
from daemon.services.audit import Audit
from daemon.services.auth import Auth
from daemon.services.principal import Principal
from daemon.services.users import token_hash
from daemon.stores.errors import UniqueViolation
from daemon.stores.sql.accounts import Accounts
from daemon.stores.sql.device import DeviceRows
from shared.errors import ApiError, Code, not_found
from shared.models.auth import DeviceAuthorization, DeviceRequest, TokenPair

LIFETIME = timedelta(minutes=10)
INTERVAL_S = 5
SLOW_DOWN_S = 5  # RFC 8628 section 3.5
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
VERIFICATION_PATH = "/ui/device"


def new_user_code() -> str:
    raw = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(8))
    return f"{raw[:4]}-{raw[4:]}"


def normalise_user_code(typed: str) -> str:
    letters = "".join(ch for ch in typed.upper() if ch.isalpha())
    return f"{letters[:4]}-{letters[4:]}" if len(letters) == 8 else typed.strip().upper()


class DeviceLogins:
    def __init__(self, rows: DeviceRows, accounts: Accounts, auth: Auth, audit: Audit) -> None:
        self._rows = rows
        self._accounts = accounts
        self._auth = auth
        self._audit = audit

    async def start(self, client_name: str, ip: str, base_url: str) -> DeviceAuthorization:
        device_code = secrets.token_urlsafe(32)
        moment = now()
        await self._rows.purge(iso(moment))
        for _ in range(5):  # a user code still in use is drawn again
            user_code = new_user_code()
            try:
                await self._rows.insert({
                    "device_code_hash": token_hash(device_code), "user_code": user_code,
                    "client_name": client_name.strip() or "a device", "ip": ip, "created_at": iso(moment),
                    "expires_at": iso(moment + LIFETIME), "interval_s": INTERVAL_S, "status": "pending",
                })
                break
            except UniqueViolation:
                continue
        else:
            raise ApiError(Code.SERVICE_UNAVAILABLE, "could not draw a free user code", headers={"Retry-After": "1"})
        await self._audit.record("device.requested", ip=ip, user_code=user_code, client_name=client_name)
        uri = base_url + VERIFICATION_PATH
        return DeviceAuthorization(
            device_code=device_code, user_code=user_code, verification_uri=uri,
            verification_uri_complete=f"{uri}?user_code={user_code}", expires_in=int(LIFETIME.total_seconds()),
            interval=INTERVAL_S,
        )

    async def token(self, device_code: str, ip: str, user_agent: str) -> TokenPair:
        hashed = token_hash(device_code)
        grant = await self._rows.by_device_code(hashed)
        moment = now()
        if grant is None or grant["status"] == "spent" or grant["expires_at"] <= iso(moment):
            raise ApiError(Code.EXPIRED_TOKEN, "the device code has expired or was used; start again")
        due_before = iso(moment - timedelta(seconds=grant["interval_s"]))
        if not await self._rows.poll(hashed, iso(moment), due_before):
            await self._rows.slow_down(hashed, iso(moment), SLOW_DOWN_S)
            raise ApiError(Code.SLOW_DOWN, f"poll at most every {grant['interval_s'] + SLOW_DOWN_S} seconds")
        if grant["status"] == "pending":
            raise ApiError(Code.AUTHORIZATION_PENDING, "waiting for someone signed in to approve the code")
        if not await self._rows.spend(hashed, grant["status"]):
            raise ApiError(Code.EXPIRED_TOKEN, "the device code has expired or was used; start again")
        if grant["status"] == "denied":
            raise ApiError(Code.ACCESS_DENIED, "the request was denied")
        user = await self._accounts.user(grant["user_id"])
        if user is None or user["disabled"]:
            raise ApiError(Code.ACCESS_DENIED, "the approver's account is no longer active")
        pair = await self._auth.open_session(user, ip, user_agent, mfa=bool(grant["session_mfa"]))
        await self._audit.record("device.login", actor_id=user["id"], target_id=user["id"], ip=ip,
                                 client_name=grant["client_name"])
        return pair

    async def decide(self, principal: Principal, user_code: str, approve: bool, ip: str) -> DeviceRequest:
        if principal.session_id is None:
            raise ApiError(Code.FORBIDDEN, "an API key cannot approve a device login; sign in")
        session = await self._accounts.session(principal.session_id)
        user = await self._accounts.user(principal.user_id)
        session_mfa = bool(session and session.get("mfa"))
        if approve and user is not None and user["mfa_enabled"] and not session_mfa:
            raise ApiError(Code.FORBIDDEN, "your account uses a second factor: approve from a session that used it")
        decided = await self._rows.decide(normalise_user_code(user_code), iso(now()),
                                          "approved" if approve else "denied", principal.user_id, session_mfa)
        if decided is None:
            raise not_found("pending device login with that code")
        await self._audit.record("device.approved" if approve else "device.denied", actor_id=principal.user_id,
                                 target_id=principal.user_id, ip=ip, user_code=decided["user_code"],
                                 client_name=decided["client_name"], device_ip=decided["ip"])
        return DeviceRequest.model_validate(decided)

    async def pending(self, principal: Principal) -> list[DeviceRequest]:
        if principal.session_id is None:
            raise ApiError(Code.FORBIDDEN, "an API key cannot approve a device login; sign in")
        return [DeviceRequest.model_validate(r) for r in await self._rows.pending(iso(now()), 50)]
