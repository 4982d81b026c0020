"""The Bastion API client: one async class for the REST API and the WebSocket.

The TUI, the `bastion` command line, the tests and anyone's scripts use it:

    async with Client("http://127.0.0.1:8420") as bastion:
        await bastion.login("admin@example.com", password)
        async for user in bastion.iter_users():
            print(user.email)

Answers are parsed into the models of `shared.models`; a problem+json answer raises the same
`shared.errors.ApiError` the daemon raised, so callers match on `.code`. A server that cannot be
reached raises `Unreachable`. The access token is refreshed shortly before it expires (and once more
if the server still says 401), and `on_tokens` hears every new pair so a caller can store it. Tokens
never appear in a repr, a log line or an exception message.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
from pydantic import BaseModel

from shared.errors import STATUS, ApiError, Code, FieldError
from shared.servers import BadServerURL, normalise_server  # noqa: F401  (part of this module's API)
from shared.models import Health, Page
from shared.models.auth import ApiKey, CreatedApiKey, DeviceAuthorization, DeviceRequest, Session, TokenPair, TotpConfirmed, TotpSecret
from shared.models.backups import BackupList, BackupRun
from shared.models.users import AuditEvent, ResetToken, User
from shared.models.text import EmbedderList
from shared.models.vectors import Collection, QueryResult

M = TypeVar("M", bound=BaseModel)

_CODE_BY_STATUS = {status: code for code, status in STATUS.items() if code not in (
    Code.INVALID_CREDENTIALS, Code.TOKEN_REUSED)}


# Members of a problem body beyond RFC 9457's that a caller acts on.
_EXTRA_MEMBERS = ("mfa_token",)


class Unreachable(Exception):
    """The server did not answer at all (refused, timed out, not HTTP)."""


@dataclass(repr=False)
class Tokens:
    """A login's token pair; `refresh_at` is when the client renews the access token unasked."""

    access_token: str
    refresh_token: str
    expires_at: float
    refresh_at: float

    @classmethod
    def issued(cls, answer: dict[str, Any], now: float | None = None) -> Tokens:
        now = time.time() if now is None else now
        lifetime = float(answer["expires_in"])
        # A minute before expiry for the usual 15 minutes; a fifth of the lifetime for short ones.
        return cls(
            answer["access_token"], answer["refresh_token"], now + lifetime, now + max(lifetime - 60, lifetime * 0.8)
        )

    def to_json(self) -> str:
        return json.dumps(
            {"access_token": self.access_token, "refresh_token": self.refresh_token,
             "expires_at": self.expires_at, "refresh_at": self.refresh_at}
        )

    @classmethod
    def from_json(cls, text: str) -> Tokens:
        data = json.loads(text)
        return cls(data["access_token"], data["refresh_token"], float(data["expires_at"]), float(data["refresh_at"]))

    def __repr__(self) -> str:
        return f"Tokens(<hidden>, expires_at={self.expires_at:.0f})"


def _problem(status: int, body: Any, headers: Any) -> ApiError:
    """The ApiError a problem+json answer describes (or the nearest one for a bare error status)."""
    kept = {name: headers[name] for name in ("Retry-After", "Allow") if name in headers}
    if isinstance(body, dict) and "code" in body:
        try:
            code = Code(body["code"])
        except ValueError:
            code = _CODE_BY_STATUS.get(status, Code.INTERNAL)
        errors = [FieldError(str(e.get("field", "")), str(e.get("message", ""))) for e in body.get("errors") or []]
        extra = {name: str(body[name]) for name in _EXTRA_MEMBERS if isinstance(body.get(name), str)}
        return ApiError(code, str(body.get("detail") or ""), errors, kept, extra)
    return ApiError(_CODE_BY_STATUS.get(status, Code.INTERNAL), f"HTTP {status}", headers=kept)


@dataclass
class Client:
    server: str
    tokens: Tokens | None = None
    api_key: str | None = field(default=None, repr=False)
    on_tokens: Callable[[Tokens | None], Any] | None = field(default=None, repr=False)
    timeout_s: float = 15.0
    user_agent: str = "bastion-client"

    def __post_init__(self) -> None:
        self.server = normalise_server(self.server)
        self._http: aiohttp.ClientSession | None = None
        self._refreshing = asyncio.Lock()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout_s), headers={"User-Agent": self.user_agent}
            )
        return self._http

    # -- the one place every request goes through -------------------------------------------------

    async def request(self, method: str, path: str, *, body: Any = None, params: dict[str, Any] | None = None,
                      auth: bool = True) -> Any:
        """Send one request; answers the decoded JSON (None for 204) or raises ApiError / Unreachable."""
        if auth and self.tokens is not None and time.time() >= self.tokens.refresh_at:
            await self.refresh()
        status, answer, headers = await self._send(method, path, body, params, auth)
        if status == 401 and auth and self.tokens is not None and answer.get("code") == Code.UNAUTHORIZED:
            # The clock may disagree with the server's; one refresh, one retry.
            await self.refresh()
            status, answer, headers = await self._send(method, path, body, params, auth)
        if status >= 400:
            raise _problem(status, answer, headers)
        return answer

    async def _send(self, method: str, path: str, body: Any, params: dict[str, Any] | None, auth: bool):
        headers = {}
        bearer = self.api_key or (self.tokens.access_token if self.tokens else None)
        if auth and bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        query = {k: _query_value(v) for k, v in (params or {}).items() if v is not None}
        try:
            async with self._session().request(
                method, self.server + path, json=body, params=query, headers=headers
            ) as response:
                text = await response.text()
                status, reply_headers = response.status, response.headers
        except (aiohttp.ClientConnectionError, asyncio.TimeoutError) as exc:
            raise Unreachable(f"cannot reach {self.server}: {_reason(exc)}") from None
        try:
            answer: Any = json.loads(text) if text else None
        except ValueError:  # a proxy's HTML error page, say
            answer = {"detail": text[:200]}
        if status >= 400 and not isinstance(answer, dict):
            answer = {}  # error answers are read as problem details, whatever came
        return status, answer, reply_headers

    async def _model(self, model: type[M], method: str, path: str, **kwargs: Any) -> M:
        return model.model_validate(await self.request(method, path, **kwargs))

    async def _page(self, model: type[M], path: str, params: dict[str, Any]) -> Page[M]:
        answer = await self.request("GET", path, params=params)
        if isinstance(answer, list):  # a short list the server answers whole, without the envelope
            answer = {"items": answer, "next_cursor": None}
        return Page[model].model_validate(answer)  # type: ignore[valid-type]

    async def _walk(self, model: type[M], path: str, params: dict[str, Any]) -> AsyncIterator[M]:
        cursor = None
        while True:
            page = await self._page(model, path, {**params, "limit": 200, "cursor": cursor})
            for item in page.items:
                yield item
            cursor = page.next_cursor
            if not cursor:
                return

    # -- operations ---------------------------------------------------------------------------------

    async def health(self) -> Health:
        return await self._model(Health, "GET", "/healthz", auth=False)

    async def ready(self) -> Health:
        return await self._model(Health, "GET", "/readyz", auth=False)

    # -- auth ---------------------------------------------------------------------------------------

    def _set_tokens(self, tokens: Tokens | None) -> None:
        self.tokens = tokens
        if self.on_tokens is not None:
            self.on_tokens(tokens)

    async def login(self, email: str, password: str) -> TokenPair:
        answer = TokenPair.model_validate(
            await self.request("POST", "/api/v1/auth/login", body={"email": email, "password": password}, auth=False)
        )
        self._set_tokens(Tokens.issued(answer.model_dump()))
        return answer

    async def verify_mfa(self, mfa_token: str, code: str) -> TokenPair:
        """A login's second step, after `login` raised `mfa_required` (its `extra["mfa_token"]`)."""
        answer = TokenPair.model_validate(await self.request(
            "POST", "/api/v1/auth/mfa/verify", body={"mfa_token": mfa_token, "code": code}, auth=False))
        self._set_tokens(Tokens.issued(answer.model_dump()))
        return answer

    async def start_totp(self, *, password: str | None = None, mfa_token: str | None = None) -> TotpSecret:
        """With this client's session and the password, or (no session) with a login's enrolment mfa_token."""
        body = {"password": password} if mfa_token is None else {"mfa_token": mfa_token}
        return await self._model(TotpSecret, "POST", "/api/v1/auth/mfa/totp", body=body, auth=mfa_token is None)

    async def confirm_totp(self, code: str, mfa_token: str | None = None) -> TotpConfirmed:
        body = {"code": code} if mfa_token is None else {"code": code, "mfa_token": mfa_token}
        answer = await self._model(TotpConfirmed, "POST", "/api/v1/auth/mfa/totp/confirm", body=body,
                                   auth=mfa_token is None)
        if answer.session is not None:
            self._set_tokens(Tokens.issued(answer.session.model_dump()))
        return answer

    async def disable_totp(self, password: str, code: str) -> None:
        await self.request("DELETE", "/api/v1/auth/mfa/totp", body={"password": password, "code": code})

    async def start_device_login(self, client_name: str) -> DeviceAuthorization:
        return await self._model(DeviceAuthorization, "POST", "/api/v1/auth/device", body={"client_name": client_name},
                                 auth=False)

    async def device_token(self, device_code: str) -> TokenPair:
        """One poll: the token pair once approved, else ApiError authorization_pending, slow_down, ..."""
        answer = TokenPair.model_validate(await self.request(
            "POST", "/api/v1/auth/device/token", body={"device_code": device_code}, auth=False))
        self._set_tokens(Tokens.issued(answer.model_dump()))
        return answer

    async def pending_devices(self) -> list[DeviceRequest]:
        return (await self._page(DeviceRequest, "/api/v1/auth/device/pending", {})).items

    async def decide_device(self, user_code: str, approve: bool) -> DeviceRequest:
        return await self._model(DeviceRequest, "POST", "/api/v1/auth/device/approve",
                                 body={"user_code": user_code, "approve": approve})

    async def reset_mfa(self, user_id: str) -> None:
        await self.request("DELETE", f"/api/v1/users/{_seg(user_id)}/mfa")

    async def refresh(self) -> None:
        """Trade the refresh token for a new pair; concurrent callers share one refresh."""
        if self.tokens is None:
            raise ApiError(Code.UNAUTHORIZED, "not logged in")
        spent = self.tokens.refresh_token
        async with self._refreshing:
            if self.tokens is None or self.tokens.refresh_token != spent:
                return  # someone else refreshed while this caller waited
            status, answer, headers = await self._send(
                "POST", "/api/v1/auth/refresh", {"refresh_token": spent}, None, False
            )
            if status >= 400:
                raise _problem(status, answer, headers)
            self._set_tokens(Tokens.issued(answer))

    async def logout(self) -> None:
        """Revoke this session on the server; the tokens are forgotten whatever the server says."""
        try:
            await self.request("POST", "/api/v1/auth/logout")
        finally:
            self._set_tokens(None)

    async def me(self) -> User:
        return await self._model(User, "GET", "/api/v1/users/me")

    async def sessions(self) -> list[Session]:
        return [s async for s in self._walk(Session, "/api/v1/auth/sessions", {})]

    async def revoke_session(self, session_id: str) -> None:
        await self.request("DELETE", f"/api/v1/auth/sessions/{_seg(session_id)}")

    async def change_password(self, current_password: str, new_password: str) -> None:
        await self.request(
            "POST", "/api/v1/auth/password",
            body={"current_password": current_password, "new_password": new_password},
        )

    async def request_password_reset(self, email: str) -> None:
        """A reset link by mail (202 whether or not the account exists)."""
        await self.request("POST", "/api/v1/auth/password-reset/request", body={"email": email}, auth=False)

    async def reset_password(self, reset_token: str, new_password: str) -> None:
        await self.request("POST", "/api/v1/auth/password-reset",
                           body={"reset_token": reset_token, "new_password": new_password}, auth=False)

    async def request_email_verification(self) -> None:
        await self.request("POST", "/api/v1/auth/verify-email/request")

    async def verify_email(self, token: str) -> None:
        await self.request("POST", "/api/v1/auth/verify-email", body={"token": token}, auth=False)

    async def create_api_key(self, name: str, scopes: list[str], expires_at: str | None = None) -> CreatedApiKey:
        body: dict[str, Any] = {"name": name, "scopes": scopes}
        if expires_at:
            body["expires_at"] = expires_at
        return await self._model(CreatedApiKey, "POST", "/api/v1/auth/api-keys", body=body)

    async def api_keys(self) -> list[ApiKey]:
        return [key async for key in self._walk(ApiKey, "/api/v1/auth/api-keys", {})]

    async def revoke_api_key(self, key_id: str) -> None:
        await self.request("DELETE", f"/api/v1/auth/api-keys/{_seg(key_id)}")

    # -- users --------------------------------------------------------------------------------------

    async def users(self, *, q: str | None = None, role: str | None = None, disabled: bool | None = None,
                    limit: int = 50, cursor: str | None = None) -> Page[User]:
        return await self._page(
            User, "/api/v1/users", {"q": q, "role": role, "disabled": disabled, "limit": limit, "cursor": cursor}
        )

    def iter_users(self, *, q: str | None = None, role: str | None = None,
                   disabled: bool | None = None) -> AsyncIterator[User]:
        return self._walk(User, "/api/v1/users", {"q": q, "role": role, "disabled": disabled})

    async def user(self, user_id: str) -> User:
        return await self._model(User, "GET", f"/api/v1/users/{_seg(user_id)}")

    async def create_user(self, email: str, password: str, role: str = "user", display_name: str = "") -> User:
        body = {"email": email, "password": password, "role": role}
        if display_name:
            body["display_name"] = display_name
        return await self._model(User, "POST", "/api/v1/users", body=body)

    async def update_user(self, user_id: str, *, display_name: str | None = None, role: str | None = None,
                          disabled: bool | None = None) -> User:
        body = {k: v for k, v in {"display_name": display_name, "role": role, "disabled": disabled}.items()
                if v is not None}
        return await self._model(User, "PATCH", f"/api/v1/users/{_seg(user_id)}", body=body)

    async def delete_user(self, user_id: str) -> None:
        await self.request("DELETE", f"/api/v1/users/{_seg(user_id)}")

    async def password_reset(self, user_id: str) -> ResetToken:
        return await self._model(ResetToken, "POST", f"/api/v1/users/{_seg(user_id)}/password-reset")

    async def audit(self, *, limit: int = 100, cursor: str | None = None, **filters: Any) -> Page[AuditEvent]:
        return await self._page(AuditEvent, "/api/v1/audit", {"limit": limit, "cursor": cursor, **filters})

    # -- collections and vectors --------------------------------------------------------------------

    async def backups(self) -> BackupList:
        return await self._model(BackupList, "GET", "/api/v1/admin/backups")

    async def run_backup(self) -> BackupRun:
        return await self._model(BackupRun, "POST", "/api/v1/admin/backups")

    async def collections(self) -> list[Collection]:
        return [c async for c in self._walk(Collection, "/api/v1/collections", {})]

    async def collection(self, name: str) -> Collection:
        return await self._model(Collection, "GET", f"/api/v1/collections/{_seg(name)}")

    async def create_collection(self, name: str, dimension: int | None = None, metric: str = "cosine",
                                embed_model: str | None = None, precision: str | None = None) -> Collection:
        """`precision`: of the search graph's copies (None: the server's default, bf16)."""
        body: dict[str, Any] = {"name": name, "metric": metric}
        if dimension is not None:
            body["dimension"] = dimension
        if precision is not None:
            body["precision"] = precision
        if embed_model is not None:
            body["embed"] = {"model": embed_model}
        return await self._model(Collection, "POST", "/api/v1/collections", body=body)

    async def embedders(self) -> EmbedderList:
        return await self._model(EmbedderList, "GET", "/api/v1/embedders")

    async def delete_collection(self, name: str) -> None:
        await self.request("DELETE", f"/api/v1/collections/{_seg(name)}")

    async def upsert(self, name: str, vectors: list[dict[str, Any]], namespace: str | None = None) -> int:
        body: dict[str, Any] = {"vectors": vectors}
        if namespace:
            body["namespace"] = namespace
        answer = await self.request("POST", f"/api/v1/collections/{_seg(name)}/upsert", body=body)
        return int(answer["upserted_count"])

    async def query(self, name: str, *, vector: list[float] | None = None, id: str | None = None,
                    text: str | None = None, mode: str | None = None, top_k: int = 10,
                    filter: dict[str, Any] | None = None, namespace: str | None = None,
                    include_values: bool = False, include_metadata: bool = True,
                    include_text: bool = False) -> QueryResult:
        body: dict[str, Any] = {"top_k": top_k, "include_values": include_values, "include_metadata": include_metadata,
                                "include_text": include_text}
        for key, value in (("vector", vector), ("id", id), ("text", text), ("mode", mode), ("filter", filter),
                           ("namespace", namespace)):
            if value is not None:
                body[key] = value
        return await self._model(QueryResult, "POST", f"/api/v1/collections/{_seg(name)}/query", body=body)

    async def delete_vectors(self, name: str, *, ids: list[str] | None = None, filter: dict[str, Any] | None = None,
                             delete_all: bool = False, namespace: str | None = None, dry_run: bool = False) -> int:
        body: dict[str, Any] = {"dry_run": dry_run}
        if ids is not None:
            body["ids"] = ids
        if filter is not None:
            body["filter"] = filter
        if delete_all:
            body["delete_all"] = True
        if namespace:
            body["namespace"] = namespace
        answer = await self.request("POST", f"/api/v1/collections/{_seg(name)}/delete", body=body)
        return int(answer["deleted_count"])

    # -- realtime -----------------------------------------------------------------------------------

    @asynccontextmanager
    async def live(self, topics: list[str], since: str | None = None) -> AsyncIterator[Live]:
        """One WebSocket, authenticated and subscribed; iterate it for the server's messages."""
        bearer = self.api_key
        if bearer is None:
            if self.tokens is None:
                raise ApiError(Code.UNAUTHORIZED, "not logged in")
            if time.time() >= self.tokens.refresh_at:
                await self.refresh()
            bearer = self.tokens.access_token
        url = "ws" + self.server.removeprefix("http") + "/api/v1/ws"
        try:
            socket = await self._session().ws_connect(url, heartbeat=30, timeout=aiohttp.ClientWSTimeout(ws_close=5))
        except aiohttp.WSServerHandshakeError as exc:
            raise _problem(exc.status, {}, exc.headers or {}) from None
        except (aiohttp.ClientConnectionError, asyncio.TimeoutError) as exc:
            raise Unreachable(f"cannot reach {self.server}: {_reason(exc)}") from None
        try:
            await socket.send_json({"type": "auth", "token": bearer})
            live = Live(socket)
            await live.subscribe(topics, since)
            yield live
        finally:
            await socket.close()

    def follow(self, topics: list[str], since: str | None = None, max_delay_s: float = 15.0) -> Feed:
        """The WebSocket's messages for as long as the caller iterates, reconnecting after a drop (see Feed)."""
        return Feed(self, topics, since, max_delay_s)


class Live:
    """The server's messages on an open WebSocket: `subscribed`, `event`, `error`, `resync`."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self._socket = socket

    @property
    def close_code(self) -> int | None:
        return self._socket.close_code

    async def subscribe(self, topics: list[str], since: str | None = None) -> None:
        """Subscribe to more topics on this socket; with `since`, the server first replays what they missed."""
        request: dict[str, Any] = {"type": "subscribe", "topics": topics}
        if since:
            request["since"] = since
        await self._socket.send_json(request)

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._messages()

    async def _messages(self) -> AsyncIterator[dict[str, Any]]:
        async for message in self._socket:
            if message.type == aiohttp.WSMsgType.TEXT:
                try:
                    data = json.loads(message.data)
                except ValueError:
                    continue
                if isinstance(data, dict):
                    yield data
            elif message.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE):
                return


class Feed:
    """A WebSocket that stays open: iterate it for the server's messages, whatever happens to the connection.

    After a drop (the network, a proxy, a restart, a slow-reader close) it reconnects with exponential backoff
    and resumes with `since` = the id of the last event it passed on, so the server replays what was published
    meanwhile. Two messages of its own join the server's:

    - `{"type": "dropped", "reason": str, "error": exception or None, "retry_in": seconds}` when the connection
      is lost or cannot be made (the first attempt too: a caller that wants to fail fast raises `error`);
    - `{"type": "resync", "reason": ...}` after a reconnect with no event to resume from: something may have
      been missed, so reload, just as after the server's own `resync`.

    A 4401 close (an expired token) renews the token before reconnecting; a session or key that is no longer
    valid raises ApiError from the iteration. `set_topics` changes what is followed without a reconnect.
    """

    def __init__(self, client: Client, topics: list[str], since: str | None, max_delay_s: float) -> None:
        self.client, self.max_delay_s = client, max_delay_s
        self.topics = list(dict.fromkeys(topics))
        self.last_event_id = since
        self._live: Live | None = None
        self._sent: set[str] = set()  # the topics asked for on the current socket
        self._sending: set[asyncio.Task] = set()  # the loop holds tasks weakly

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._messages()

    def set_topics(self, topics: list[str]) -> None:
        """Follow these topics from now on: new ones are subscribed at once (replaying from the last event seen,
        so nothing published since is missed); ones no longer wanted are left out of the next reconnect (the
        protocol has no unsubscribe)."""
        self.topics = list(dict.fromkeys(topics))
        self._sent &= set(self.topics)  # a topic dropped and wanted again later is subscribed again
        if self._live is not None:
            task = asyncio.get_running_loop().create_task(self._subscribe_new(self._live))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _subscribe_new(self, live: Live) -> None:
        fresh = [topic for topic in self.topics if topic not in self._sent]
        if not fresh or live is not self._live:
            return
        self._sent.update(fresh)
        try:
            await live.subscribe(fresh, self.last_event_id)
        except (ConnectionError, RuntimeError, aiohttp.ClientError):
            pass  # the socket is going: the reconnect subscribes to every topic

    async def _messages(self) -> AsyncIterator[dict[str, Any]]:
        delay, dropped = 1.0, False
        while True:
            error: Exception | None = None
            try:
                resumed = self.last_event_id is not None
                self._sent = set(self.topics)
                async with self.client.live(self.topics, since=self.last_event_id) as live:
                    self._live = live
                    await self._subscribe_new(live)  # topics set while the socket was opening
                    async for message in live:
                        if message.get("type") == "event" and message.get("id"):
                            self.last_event_id = str(message["id"])
                        yield message
                        if message.get("type") == "subscribed":
                            delay = 1.0
                            if dropped and not resumed:
                                yield {"type": "resync", "reason": "reconnected with no event to resume from"}
                            dropped = False
                    code = live.close_code
                    # 1006: no close frame came (the network or a proxy cut it, or the daemon died).
                    reason = "the connection was lost" if code in (None, 1006) else \
                        f"the server closed the connection ({code})"
                if code == 4401:
                    await self._renew()
            except ApiError as exc:
                if exc.code in (Code.UNAUTHORIZED, Code.TOKEN_REUSED):
                    raise  # the session (or key) is over: reconnecting cannot help
                error, reason = exc, str(exc)
            except Exception as exc:  # refused, reset mid-handshake, broken mid-frame: reconnecting is all that helps
                error, reason = exc, str(exc) if isinstance(exc, Unreachable) else _reason(exc)
            finally:
                self._live = None
            # Jitter, so that the clients of a restarted daemon do not all come back in the same instant.
            wait = delay * random.uniform(0.5, 1.0)
            dropped = True
            yield {"type": "dropped", "reason": reason, "error": error, "retry_in": wait}
            await asyncio.sleep(wait)
            delay = min(delay * 2, self.max_delay_s)

    async def _renew(self) -> None:
        if self.client.tokens is None:
            raise ApiError(Code.UNAUTHORIZED, "the server ended the stream: the API key was refused")
        await self.client.refresh()  # a revoked session raises ApiError here


def _seg(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    return str(getattr(exc, "os_error", None) or exc) or type(exc).__name__


