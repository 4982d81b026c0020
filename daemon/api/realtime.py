"""GET /api/v1/ws: the WebSocket gateway (docs/api.md, Realtime).

One dispatcher task per process hears the event bus and hands each event to the connections that
may see it. An event is serialised and framed once per topic it goes out under, and the same frame
bytes are written to every socket that gets it; a burst of events that arrived while the dispatcher
was busy goes to each socket in one write. A socket write costs about the same for one event as for
several, so once rounds get long (many sockets), the dispatcher pauses after a round as long as it
took (5 ms at most): more events share a round. A round runs through without giving up the loop
unless it passes 20 ms (thousands of sockets); then it lets the rest of the loop run every 100 sockets.
Handing over never waits on a client: a socket whose buffer is full gets a bounded queue of frames
(and a task to drain it, only while it has one), and a client whose queue overflows is dropped
(1008), so a slow reader costs only itself. Each connection's handler task reads the client's
messages (auth, subscribe) in order.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time

import orjson
from aiohttp import WSMsgType, web
from aiohttp.abc import AbstractStreamWriter
from pydantic import ValidationError

from daemon.api import webview
from daemon.api.routing import Routes
from daemon.context import AUTHENTICATOR, FEED, GATEWAY, METRICS, SETTINGS, VECTORS
from daemon.pipeline import security_headers
from daemon.pipeline.authentication import bearer_token
from daemon.services import realtime as rules
from daemon.services.principal import Principal
from daemon.services.realtime import Event, MessageAllowance, Unavailable
from shared.errors import ApiError, Code, FieldError
from shared.models.events import (
    AUTH_TIMEOUT_S,
    CLIENT_MESSAGE,
    CLOSE_GOING_AWAY,
    CLOSE_POLICY,
    CLOSE_TRY_AGAIN,
    CLOSE_UNAUTHORIZED,
    MAX_FRAME_BYTES,
    Auth,
    Subscribe,
)

log = logging.getLogger("bastion.realtime")
routes = Routes(prefix="/api/v1")
CLOSE_TIMEOUT_S = 2.0
_RETRY_S = 1.0
_PACE_FROM_S = 0.002
_PACE_MAX_S = 0.005
# A round runs through unless it has taken this long: see Gateway.dispatch.
_TURN_S = 0.020
_SLICE = 100
_closing_tasks: set[asyncio.Task] = set()


def text_frame(payload: bytes) -> bytes:
    """A whole WebSocket text frame as a server sends it (unmasked, uncompressed, final)."""
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 65536:
        return struct.pack("!BBH", 0x81, 126, size) + payload
    return struct.pack("!BBQ", 0x81, 127, size) + payload


def message_frame(message: dict) -> bytes:
    return text_frame(orjson.dumps(message))


def event_frame(event: Event, topic: str) -> bytes:
    return message_frame({"type": "event", "id": event.id, "topic": topic, "event": event.event, "at": event.at,
                          "data": event.data})


class Connection:
    def __init__(self, ws: web.WebSocketResponse, stream: AbstractStreamWriter, transport: asyncio.Transport | None,
                 buffer: int, messages_per_minute: int) -> None:
        self.ws = ws
        self.stream = stream
        self.transport = transport
        self.principal: Principal | None = None
        self.topics: set[str] = set()
        # Frames the socket could not take yet (its buffer is over the high-water mark), at most `buffer`.
        self.pending: list[bytes] = []
        self.buffer = buffer
        self.flusher: asyncio.Task | None = None
        # Frames are written to the transport directly, past aiohttp's writer, so this connection
        # keeps to the transport's own flow control: above the high-water mark, frames wait.
        self.high_water = transport.get_write_buffer_limits()[1] if transport is not None else 0
        # While a `since` replay is being read, live events wait here, so that nothing is sent twice
        # or out of order.
        self.held: list[tuple[Event, str]] | None = None
        # The newest event sent. Event ids order events, and with Redis the live reader can lag behind
        # a replay that already sent an event: anything at or before this id is not sent again.
        self.last_id = ""
        self.closing = False
        self.messages = MessageAllowance(messages_per_minute)

    def send(self, message: dict) -> None:
        self.write([message_frame(message)])

    def write(self, frames: list[bytes]) -> None:
        """Whole frames, in order: now if the socket takes them, else queued (or the client dropped)."""
        transport = self.transport
        # Once aiohttp has begun the close (`ws.closed`), no data frame may follow the close frame.
        if self.closing or self.ws.closed or transport is None or transport.is_closing():
            return
        if not self.pending and transport.get_write_buffer_size() <= self.high_water:
            transport.write(frames[0] if len(frames) == 1 else b"".join(frames))
            return
        if len(self.pending) + len(frames) > self.buffer:
            self.end(CLOSE_POLICY, "too slow: the send buffer is full")
            return
        self.pending += frames
        if self.flusher is None:
            self.flusher = asyncio.create_task(self._flush())

    async def _flush(self) -> None:
        try:
            while self.pending and not self.closing:
                await self.stream.drain()  # until the transport resumes writing (below its low-water mark)
                if self.closing or self.ws.closed or self.transport.is_closing():
                    return
                frames, self.pending = self.pending, []
                self.transport.write(b"".join(frames))
        except (ConnectionError, RuntimeError):
            return  # the socket is gone; the handler's receive loop ends and cleans up
        finally:
            self.flusher = None

    def end(self, code: int, reason: str) -> asyncio.Task | None:
        """Close from outside the handler (revocation, expiry, slow reader, shutdown), without waiting."""
        if self.closing:
            return None
        self.closing = True
        self.pending = []
        # The flusher is left alone: cancelling it mid-drain would cancel the socket's shared drain
        # wait under the close frame too. It sees `closing` when it wakes and ends.
        task = asyncio.create_task(self._close(code, reason))
        _closing_tasks.add(task)  # the loop holds tasks weakly
        task.add_done_callback(_closing_tasks.discard)
        return task

    async def _close(self, code: int, reason: str) -> None:
        try:
            await asyncio.wait_for(self.ws.close(code=code, message=reason.encode()), CLOSE_TIMEOUT_S)
        except asyncio.CancelledError:
            if asyncio.current_task().cancelling():
                raise
            self._abort()  # the socket's drain wait was cancelled under us: it is beyond saving
        except (TimeoutError, ConnectionError, RuntimeError):
            self._abort()

    def _abort(self) -> None:
        # A client that stopped reading cannot take even the close frame, and a plain close would
        # wait for its full buffers forever: cut the connection.
        if self.transport is not None:
            self.transport.abort()


def _drop_topics(conn: Connection, topics: set[str]) -> list[bytes]:
    """Unsubscribe topics the subscriber may no longer read; a frame telling it so for each."""
    conn.topics -= topics
    return [message_frame({"type": "error", "code": "forbidden", "topic": topic,
                           "detail": "your rights changed: you may no longer read this topic"})
            for topic in sorted(topics)]


class Gateway:
    def __init__(self) -> None:
        self.connections: set[Connection] = set()

    async def dispatch(self, events: list[Event]) -> None:
        """Events in publish order, to every connection that may see them: one write per connection."""
        # Frames are made lazily, once per (event, topic), and shared by every connection.
        frames: list[dict[str, bytes]] = [{} for _ in events]
        turn = time.monotonic() + _TURN_S
        for n, conn in enumerate(list(self.connections)):
            if n % _SLICE == _SLICE - 1 and time.monotonic() > turn:
                # Only a very long round (thousands of sockets) gives the rest of the loop a turn, so
                # requests are not held for all of it. A shorter one runs through: an event published
                # during a round waits for the whole of it and the pause after it, so letting requests
                # publish mid-round put about a round more on the latency (bench/RESULTS.md, "Fan-out
                # p99"); they run in the pause instead, and what they publish goes out in the next round
                # all the same.
                await asyncio.sleep(0)
                turn = time.monotonic() + _TURN_S
            principal = conn.principal
            if principal is None or conn.closing:
                continue
            out: list[bytes] = []
            ended = False
            for event, made in zip(events, frames):
                if rules.ends_access(principal, event):
                    ended = True
                    break
                if (narrower := rules.narrowed(principal, event)) is not principal:
                    principal = conn.principal = narrower
                    out += _drop_topics(conn, conn.topics - rules.topics_still_allowed(principal, conn.topics))
                topic = rules.delivered_as(principal, conn.topics, event)
                if topic is not None:
                    if conn.held is not None:
                        conn.held.append((event, topic))
                    elif event.id > conn.last_id:
                        conn.last_id = event.id
                        frame = made.get(topic)
                        if frame is None:
                            frame = made[topic] = event_frame(event, topic)
                        out.append(frame)
                if rules.ends_topic(event):
                    # A collection of the same name made later may be someone else's: subscribe again.
                    conn.topics.discard(event.topic)
            if out:
                conn.write(out)
            if ended:
                conn.end(CLOSE_UNAUTHORIZED, "the session has ended")

    async def close_all(self, code: int, reason: str) -> None:
        closing = [task for conn in list(self.connections) if (task := conn.end(code, reason)) is not None]
        if closing:
            await asyncio.gather(*closing, return_exceptions=True)


async def _listen(app: web.Application, gateway: Gateway) -> None:
    feed = app[FEED]
    while True:
        listener = feed.listen()
        try:
            while True:
                events = await listener.batch()
                started = time.monotonic()
                try:
                    await gateway.dispatch(events)
                except Exception:
                    # One bad event must not end live updates for everyone: the batch again, one by one.
                    for event in events:
                        try:
                            await gateway.dispatch([event])
                        except Exception:
                            log.exception("could not dispatch an event", extra={"event_id": event.id})
                busy = time.monotonic() - started
                if busy > _PACE_FROM_S:
                    # A round costs about one socket write per connection whatever the number of events
                    # in it. Once rounds take long, the loop gets as long again for everything else (the
                    # requests that publish), and what is published meanwhile goes out in one round.
                    await asyncio.sleep(min(busy, _PACE_MAX_S))
        except StopAsyncIteration:
            pass
        except Unavailable:
            # Events may have been missed: clients reconnect and resume with `since`.
            log.warning("the event bus is unavailable; closing WebSockets with 1013")
            await gateway.close_all(CLOSE_TRY_AGAIN, "events unavailable; reconnect later")
        finally:
            listener.close()
        await asyncio.sleep(_RETRY_S)


async def run_gateway(app: web.Application):
    """cleanup_ctx: the gateway and its dispatcher task."""
    gateway = Gateway()
    app[GATEWAY] = gateway
    task = asyncio.create_task(_listen(app, gateway), name="ws-dispatcher")
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await gateway.close_all(CLOSE_GOING_AWAY, "server shutting down")


async def on_shutdown(app: web.Application) -> None:
    await app[GATEWAY].close_all(CLOSE_GOING_AWAY, "server shutting down")


def _origin_allowed(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    return origin is None or origin in request.app[SETTINGS].cors_origins or webview.from_own_pages(request)


async def _authenticate(request: web.Request, conn: Connection, header_token: str | None) -> bool:
    """Header token, or the first message within 5 s; closes the socket itself on failure."""
    token = header_token
    if token is None:
        try:
            msg = await conn.ws.receive(timeout=AUTH_TIMEOUT_S)
        except TimeoutError:
            await conn.ws.close(code=CLOSE_UNAUTHORIZED, message=b"authenticate within 5 s")
            return False
        if msg.type != WSMsgType.TEXT:
            if msg.type not in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                await conn.ws.close(code=CLOSE_UNAUTHORIZED, message=b"expected an auth message")
            return False
        try:
            auth = CLIENT_MESSAGE.validate_json(msg.data)
        except ValidationError:
            auth = None
        if not isinstance(auth, Auth):
            await conn.ws.close(code=CLOSE_UNAUTHORIZED, message=b'expected {"type": "auth", "token": ...}')
            return False
        token = auth.token
    try:
        conn.principal = await request.app[AUTHENTICATOR].authenticate(token)
    except ApiError:
        await conn.ws.close(code=CLOSE_UNAUTHORIZED, message=b"the token is not valid")
        return False
    except Unavailable as exc:
        await conn.ws.close(code=CLOSE_TRY_AGAIN, message=f"{exc.service} unavailable".encode())
        return False
    return True


async def _subscribe(request: web.Request, conn: Connection, message: Subscribe) -> None:
    principal = conn.principal
    assert principal is not None
    allowed: list[str] = []
    for topic in dict.fromkeys(message.topics):
        if await rules.may_read(principal, topic, request.app[VECTORS]):
            allowed.append(topic)
        else:
            conn.send({"type": "error", "code": "forbidden", "detail": "you may not read this topic", "topic": topic})
    fresh = set(allowed) - conn.topics
    # Subscribe and start holding live events in one step (no await between), then read the history:
    # every event is in the history, or held, or both (sent once).
    conn.topics |= fresh
    if message.since is None or not fresh:
        conn.send({"type": "subscribed", "topics": allowed})
        return
    conn.held = []
    try:
        replay = await request.app[FEED].replay(principal, fresh, message.since)
    finally:
        held, conn.held = conn.held, None
    frames = [message_frame({"type": "subscribed", "topics": allowed})]
    if replay is None:
        frames.append(message_frame({"type": "resync"}))
        replay = []
    for event, topic in replay + held:
        if event.id > conn.last_id:
            conn.last_id = event.id
            frames.append(event_frame(event, topic))
    conn.write(frames)


async def _serve(request: web.Request, conn: Connection) -> None:
    async for msg in conn.ws:
        if msg.type != WSMsgType.TEXT:
            continue  # binary frames mean nothing here; control frames are aiohttp's
        if not conn.messages.allow():
            await _shut(conn, CLOSE_POLICY, "too many messages")
            return
        try:
            message = CLIENT_MESSAGE.validate_json(msg.data)
        except ValidationError as exc:
            code = Code.INVALID_JSON if any(e["type"] == "json_invalid" for e in exc.errors()) else Code.VALIDATION_FAILED
            conn.send({"type": "error", "code": str(code), "detail": _first_problem(exc)})
            continue
        if isinstance(message, Auth):
            conn.send({"type": "error", "code": str(Code.VALIDATION_FAILED), "detail": "already authenticated"})
            continue
        try:
            await _subscribe(request, conn, message)
        except Unavailable as exc:
            await _shut(conn, CLOSE_TRY_AGAIN, f"{exc.service} unavailable")
            return


async def _shut(conn: Connection, code: int, reason: str) -> None:
    closing = conn.end(code, reason)
    if closing is not None:
        await closing


def _first_problem(exc: ValidationError) -> str:
    error = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else error["msg"]


@routes.get("/ws", summary="Live events over a WebSocket (see docs/api.md, Realtime)", tag="realtime", response=None,
    status=101, access="public", errors=(403, 422))
async def websocket(request: web.Request) -> web.StreamResponse:
    if not _origin_allowed(request):
        raise ApiError(Code.FORBIDDEN, "this Origin may not open a WebSocket")
    header_token = bearer_token(request)  # malformed header: 401 before the upgrade
    # A web-view page holds no token: its session cookie stands in for one (api/webview.py).
    cookie_principal = None if header_token else await webview.session_principal(request)
    settings = request.app[SETTINGS]
    # No permessage-deflate: events are small, and compressing would be work per client per event,
    # where now one frame is shared by every client.
    ws = web.WebSocketResponse(heartbeat=settings.ws_heartbeat_s, max_msg_size=MAX_FRAME_BYTES, compress=False)
    if not ws.can_prepare(request).ok:
        raise ApiError(Code.VALIDATION_FAILED, "expected a WebSocket upgrade request",
                       errors=[FieldError("headers.Upgrade", "expected 'websocket'")])
    security_headers.apply(ws.headers)
    stream = await ws.prepare(request)
    gateway, metrics = request.app[GATEWAY], request.app[METRICS]
    conn = Connection(ws, stream, request.transport, settings.ws_send_buffer, settings.ws_messages_per_minute)
    conn.principal = cookie_principal
    gateway.connections.add(conn)
    metrics.websockets.inc()
    expiry: asyncio.TimerHandle | None = None
    try:
        if conn.principal is not None or await _authenticate(request, conn, header_token):
            principal = conn.principal
            if principal is not None and principal.expires_at is not None:
                delay = max(0.0, principal.expires_at - time.time())
                expiry = asyncio.get_running_loop().call_later(delay, conn.end, CLOSE_UNAUTHORIZED,
                                                               "the credential has expired")
            await _serve(request, conn)
    finally:
        if expiry is not None:
            expiry.cancel()
        gateway.connections.discard(conn)
        metrics.websockets.dec()
        if not ws.closed:
            await ws.close()
        if conn.flusher is not None:  # only now: its drain wait is shared with the close above
            conn.flusher.cancel()
    return ws


def add_routes(app: web.Application) -> None:
    routes.add_to(app.router)
