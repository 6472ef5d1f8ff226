"""The bridge's HTTP side: one raw ASGI app, streamable HTTP at ``path`` in both eras.

- handshake era (2025-03-26 .. 2025-11-25): ``initialize`` is answered from the child's own
  result (its capabilities, serverInfo, instructions; the protocol version is the client's if
  the child's is not older) and opens a bridge session (``Mcp-Session-Id``; 404 when unknown,
  so the client re-initializes). Every other message is forwarded to the child's one session.
  GET opens the session's stream (list_changed, logs, server requests with no caller in
  flight); DELETE ends the session.
- modern era (2026-07-28, a request whose ``MCP-Protocol-Version`` header or ``_meta`` names
  it, or ``server/discover``): no session. ``server/discover`` is answered from the child's
  initialize result; other requests are forwarded with the per-request ``_meta`` envelope
  removed (the child speaks the handshake era), results get ``resultType`` (and ``ttlMs`` /
  ``cacheScope: private`` on lists). A server request of the child (sampling, elicitation,
  roots) becomes an ``input_required`` result whose ``requestState`` parks the child's request;
  the client's retry carries the answers and resumes it. Closing the response stream cancels
  the request in the child.

A POST is answered with JSON when the child's answer comes first; it turns into an SSE stream
when a notification or server request for the caller comes first (and the client accepts it).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import mcp_types
import orjson
from mcp_types import version as mcp_versions

from mcpyard.bridge import _child

log = logging.getLogger("mcpyard.bridge")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

MAX_BODY = 16 * 1024 * 1024
SESSION_IDLE = 3600.0
MAX_SESSIONS = 10_000
PARK_TTL = 300.0
"""How long a modern request's pending input request waits for the client's retry."""
KEEPALIVE = 15.0
PARSE_ERROR = -32700
INVALID_REQUEST = -32600

_LISTS = frozenset({"tools/list", "resources/list", "resources/templates/list", "prompts/list"})
_META_PREFIX = "io.modelcontextprotocol/"
_JSON = [(b"content-type", b"application/json")]
_SSE = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


@dataclass(eq=False)
class Session:
    """A handshake-era client session (the child's session is shared by all of them)."""

    id: str
    capabilities: Any
    last_seen: float
    stream: asyncio.Queue[dict[str, Any] | None] | None = None

    def can_answer(self, method: str) -> bool:
        return _child.can_answer(self.capabilities, method)


@dataclass(eq=False)
class ModernCaller:
    """One modern-era request (and its retries): answers input requests by its result."""

    capabilities: Any

    def can_answer(self, method: str) -> bool:
        return _child.can_answer(self.capabilities, method)


@dataclass(eq=False)
class Parked:
    call: _child.Call
    outward: list[int] = field(default_factory=list)
    expiry: asyncio.TimerHandle | None = None


class BridgeApp:
    """The ASGI app; ``child`` is created by it, started and closed by the runner."""

    def __init__(
        self,
        command: list[str],
        *,
        path: str = "/mcp",
        startup_wait: float = 10.0,
        timeout: float = 30.0,
    ) -> None:
        self.path = path
        self.child = _child.Child(
            command,
            broadcast=self._broadcast,
            deliver=self._deliver,
            startup_wait=startup_wait,
            timeout=timeout,
        )
        self.sessions: dict[str, Session] = {}
        self._parked: dict[str, Parked] = {}
        self.closing = False
        self._active = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def drained(self) -> None:
        """Wait until no forwarded request is in flight."""
        await self._idle.wait()

    def shutdown(self) -> None:
        """Refuse new requests and end the sessions' streams; requests in flight go on."""
        self.closing = True
        for session in self.sessions.values():
            if session.stream is not None:
                session.stream.put_nowait(None)
        for parked in self._parked.values():
            self._unpark(parked, "the bridge is shutting down")
        self._parked.clear()

    # -- routing ---------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        method = scope["method"]
        if path == "/healthz":
            up = self.child.pid is not None
            await _plain(
                send,
                200 if up else 503,
                "ok" if up else f"the server process is not running: {self.child.state}",
            )
        elif path == "/readyz":
            ready = self.child.ready and not self.closing
            reason = "shutting down" if self.closing else self.child.state
            await _plain(send, 200 if ready else 503, "ready" if ready else reason)
        elif path != self.path and path != self.path.rstrip("/") + "/":
            await _plain(send, 404, "not found")
        elif method == "POST":
            await self._post(scope, receive, send)
        elif method == "GET":
            if self.closing:
                await _plain(send, 503, "the bridge is shutting down")
            else:
                await self._get(scope, receive, send)
        elif method == "DELETE":
            session = self._session(scope)
            if session is None:
                await _plain(send, 404, "unknown session")
            else:
                self._end(session)
                await _plain(send, 200, "")
        else:
            await _respond(send, 405, b"", [(b"allow", b"GET, POST, DELETE")])

    def _session(self, scope: Scope) -> Session | None:
        sid = _header(scope, b"mcp-session-id")
        session = self.sessions.get(sid) if sid else None
        if session is not None:
            session.last_seen = time.monotonic()
        return session

    def _end(self, session: Session) -> None:
        self.sessions.pop(session.id, None)
        if session.stream is not None:
            session.stream.put_nowait(None)

    # -- POST ------------------------------------------------------------------------------

    async def _post(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await _read_body(receive)
        if body is None:
            await _rpc_error(send, 413, None, INVALID_REQUEST, "request body too large")
            return
        try:
            message = orjson.loads(body)
        except orjson.JSONDecodeError:
            await _rpc_error(send, 400, None, PARSE_ERROR, "the body is not JSON")
            return
        if type(message) is not dict or message.get("jsonrpc") != "2.0":
            await _rpc_error(
                send,
                400,
                None,
                INVALID_REQUEST,
                "expected one JSON-RPC 2.0 message (the bridge takes no batches)",
            )
            return
        if self.closing and "method" in message and "id" in message:
            # Answers and notifications still pass: requests in flight may need them.
            await _rpc_error(
                send, 503, message["id"], _child.UNAVAILABLE, "the bridge is shutting down"
            )
            return
        sse = "text/event-stream" in (_header(scope, b"accept") or "")
        if _modern(scope, message):
            await self._modern(message, receive, send, sse)
        else:
            await self._handshake(scope, message, receive, send, sse)

    async def _handshake(
        self, scope: Scope, message: dict[str, Any], receive: Receive, send: Send, sse: bool
    ) -> None:
        method = message.get("method")
        rid = message.get("id")
        if method == "initialize":
            await self._initialize(message, send)
            return
        if not _header(scope, b"mcp-session-id"):
            await _rpc_error(send, 400, rid, INVALID_REQUEST, "Mcp-Session-Id header required")
            return
        session = self._session(scope)
        if session is None:
            await _rpc_error(send, 404, rid, INVALID_REQUEST, "unknown or expired session")
            return
        if method is None:
            self.child.answer(message)
            await _respond(send, 202, b"")
        elif "id" not in message:
            params = message.get("params")
            if method == "notifications/cancelled" and isinstance(params, dict):
                self.child.cancel_by_caller(session, params.get("requestId"), params.get("reason"))
            elif method != "notifications/initialized":
                self.child.notify(message)
            await _respond(send, 202, b"")
        else:
            await self._forward(message, session, receive, send, sse, modern=False)

    async def _initialize(self, message: dict[str, Any], send: Send) -> None:
        rid = message.get("id")
        try:
            await self.child.wait_ready()
        except _child.UnavailableError as exc:
            await _rpc_error(send, 503, rid, _child.UNAVAILABLE, str(exc))
            return
        params = message.get("params")
        params = params if isinstance(params, dict) else {}
        result = dict(self.child.init_result or {})
        result["protocolVersion"] = _negotiate(
            params.get("protocolVersion"), self.child.protocol_version
        )
        now = time.monotonic()
        if len(self.sessions) >= MAX_SESSIONS:
            for stale in [s for s in self.sessions.values() if now - s.last_seen > SESSION_IDLE]:
                self._end(stale)
        if len(self.sessions) >= MAX_SESSIONS:
            await _rpc_error(send, 503, rid, _child.UNAVAILABLE, "too many sessions")
            return
        session = Session(secrets.token_urlsafe(24), params.get("capabilities"), now)
        self.sessions[session.id] = session
        body = orjson.dumps({"jsonrpc": "2.0", "id": rid, "result": result})
        await _respond(send, 200, body, [*_JSON, (b"mcp-session-id", session.id.encode())])

    # -- modern era ------------------------------------------------------------------------

    async def _modern(
        self, message: dict[str, Any], receive: Receive, send: Send, sse: bool
    ) -> None:
        method = message.get("method")
        rid = message.get("id")
        if method is None or "id" not in message:
            await _respond(send, 202, b"")  # no client notifications on this wire
            return
        params = message.get("params")
        params = params if isinstance(params, dict) else {}
        raw_meta = params.get("_meta")
        meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
        if method == "server/discover":
            await self._discover(rid, send)
            return
        state = params.get("requestState")
        parked = self._parked.pop(state, None) if isinstance(state, str) else None
        if parked is not None:
            await self._resume(parked, message, params, receive, send, sse)
            return
        caller = ModernCaller(meta.get(mcp_types.CLIENT_CAPABILITIES_META_KEY))
        # The child speaks the handshake era: the per-request envelope is the bridge's to read.
        forwarded = message
        if any(k.startswith(_META_PREFIX) for k in meta):
            rest = {k: v for k, v in meta.items() if not k.startswith(_META_PREFIX)}
            clean = {k: v for k, v in params.items() if k != "_meta"}
            if rest:
                clean["_meta"] = rest
            forwarded = {**message, "params": clean}
        await self._forward(forwarded, caller, receive, send, sse, modern=True)

    async def _discover(self, rid: Any, send: Send) -> None:
        try:
            await self.child.wait_ready()
        except _child.UnavailableError as exc:
            await _rpc_error(send, 503, rid, _child.UNAVAILABLE, str(exc))
            return
        init = self.child.init_result or {}
        child_version = self.child.protocol_version
        versions = [v for v in _child.HANDSHAKE_VERSIONS if v <= child_version]
        result: dict[str, Any] = {
            "supportedVersions": [*versions, *mcp_versions.MODERN_PROTOCOL_VERSIONS],
            "capabilities": init.get("capabilities") or {},
            "resultType": "complete",
            "ttlMs": 0,
            "cacheScope": "private",
        }
        if init.get("instructions") is not None:
            result["instructions"] = init["instructions"]
        if isinstance(init.get("serverInfo"), dict):
            result["_meta"] = {mcp_types.SERVER_INFO_META_KEY: init["serverInfo"]}
        body = orjson.dumps({"jsonrpc": "2.0", "id": rid, "result": result})
        await _respond(send, 200, body, _JSON)

    async def _resume(
        self,
        parked: Parked,
        message: dict[str, Any],
        params: dict[str, Any],
        receive: Receive,
        send: Send,
        sse: bool,
    ) -> None:
        if parked.expiry is not None:
            parked.expiry.cancel()
        call = parked.call
        call.request_id = message.get("id")
        responses = params.get("inputResponses")
        responses = responses if isinstance(responses, dict) else {}
        for outward in parked.outward:
            answer = responses.get(str(outward))
            if answer is None:
                self.child.refuse(outward, "the client did not answer this input request")
            else:
                self.child.answer({"jsonrpc": "2.0", "id": outward, "result": answer})
        await self._stream(call, receive, send, sse, modern=True, method=call.method)

    def _park(self, call: _child.Call, outward: int) -> str:
        state = secrets.token_urlsafe(24)
        parked = Parked(call, [outward])
        parked.expiry = asyncio.get_running_loop().call_later(PARK_TTL, self._expire, state)
        self._parked[state] = parked
        return state

    def _expire(self, state: str) -> None:
        parked = self._parked.pop(state, None)
        if parked is not None:
            self._unpark(parked, "the client never retried with the requested input")

    def _unpark(self, parked: Parked, reason: str) -> None:
        if parked.expiry is not None:
            parked.expiry.cancel()
        for outward in parked.outward:
            self.child.refuse(outward, reason)
        self.child.finish(parked.call, cancel=reason)

    # -- forwarding ------------------------------------------------------------------------

    async def _forward(
        self,
        message: dict[str, Any],
        caller: _child.Caller,
        receive: Receive,
        send: Send,
        sse: bool,
        *,
        modern: bool,
    ) -> None:
        try:
            call = await self.child.call(message, caller)
        except _child.UnavailableError as exc:
            await _rpc_error(send, 503, message.get("id"), _child.UNAVAILABLE, str(exc))
            return
        call.method = message.get("method")
        await self._stream(call, receive, send, sse, modern=modern, method=call.method)

    async def _stream(
        self,
        call: _child.Call,
        receive: Receive,
        send: Send,
        sse: bool,
        *,
        modern: bool,
        method: Any,
    ) -> None:
        """Answer one POST with the call's events: JSON if the response comes first, else SSE."""
        disconnected = asyncio.get_running_loop().create_task(_disconnect(receive))
        streaming = False
        parked = False
        self._active += 1
        self._idle.clear()
        try:
            while True:
                event = await _next(call, disconnected)
                if event is None:  # the client went away
                    # Closing the stream is the modern era's cancellation; a handshake-era
                    # client cancels with a notification, so its call just loses its reader.
                    self.child.finish(
                        call, cancel="the client closed the stream" if modern else None
                    )
                    return
                final = "method" not in event
                if not final and "id" in event and modern:
                    # A server request: the modern wire carries it in an input_required result.
                    state = self._park(call, event["id"])
                    parked = True
                    event = {
                        "jsonrpc": "2.0",
                        "id": call.request_id,
                        "result": {
                            "resultType": "input_required",
                            "inputRequests": {
                                str(event["id"]): {
                                    k: v for k, v in event.items() if k in ("method", "params")
                                }
                            },
                            "requestState": state,
                        },
                    }
                    final = True
                elif final and modern:
                    event = _modern_result(event, method)
                if final and not streaming:
                    await _respond(send, 200, orjson.dumps(event), _JSON)
                    return
                if not final and not sse:
                    if "id" in event:
                        self.child.refuse(event["id"], "the client takes no event stream")
                    continue  # a JSON-only client gets no notifications
                if not streaming:
                    await send({"type": "http.response.start", "status": 200, "headers": _SSE})
                    streaming = True
                await send(
                    {"type": "http.response.body", "body": _event(event), "more_body": not final}
                )
                if final:
                    return
        finally:
            if not parked:
                self.child.finish(call)
            disconnected.cancel()
            self._active -= 1
            if not self._active:
                self._idle.set()

    # -- GET stream ------------------------------------------------------------------------

    async def _get(self, scope: Scope, receive: Receive, send: Send) -> None:
        if "text/event-stream" not in (_header(scope, b"accept") or ""):
            await _plain(send, 406, "Accept: text/event-stream required")
            return
        if not _header(scope, b"mcp-session-id"):
            await _plain(send, 405 if _modern(scope, {}) else 400, "Mcp-Session-Id header required")
            return
        session = self._session(scope)
        if session is None:
            await _plain(send, 404, "unknown or expired session")
            return
        if session.stream is not None:
            await _plain(send, 409, "this session already has a stream")
            return
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        session.stream = queue
        disconnected = asyncio.get_running_loop().create_task(_disconnect(receive))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": _SSE})
            await send({"type": "http.response.body", "body": b": stream\n\n", "more_body": True})
            while True:
                getter = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait(
                    {getter, disconnected}, timeout=KEEPALIVE, return_when=asyncio.FIRST_COMPLETED
                )
                if disconnected in done:
                    getter.cancel()
                    return
                if getter not in done:
                    getter.cancel()
                    await send(
                        {"type": "http.response.body", "body": b": ping\n\n", "more_body": True}
                    )
                    continue
                event = getter.result()
                if event is None:
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                    return
                await send({"type": "http.response.body", "body": _event(event), "more_body": True})
        finally:
            if session.stream is queue:
                session.stream = None
            disconnected.cancel()
            # Server requests that never reached the client: the child is not left waiting.
            while not queue.empty():
                left = queue.get_nowait()
                if left is not None and "id" in left and "method" in left:
                    self.child.refuse(left["id"], "the client's stream closed")

    def _broadcast(self, message: dict[str, Any]) -> None:
        for session in self.sessions.values():
            if session.stream is not None:
                session.stream.put_nowait(message)

    def _deliver(self, message: dict[str, Any]) -> bool:
        for session in reversed(list(self.sessions.values())):
            if session.stream is not None and session.can_answer(message["method"]):
                session.stream.put_nowait(message)
                return True
        return False


# -- helpers -------------------------------------------------------------------------------


def _modern(scope: Scope, message: dict[str, Any]) -> bool:
    if _header(scope, b"mcp-protocol-version") in mcp_versions.MODERN_PROTOCOL_VERSIONS:
        return True
    if message.get("method") == "server/discover" and not _header(scope, b"mcp-session-id"):
        return True
    params = message.get("params")
    meta = params.get("_meta") if isinstance(params, dict) else None
    return isinstance(meta, dict) and (
        meta.get(mcp_types.PROTOCOL_VERSION_META_KEY) in mcp_versions.MODERN_PROTOCOL_VERSIONS
    )


def _negotiate(requested: Any, child: str) -> str:
    known = mcp_versions.HANDSHAKE_PROTOCOL_VERSIONS
    if requested in known and child in known and requested <= child:
        return str(requested)
    return child


def _modern_result(message: dict[str, Any], method: Any) -> dict[str, Any]:
    result = message.get("result")
    if not isinstance(result, dict):
        return message
    result = {"resultType": "complete", **result}
    if method in _LISTS:
        result.setdefault("ttlMs", 0)
        result.setdefault("cacheScope", "private")
    return {**message, "result": result}


async def _next(call: _child.Call, disconnected: asyncio.Task[None]) -> dict[str, Any] | None:
    if not call.events.empty():
        return call.events.get_nowait()
    getter = asyncio.ensure_future(call.events.get())
    await asyncio.wait({getter, disconnected}, return_when=asyncio.FIRST_COMPLETED)
    if getter.done():
        return getter.result()
    getter.cancel()
    return None


async def _disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _event(message: dict[str, Any]) -> bytes:
    return b"event: message\ndata: " + orjson.dumps(message) + b"\n\n"


async def _respond(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers or []})
    await send({"type": "http.response.body", "body": body})


async def _plain(send: Send, status: int, text: str) -> None:
    await _respond(send, status, text.encode(), [(b"content-type", b"text/plain; charset=utf-8")])


async def _rpc_error(send: Send, status: int, rid: Any, code: int, message: str) -> None:
    await _respond(send, status, orjson.dumps(_child.error(rid, code, message)), _JSON)
