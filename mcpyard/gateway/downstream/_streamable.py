"""The streamable HTTP transport at ``/ws/<workspace>/mcp``, both eras.

Each POST is first given its era (:func:`mcpyard.mcp.protocol.is_modern`); a 2026-07-28
request goes to ``_modern``, everything else is the handshake era described here.

POST carries JSON-RPC messages (a batch only under 2025-03-26) and is answered with JSON;
GET opens the session's stream of server notifications (``notifications/tools/list_changed``);
DELETE ends the session. ``Mcp-Session-Id`` is required after initialize: 400 when missing,
404 when unknown or expired or when it belongs to another member (the session's existence is
not revealed to anyone else; the client re-initializes). ``MCP-Protocol-Version`` absent means
2025-03-26; an unsupported one is refused with 400. A request's answer is JSON, or an event
stream when progress, log messages or the upstream's own requests (sampling, elicitation,
roots) must reach the client first (``_streams.PostStream``); the client answers those with
POSTs of JSON-RPC responses. ``notifications/cancelled`` cancels the request it names (a
dropped connection does not: the handshake-era rule).

A request refused by a rate limit is answered with HTTP 429, ``Retry-After`` and the
JSON-RPC error (:data:`_jsonrpc.RATE_LIMITED`); a batch gets 429 only when every request in it was
refused (otherwise 200, with the refusals among the answers).
"""

from __future__ import annotations

import asyncio
import logging
from typing import cast

import orjson
from starlette.types import Receive, Scope, Send

from mcpyard import errors
from mcpyard.gateway import _jsonrpc
from mcpyard.gateway._router import Router, client_capabilities
from mcpyard.gateway._runtime import Live, Runtime
from mcpyard.gateway.downstream import _asgi as _http
from mcpyard.gateway.downstream import _auth, _modern, _streams
from mcpyard.gateway.downstream._sessions import Session
from mcpyard.gateway.services import _tracing
from mcpyard.gateway.services._records import Era
from mcpyard.mcp import asgi, protocol, sse
from mcpyard.mcp import jsonrpc as rpc

log = logging.getLogger("mcpyard.gateway")

_SUPPORTED = frozenset(v.encode() for v in protocol.STREAMABLE_VERSIONS)
_ALLOW = [(b"allow", b"GET, POST, DELETE")]


class StreamableHTTP:
    """Raw ASGI endpoint for ``/ws/{workspace}/mcp``."""

    def __init__(self, runtime: Runtime, router: Router, *, max_depth: int = 64) -> None:
        self.runtime = runtime
        self.router = router
        self.max_depth = max_depth
        self.modern = _modern.Modern(runtime, router, router.relays.subscriptions)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        auth = sid = version = accept = ctype = None
        for key, value in scope["headers"]:
            if key == b"authorization":
                auth = value
            elif key == b"mcp-session-id":
                sid = value
            elif key == b"mcp-protocol-version":
                version = value
            elif key == b"accept":
                accept = value
            elif key == b"content-type":
                ctype = value
        admitted = await admit(self.runtime, self.router, scope, receive, send, auth,
                               "handshake")
        if admitted is None:
            return
        live, member = admitted
        method = scope["method"]
        if method == "POST":
            await self._post(live, member, scope, receive, send, sid, version, accept, ctype)
        elif method == "GET":
            await self._get(live, member, receive, send, sid, version, accept)
        elif method == "DELETE":
            session = await self._session(live, member, send, sid, version)
            if session is not None:
                await self.runtime.sessions.end(session)
                await asgi.respond(send, 200)
        else:
            await asgi.respond(send, 405, b"", _ALLOW)

    async def _session(self, live: Live, member: _auth.Member, send: Send, sid: bytes | None,
                       version: bytes | None) -> Session | None:
        """The request's session, or None after answering 400 / 404."""
        if sid is None:
            await asgi.respond_error(send, 400, rpc.INVALID_REQUEST,
                                     "Bad Request: Mcp-Session-Id header is required")
            return None
        session = self.runtime.sessions.get(sid.decode("latin-1"))
        if (session is None or session.workspace != live.config.name
                or session.member != member.name or session.transport != "streamable-http"):
            await asgi.respond_error(send, 404, rpc.INVALID_REQUEST, "Session not found")
            return None
        if version is not None and version not in _SUPPORTED:
            await asgi.respond_error(
                send, 400, rpc.INVALID_REQUEST,
                f"Bad Request: unsupported MCP-Protocol-Version "
                f"{version.decode('latin-1')!r} "
                f"(supported: {', '.join(protocol.STREAMABLE_VERSIONS)})")
            return None
        return session

    async def _post(self, live: Live, member: _auth.Member, scope: Scope, receive: Receive,
                    send: Send, sid: bytes | None, version: bytes | None, accept: bytes | None,
                    ctype: bytes | None) -> None:
        if not asgi.accepts(accept, b"application/json"):
            await asgi.respond_error(send, 406, rpc.INVALID_REQUEST,
                                     "Not Acceptable: the client must accept application/json")
            return
        if ctype is None or ctype.split(b";", 1)[0].strip().lower() != b"application/json":
            await asgi.respond_error(send, 415, rpc.INVALID_REQUEST,
                                     "Unsupported Media Type: send application/json")
            return
        try:
            body = await _http.read_body(receive)
        except errors.BodyTooLarge:
            await asgi.respond_error(send, 413, rpc.INVALID_REQUEST, "request body too large")
            return
        except ConnectionResetError:
            return
        try:
            payload: rpc.JSONValue = orjson.loads(body)
        except orjson.JSONDecodeError:
            await asgi.respond_error(send, 400, rpc.PARSE_ERROR, "Parse error")
            return
        era = None if version is None else version.decode("latin-1").strip(" \t")
        modern = protocol.is_modern(era, payload, sid is not None)
        if _http.too_deep(body, payload, self.max_depth):
            # Refused here, never forwarded: an upstream's encoder (and ours) would recurse
            # into a 500 or a hung call.
            await asgi.respond_json(send, 400, self.router.refused(
                live, member, payload, era="modern" if modern else "handshake",
                size=len(body), message=_http.depth_error(self.max_depth)))
            return
        if modern:
            await self.modern.post(live, member, scope["headers"], receive, send, payload,
                                   accept, len(body))
            return

        if isinstance(payload, dict):
            if payload.get("method") == "initialize" and "id" in payload:
                await self._initialize(live, member, send, payload, len(body))
                return
            session = await self._session(live, member, send, sid, version)
            if session is None:
                return
            problem = _invalid(payload)
            if problem is not None:
                await asgi.respond_json(send, 400, problem)
            elif "method" not in payload:
                session.answer(payload)  # the client's answer to a request relayed to it
                await asgi.respond(send, 202)
            elif "id" not in payload:
                await self.router.notification(live, member, session, payload)
                await asgi.respond(send, 202)
            else:
                await self._request(live, member, session, send, payload, accept, len(body))
            return

        if not isinstance(payload, list) or not payload:
            await asgi.respond_json(send, 400, rpc.error(None, rpc.INVALID_REQUEST,
                                                         "Invalid Request"))
            return
        session = await self._session(live, member, send, sid, version)
        if session is None:
            return
        era = (version.decode("latin-1") if version is not None else
               session.protocol or protocol.DEFAULT_HEADER_VERSION)
        if era not in protocol.BATCH_VERSIONS or session.protocol not in protocol.BATCH_VERSIONS:
            await asgi.respond_json(send, 400, rpc.error(
                None, rpc.INVALID_REQUEST,
                "Invalid Request: JSON-RPC batches are only part of protocol 2025-03-26"))
            return
        await self._batch(live, member, session, send, payload)

    async def _request(self, live: Live, member: _auth.Member, session: Session, send: Send,
                       msg: rpc.JSONObject, accept: bytes | None, size: int) -> None:
        stream = _streams.PostStream(send, session, log_level=session.log_level,
                                     can_stream=asgi.accepts(accept, b"text/event-stream"))
        work = asyncio.ensure_future(self.router.request(live, member, session, msg,
                                                         era="handshake", size=size,
                                                         way_back=stream))
        id_ = cast(rpc.Id, msg["id"])  # _invalid checked it
        reply = await self.router.tracked(session, id_, work)
        if reply is None:
            # Cancelled by the client, which ignores any answer; the response must still end.
            reply = rpc.error(id_, rpc.REQUEST_CANCELLED, "Request cancelled")
        wait = _jsonrpc.retry_after(reply)
        if wait is not None:
            stream.headers = [_retry_after(wait)]
        await stream.finish(reply, 200 if wait is None else 429)

    async def _batch(self, live: Live, member: _auth.Member, session: Session, send: Send,
                     batch: list[rpc.JSONValue]) -> None:
        replies: list[rpc.Response] = []
        calls = []
        for msg in batch:
            problem = _invalid(msg)
            if problem is not None:
                replies.append(problem)
                continue
            assert isinstance(msg, dict)  # _invalid checked it
            if msg.get("method") == "initialize":
                replies.append(rpc.error(cast(rpc.Id, msg.get("id")), rpc.INVALID_REQUEST,
                                         "initialize must not be part of a batch"))
            elif "method" in msg and "id" in msg:
                calls.append(self.router.request(live, member, session, msg, era="handshake",
                                                 size=len(orjson.dumps(msg))))
            elif "method" in msg:
                await self.router.notification(live, member, session, msg)
        replies.extend(await asyncio.gather(*calls))
        waits = [_jsonrpc.retry_after(r) for r in replies]
        if replies and None not in waits:
            await asgi.respond_json(send, 429, replies, [_retry_after(max(w or 1
                                                                          for w in waits))])
        elif replies:
            await asgi.respond_json(send, 200, replies)
        else:
            await asgi.respond(send, 202)

    async def _initialize(self, live: Live, member: _auth.Member, send: Send,
                          msg: rpc.JSONObject, size: int) -> None:
        problem = _invalid(msg)
        if problem is not None:
            await asgi.respond_json(send, 400, problem)
            return
        # The router admits (and records) the initialize; the session opens only once it did.
        reply = await self.router.request(live, member, None, msg, era="handshake", size=size)
        result = reply.get("result")
        if not isinstance(result, dict):
            await respond(send, reply)
            return
        version = cast(str, result["protocolVersion"])  # initialize_result's
        session = self.runtime.sessions.open(live.config.name, member.name, member.key,
                                             version, "streamable-http")
        session.capabilities = client_capabilities(msg.get("params"))
        log.info("workspace %s: member %s opened a session (protocol %s)", live.config.name,
                 member.key, version)
        await asgi.respond_json(send, 200, reply, [(b"mcp-session-id", session.id.encode())])

    async def _get(self, live: Live, member: _auth.Member, receive: Receive, send: Send,
                   sid: bytes | None, version: bytes | None, accept: bytes | None) -> None:
        if accept is None or not asgi.accepts(accept, b"text/event-stream"):
            await asgi.respond_error(send, 406, rpc.INVALID_REQUEST,
                                     "Not Acceptable: the client must accept text/event-stream")
            return
        session = await self._session(live, member, send, sid, version)
        if session is None:
            return
        if session.streams:
            await asgi.respond_error(send, 409, rpc.INVALID_REQUEST,
                                     "Conflict: this session already has a GET stream")
            return
        session.streams += 1
        try:
            await sse.serve(receive, send, None, session.next)
        finally:
            session.streams -= 1


def _retry_after(seconds: int) -> tuple[bytes, bytes]:
    return (b"retry-after", str(seconds).encode())


async def respond(send: Send, reply: rpc.Response) -> None:
    """Send one reply: 429 with ``Retry-After`` for a rate-limit refusal, else 200."""
    wait = _jsonrpc.retry_after(reply)
    if wait is None:
        await asgi.respond_json(send, 200, reply)
    else:
        await asgi.respond_json(send, 429, reply, [_retry_after(wait)])


async def admit(runtime: Runtime, router: Router, scope: Scope, receive: Receive, send: Send,
                auth: bytes | None, era: Era) -> tuple[Live, _auth.Member] | None:
    """The workspace the path names and the member the credential names, or None after
    answering 404 (no such workspace) or 401 (see :func:`unauthorized`)."""
    name = scope["path_params"]["workspace"]
    live = runtime.live.get(name)
    if live is None:
        await asgi.respond_error(send, 404, rpc.INVALID_REQUEST, f"no workspace {name}")
        return None
    member = _tracing.authenticate(live.members, auth)
    if isinstance(member, bytes) and router.oauth is not None:  # an OAuth access token?
        member = await router.oauth.authenticate(live, auth, member)
    if isinstance(member, bytes):
        await unauthorized(router, live, scope, receive, send, member, era)
        return None
    return live, member


async def unauthorized(router: Router, live: Live, scope: Scope, receive: Receive, send: Send,
                       challenge: bytes, era: Era) -> None:
    """Answer 401 (429 when the client's address failed too often) and have the router
    account the auth failure (aggregated per address in the call log).

    The body of a POST is read to name the method in the record (bodies are capped like any
    other); nothing about the credential is passed on: the record says only whether one was
    missing or did not match."""
    if router.oauth is not None:  # RFC 9728: where to find how to get a token
        challenge = router.oauth.challenge(live, challenge, scope)
    client = scope.get("client")
    address = str(client[0]) if client else "unknown"
    wait = router.throttled(live, address)
    reason = ("invalid, unknown, disabled or expired token" if b"error=" in challenge
              else "no bearer token")
    if wait is not None:
        # Over its limit: not even the body is read.
        router.unauthorized(live, method=None, era=era, size=0, reason=reason,
                            address=address)
        await asgi.respond_json(send, 429, rpc.error(
            None, _jsonrpc.RATE_LIMITED, f"too many failed authentications from {address}",
            {"retryAfter": wait, "scope": "address"}), [_retry_after(wait)])
        return
    method: str | None = None
    size = 0
    if scope["method"] == "POST":
        try:
            body = await _http.read_body(receive)
            size = len(body)
            payload = orjson.loads(body)
            if isinstance(payload, dict) and isinstance(payload.get("method"), str):
                method = payload["method"]
        except (errors.BodyTooLarge, ConnectionResetError, orjson.JSONDecodeError):
            pass
    router.unauthorized(live, method=method, era=era, size=size, reason=reason,
                        address=address)
    await _http.unauthorized(send, challenge)


def _invalid(msg: rpc.JSONValue) -> rpc.Message | None:
    """The JSON-RPC error for a message that is not valid JSON-RPC 2.0, else None."""
    if not isinstance(msg, dict) or msg.get("jsonrpc") != "2.0":
        id_ = msg.get("id") if isinstance(msg, dict) else None
        return rpc.error(id_ if rpc.valid_id(id_) else None, rpc.INVALID_REQUEST,
                         "Invalid Request")
    if "method" in msg:
        if not isinstance(msg["method"], str) or ("id" in msg and not rpc.valid_id(msg["id"])):
            return rpc.error(None, rpc.INVALID_REQUEST, "Invalid Request")
        params = msg.get("params")
        if params is not None and not isinstance(params, dict):
            return rpc.error(cast(rpc.Id, msg.get("id")), rpc.INVALID_REQUEST,  # checked above
                             "Invalid Request: params must be an object")
        return None
    if rpc.is_response(msg):
        return None
    return rpc.error(None, rpc.INVALID_REQUEST, "Invalid Request")
