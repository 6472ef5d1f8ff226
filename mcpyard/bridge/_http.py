"""The bridge's HTTP side: one raw ASGI app, streamable HTTP at ``path`` in both eras.

- handshake era (2025-03-26 .. 2025-11-25): ``initialize`` is answered from the child's own
  result (its capabilities, serverInfo, instructions; the protocol version is the client's if
  the child's is not older) and opens a bridge session (``Mcp-Session-Id``; 404 when unknown,
  so the client re-initializes). Every other message is forwarded to the child's one session.
  GET opens the session's stream (list_changed, logs, server requests with no caller in
  flight); DELETE ends the session.
- modern era (2026-07-28; :func:`mcpyard.mcp.protocol.is_modern` tells, as in the gateway):
  no session. A request is checked as the gateway checks it (:func:`mcpyard.mcp.protocol.
  check_modern`: envelope, headers, version). ``server/discover`` is answered from the child's
  initialize result; other requests are forwarded with the per-request ``_meta`` envelope
  removed (the child speaks the handshake era), results completed by
  :func:`mcpyard.mcp.protocol.complete` (``resultType``; ``ttlMs`` and ``cacheScope: private``
  on lists and reads). A server request of the child (sampling, elicitation,
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
from dataclasses import dataclass, field
from typing import cast

import orjson
from mcp.shared import inbound

from mcpyard.bridge import _child
from mcpyard.mcp import asgi, jsonrpc, protocol
from mcpyard.mcp import sse as events
from mcpyard.mcp.asgi import Receive, Scope, Send

log = logging.getLogger("mcpyard.bridge")

MAX_BODY = 16 * 1024 * 1024
SESSION_IDLE = 3600.0
MAX_SESSIONS = 10_000
PARK_TTL = 300.0
"""How long a modern request's pending input request waits for the client's retry."""
KEEPALIVE = 15.0


@dataclass(eq=False)
class Session:
    """A handshake-era client session (the child's session is shared by all of them)."""

    id: str
    capabilities: jsonrpc.JSONValue
    last_seen: float
    stream: asyncio.Queue[jsonrpc.JSONObject | None] | None = None

    def can_answer(self, method: str) -> bool:
        return protocol.can_answer(self.capabilities, method)


@dataclass(eq=False)
class ModernCaller:
    """One modern-era request (and its retries): answers input requests by its result."""

    capabilities: jsonrpc.JSONValue

    def can_answer(self, method: str) -> bool:
        return protocol.can_answer(self.capabilities, method)


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
            await asgi.plain(
                send,
                200 if up else 503,
                "ok" if up else f"the server process is not running: {self.child.state}",
            )
        elif path == "/readyz":
            ready = self.child.ready and not self.closing
            reason = "shutting down" if self.closing else self.child.state
            await asgi.plain(send, 200 if ready else 503, "ready" if ready else reason)
        elif path != self.path and path != self.path.rstrip("/") + "/":
            await asgi.plain(send, 404, "not found")
        elif method == "POST":
            await self._post(scope, receive, send)
        elif method == "GET":
            if self.closing:
                await asgi.plain(send, 503, "the bridge is shutting down")
            else:
                await self._get(scope, receive, send)
        elif method == "DELETE":
            session = self._session(scope)
            if session is None:
                await asgi.plain(send, 404, "unknown session")
            else:
                self._end(session)
                await asgi.plain(send, 200, "")
        else:
            await asgi.respond(send, 405, b"", [(b"allow", b"GET, POST, DELETE")])

    def _session(self, scope: Scope) -> Session | None:
        sid = asgi.header(scope, b"mcp-session-id")
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
        try:
            body = await asgi.read_body(receive, MAX_BODY)
        except asgi.BodyTooLarge:
            await _rpc_error(send, 413, None, jsonrpc.INVALID_REQUEST, "request body too large")
            return
        except ConnectionResetError:
            return
        try:
            message = orjson.loads(body)
        except orjson.JSONDecodeError:
            await _rpc_error(send, 400, None, jsonrpc.PARSE_ERROR, "the body is not JSON")
            return
        if type(message) is not dict or message.get("jsonrpc") != "2.0":
            await _rpc_error(
                send,
                400,
                None,
                jsonrpc.INVALID_REQUEST,
                "expected one JSON-RPC 2.0 message (the bridge takes no batches)",
            )
            return
        if self.closing and "method" in message and "id" in message:
            # Answers and notifications still pass: requests in flight may need them.
            await _rpc_error(
                send, 503, message["id"], _child.UNAVAILABLE, "the bridge is shutting down"
            )
            return
        sse = "text/event-stream" in (asgi.header(scope, b"accept") or "")
        version = asgi.header(scope, b"mcp-protocol-version")
        has_session = asgi.header(scope, b"mcp-session-id") is not None
        if protocol.is_modern(None if version is None else version.strip(" \t"), message,
                              has_session):
            await self._modern(scope, message, receive, send, sse)
        else:
            await self._handshake(scope, message, receive, send, sse)

    async def _handshake(
        self, scope: Scope, message: jsonrpc.JSONObject, receive: Receive, send: Send, sse: bool
    ) -> None:
        method = message.get("method")
        rid = message.get("id")
        if method == protocol.INITIALIZE:
            await self._initialize(message, send)
            return
        if not asgi.header(scope, b"mcp-session-id"):
            await _rpc_error(
                send, 400, rid, jsonrpc.INVALID_REQUEST, "Mcp-Session-Id header required"
            )
            return
        session = self._session(scope)
        if session is None:
            await _rpc_error(send, 404, rid, jsonrpc.INVALID_REQUEST, "unknown or expired session")
            return
        if method is None:
            self.child.answer(message)
            await asgi.respond(send, 202, b"")
        elif "id" not in message:
            params = message.get("params")
            if method == protocol.CANCELLED and isinstance(params, dict):
                self.child.cancel_by_caller(session, params.get("requestId"), params.get("reason"))
            elif method != protocol.INITIALIZED:
                self.child.notify(message)
            await asgi.respond(send, 202, b"")
        else:
            await self._forward(message, session, receive, send, sse, modern=False)

    async def _initialize(self, message: jsonrpc.JSONObject, send: Send) -> None:
        rid = message.get("id")
        try:
            await self.child.wait_ready()
        except _child.UnavailableError as exc:
            await _rpc_error(send, 503, rid, _child.UNAVAILABLE, str(exc))
            return
        params = message.get("params")
        params = params if isinstance(params, dict) else {}
        result = dict(self.child.init_result or {})
        child = self.child.protocol_version
        offered = ([v for v in protocol.HANDSHAKE_VERSIONS if v <= child]
                   if child in protocol.HANDSHAKE_VERSIONS else [child])
        # The client's version if the child's is not older, else the child's.
        result["protocolVersion"] = protocol.negotiate(params.get("protocolVersion"), offered)
        now = time.monotonic()
        if len(self.sessions) >= MAX_SESSIONS:
            for stale in [s for s in self.sessions.values() if now - s.last_seen > SESSION_IDLE]:
                self._end(stale)
        if len(self.sessions) >= MAX_SESSIONS:
            await _rpc_error(send, 503, rid, _child.UNAVAILABLE, "too many sessions")
            return
        session = Session(secrets.token_urlsafe(24), params.get("capabilities"), now)
        self.sessions[session.id] = session
        await asgi.respond_json(send, 200, {"jsonrpc": "2.0", "id": rid, "result": result},
                                [(b"mcp-session-id", session.id.encode())])

    # -- modern era ------------------------------------------------------------------------

    async def _modern(
        self, scope: Scope, message: jsonrpc.JSONObject, receive: Receive, send: Send, sse: bool
    ) -> None:
        method = message.get("method")
        rid = message.get("id")
        if method is None or "id" not in message:
            await asgi.respond(send, 202, b"")  # no client notifications on this wire
            return
        verdict = protocol.check_modern(message, scope["headers"])
        if isinstance(verdict, inbound.InboundLadderRejection):
            body = jsonrpc.error(rid, verdict.code, verdict.message, verdict.data)
            await asgi.respond_json(send, protocol.HTTP_STATUS.get(verdict.code, 400), body)
            return
        params = message.get("params")
        params = params if isinstance(params, dict) else {}
        raw_meta = params.get("_meta")
        meta: jsonrpc.JSONObject = raw_meta if isinstance(raw_meta, dict) else {}
        if method == protocol.DISCOVER:
            await self._discover(rid, send)
            return
        state = params.get("requestState")
        parked = self._parked.pop(state, None) if isinstance(state, str) else None
        if parked is not None:
            await self._resume(parked, message, params, receive, send, sse)
            return
        caller = ModernCaller(meta.get(protocol.CAPABILITIES_KEY))
        # The child speaks the handshake era: the per-request envelope is the bridge's to read.
        forwarded = message
        if any(k.startswith(protocol.META_PREFIX) for k in meta):
            rest = {k: v for k, v in meta.items() if not k.startswith(protocol.META_PREFIX)}
            clean = {k: v for k, v in params.items() if k != "_meta"}
            if rest:
                clean["_meta"] = rest
            forwarded = {**message, "params": clean}
        await self._forward(forwarded, caller, receive, send, sse, modern=True)

    async def _discover(self, rid: jsonrpc.JSONValue, send: Send) -> None:
        try:
            await self.child.wait_ready()
        except _child.UnavailableError as exc:
            await _rpc_error(send, 503, rid, _child.UNAVAILABLE, str(exc))
            return
        init = self.child.init_result or {}
        child_version = self.child.protocol_version
        versions = [v for v in protocol.STREAMABLE_VERSIONS if v <= child_version]
        result: jsonrpc.JSONObject = protocol.complete({
            "supportedVersions": [*versions, *protocol.MODERN_VERSIONS],
            "capabilities": init.get("capabilities") or {},
        }, protocol.DISCOVER)
        if init.get("instructions") is not None:
            result["instructions"] = init["instructions"]
        if isinstance(init.get("serverInfo"), dict):
            result["_meta"] = {protocol.SERVER_INFO_KEY: init["serverInfo"]}
        await asgi.respond_json(send, 200, {"jsonrpc": "2.0", "id": rid, "result": result})

    async def _resume(
        self,
        parked: Parked,
        message: jsonrpc.JSONObject,
        params: jsonrpc.JSONObject,
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
        message: jsonrpc.JSONObject,
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
        method: jsonrpc.JSONValue,
    ) -> None:
        """Answer one POST with the call's events: JSON if the response comes first, else SSE."""
        disconnected = asyncio.get_running_loop().create_task(asgi.disconnected(receive))
        response = events.Response(send)
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
                    # Relayed server requests carry our outward ids (ints, _child._server_request).
                    state = self._park(call, cast(int, event["id"]))
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
                elif final and modern and isinstance(result := event.get("result"), dict):
                    protocol.complete(result, method)
                if final:
                    await response.finish(jsonrpc.encode(event))
                    return
                if sse:
                    await response.event(jsonrpc.encode(event))
                elif "id" in event:  # a JSON-only client gets no notifications
                    self.child.refuse(cast(int, event["id"]), "the client takes no event stream")
        finally:
            if not parked:
                self.child.finish(call)
            disconnected.cancel()
            self._active -= 1
            if not self._active:
                self._idle.set()

    # -- GET stream ------------------------------------------------------------------------

    async def _get(self, scope: Scope, receive: Receive, send: Send) -> None:
        if "text/event-stream" not in (asgi.header(scope, b"accept") or ""):
            await asgi.plain(send, 406, "Accept: text/event-stream required")
            return
        if not asgi.header(scope, b"mcp-session-id"):
            modern = asgi.header(scope, b"mcp-protocol-version") in protocol.MODERN_VERSIONS
            status = 405 if modern else 400  # the modern era has no GET stream
            await asgi.plain(send, status, "Mcp-Session-Id header required")
            return
        session = self._session(scope)
        if session is None:
            await asgi.plain(send, 404, "unknown or expired session")
            return
        if session.stream is not None:
            await asgi.plain(send, 409, "this session already has a stream")
            return
        queue: asyncio.Queue[jsonrpc.JSONObject | None] = asyncio.Queue()
        session.stream = queue

        async def next_event() -> bytes | None:
            event = await queue.get()
            return None if event is None else jsonrpc.encode(event)

        try:
            await events.serve(receive, send, b": stream\n\n", next_event, keepalive=KEEPALIVE)
        finally:
            if session.stream is queue:
                session.stream = None
            # Server requests that never reached the client: the child is not left waiting.
            while not queue.empty():
                left = queue.get_nowait()
                if left is not None and "id" in left and "method" in left:
                    self.child.refuse(cast(int, left["id"]), "the client's stream closed")

    def _broadcast(self, message: jsonrpc.JSONObject) -> None:
        for session in self.sessions.values():
            if session.stream is not None:
                session.stream.put_nowait(message)

    def _deliver(self, message: jsonrpc.JSONObject) -> bool:
        for session in reversed(list(self.sessions.values())):
            if session.stream is not None and session.can_answer(cast(str, message["method"])):
                session.stream.put_nowait(message)
                return True
        return False


# -- helpers -------------------------------------------------------------------------------


async def _next(call: _child.Call, disconnected: asyncio.Task[None]) -> jsonrpc.JSONObject | None:
    if not call.events.empty():
        return call.events.get_nowait()
    getter = asyncio.ensure_future(call.events.get())
    await asyncio.wait({getter, disconnected}, return_when=asyncio.FIRST_COMPLETED)
    if getter.done():
        return getter.result()
    getter.cancel()
    return None


async def _rpc_error(send: Send, status: int, rid: jsonrpc.JSONValue, code: int,
                     message: str) -> None:
    await asgi.respond_error(send, status, code, message, id_=rid)
