"""The legacy HTTP+SSE transport (protocol 2024-11-05) for old clients.

``GET /ws/<workspace>/sse`` opens a session and its event stream; the first event,
``endpoint``, names ``/ws/<workspace>/messages?sessionId=ID`` where the client POSTs its
messages. Each POST is acknowledged with 202 and its answer travels on the stream. The session
ends when the stream closes. Every POST is authenticated again and must come from the member
who opened the stream (else 404, as for an unknown session).

Rate limits: a refused request's JSON-RPC error (:data:`_jsonrpc.RATE_LIMITED`, with ``retryAfter``
in its data) travels on the stream like any answer, after the POST was accepted with 202; it
is not a 429 to the POST. Answering the POST with 429 before accepting it would be possible,
but the official Python SDK's SSE client raises on any non-2xx POST inside its writer task,
which ends that task: every later message of the session is lost and the refused request
never gets an answer. On the stream, every client sees a plain JSON-RPC error it can handle,
and the limit is admitted at the same place (the router) as on /mcp.
"""

from __future__ import annotations

import asyncio
import logging
from typing import cast
from urllib.parse import parse_qs

import orjson
from starlette.types import Receive, Scope, Send

from mcpyard import errors
from mcpyard.gateway._router import Router
from mcpyard.gateway._runtime import Live, Runtime
from mcpyard.gateway.downstream import _asgi as _http
from mcpyard.gateway.downstream import _auth, _streams
from mcpyard.gateway.downstream._sessions import Session
from mcpyard.gateway.downstream._streamable import _invalid, admit
from mcpyard.mcp import asgi, sse
from mcpyard.mcp import jsonrpc as rpc

log = logging.getLogger("mcpyard.gateway")


async def _admit(runtime: Runtime, router: Router, scope: Scope, receive: Receive, send: Send,
                 method: str) -> tuple[Live, _auth.Member, bytes | None] | None:
    """How both endpoints start: the HTTP method (else 405), then :func:`admit`; the
    workspace, the member and the Accept header, or None after answering."""
    if scope["method"] != method:
        await asgi.respond(send, 405, b"", [(b"allow", method.encode())])
        return None
    auth = accept = None
    for key, value in scope["headers"]:
        if key == b"authorization":
            auth = value
        elif key == b"accept":
            accept = value
    admitted = await admit(runtime, router, scope, receive, send, auth, "legacy-sse")
    return None if admitted is None else (*admitted, accept)


class SSEStream:
    """Raw ASGI endpoint for ``GET /ws/{workspace}/sse``."""

    def __init__(self, runtime: Runtime, router: Router) -> None:
        self.runtime = runtime
        self.router = router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        admitted = await _admit(self.runtime, self.router, scope, receive, send, "GET")
        if admitted is None:
            return
        live, member, accept = admitted
        name = live.config.name
        if not asgi.accepts(accept, b"text/event-stream"):
            await asgi.respond_error(send, 406, rpc.INVALID_REQUEST,
                                     "Not Acceptable: the client must accept text/event-stream")
            return
        session = self.runtime.sessions.open(name, member.name, member.key, None, "sse")
        session.streams += 1
        log.info("workspace %s: member %s opened an SSE session", name, member.key)
        endpoint = f"{scope.get('root_path', '')}/ws/{name}/messages?sessionId={session.id}"
        try:
            await sse.serve(receive, send, sse.event(endpoint.encode(), b"endpoint"),
                            session.next)
        finally:
            session.streams -= 1
            await self.runtime.sessions.end(session)


class SSEMessages:
    """Raw ASGI endpoint for ``POST /ws/{workspace}/messages?sessionId=ID``."""

    def __init__(self, runtime: Runtime, router: Router, *, max_depth: int = 64) -> None:
        self.runtime = runtime
        self.router = router
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        admitted = await _admit(self.runtime, self.router, scope, receive, send, "POST")
        if admitted is None:
            return
        live, member, _ = admitted
        name = live.config.name
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        sid = (query.get("sessionId") or query.get("session_id") or [""])[0]
        if not sid:
            await asgi.respond_error(send, 400, rpc.INVALID_REQUEST,
                                     "Bad Request: sessionId is required")
            return
        session = self.runtime.sessions.get(sid)
        if (session is None or session.transport != "sse" or session.workspace != name
                or session.member != member.name):
            await asgi.respond_error(send, 404, rpc.INVALID_REQUEST, "Session not found")
            return
        try:
            body = await _http.read_body(receive)
            payload: rpc.JSONValue = orjson.loads(body)
        except errors.BodyTooLarge:
            await asgi.respond_error(send, 413, rpc.INVALID_REQUEST, "request body too large")
            return
        except ConnectionResetError:
            return
        except orjson.JSONDecodeError:
            await asgi.respond_error(send, 400, rpc.PARSE_ERROR, "Parse error")
            return
        await asgi.respond(send, 202, b"Accepted")
        if _http.too_deep(body, payload, self.max_depth):
            # Like every answer on this transport, the refusal travels on the stream.
            session.push(self.router.refused(live, member, payload, era="legacy-sse",
                                             size=len(body),
                                             message=_http.depth_error(self.max_depth)))
            return
        session.spawn(self._handle(live, member, session, payload, len(body)))

    async def _handle(self, live: Live, member: _auth.Member, session: Session,
                      payload: rpc.JSONValue, size: int) -> None:
        if isinstance(payload, list):
            replies = [r for r in [await self._one(live, member, session, m,
                                                   len(orjson.dumps(m))) for m in payload]
                       if r is not None]
            if replies:
                session.push(replies)
            return
        reply = await self._one(live, member, session, payload, size)
        if reply is not None:
            session.push(reply)

    async def _one(self, live: Live, member: _auth.Member, session: Session,
                   msg: rpc.JSONValue, size: int) -> rpc.Response | None:
        problem = _invalid(msg)
        if problem is not None:
            return problem
        assert isinstance(msg, dict)  # _invalid checked it
        if "method" not in msg:
            session.answer(msg)  # the client's answer to a request relayed to it
            return None
        if "id" not in msg:
            await self.router.notification(live, member, session, msg)
            return None
        # The snapshot of this request, not of the stream's opening: reloads apply.
        current = self.runtime.live.get(session.workspace, live)
        work = asyncio.ensure_future(self.router.request(
            current, member, session, msg, era="legacy-sse", size=size,
            way_back=_streams.SessionStream(session)))
        return await self.router.tracked(session, cast(rpc.Id, msg["id"]), work)
