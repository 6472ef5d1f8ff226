"""The legacy HTTP+SSE transport (protocol 2024-11-05) for old clients.

``GET /ws/<workspace>/sse`` opens a session and its event stream; the first event,
``endpoint``, names ``/ws/<workspace>/messages?sessionId=ID`` where the client POSTs its
messages. Each POST is acknowledged with 202 and its answer travels on the stream. The session
ends when the stream closes. Every POST is authenticated again and must come from the member
who opened the stream (else 404, as for an unknown session).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qs

import orjson
from starlette.types import Receive, Scope, Send

from mcpyard.gateway import _auth, _http
from mcpyard.gateway import _jsonrpc as rpc
from mcpyard.gateway._router import SSE_VERSIONS, Router, initialize_result, negotiate
from mcpyard.gateway._runtime import Live, Runtime
from mcpyard.gateway._sessions import Session
from mcpyard.gateway._streamable import _invalid

log = logging.getLogger("mcpyard.gateway")


def _headers(scope: Scope) -> tuple[bytes | None, bytes | None]:
    auth = accept = None
    for key, value in scope["headers"]:
        if key == b"authorization":
            auth = value
        elif key == b"accept":
            accept = value
    return auth, accept


class SSEStream:
    """Raw ASGI endpoint for ``GET /ws/{workspace}/sse``."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != "GET":
            await _http.respond(send, 405, b"", [(b"allow", b"GET")])
            return
        auth, accept = _headers(scope)
        name = scope["path_params"]["workspace"]
        live = self.runtime.live.get(name)
        if live is None:
            await _http.respond_error(send, 404, rpc.INVALID_REQUEST, f"no workspace {name}")
            return
        member = _auth.authenticate(live.members, auth)
        if isinstance(member, bytes):
            await _http.unauthorized(send, member)
            return
        if not _http.accepts(accept, b"text/event-stream"):
            await _http.respond_error(send, 406, rpc.INVALID_REQUEST,
                                      "Not Acceptable: the client must accept text/event-stream")
            return
        session = self.runtime.sessions.open(name, member.name, member.key, None, "sse")
        session.streams += 1
        log.info("workspace %s: member %s opened an SSE session", name, member.key)
        endpoint = f"{scope.get('root_path', '')}/ws/{name}/messages?sessionId={session.id}"
        try:
            await _http.stream(receive, send, _http.event(endpoint.encode(), b"endpoint"),
                               session.next)
        finally:
            session.streams -= 1
            await self.runtime.sessions.end(session)


class SSEMessages:
    """Raw ASGI endpoint for ``POST /ws/{workspace}/messages?sessionId=ID``."""

    def __init__(self, runtime: Runtime, router: Router) -> None:
        self.runtime = runtime
        self.router = router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != "POST":
            await _http.respond(send, 405, b"", [(b"allow", b"POST")])
            return
        auth, _ = _headers(scope)
        name = scope["path_params"]["workspace"]
        live = self.runtime.live.get(name)
        if live is None:
            await _http.respond_error(send, 404, rpc.INVALID_REQUEST, f"no workspace {name}")
            return
        member = _auth.authenticate(live.members, auth)
        if isinstance(member, bytes):
            await _http.unauthorized(send, member)
            return
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        sid = (query.get("sessionId") or query.get("session_id") or [""])[0]
        if not sid:
            await _http.respond_error(send, 400, rpc.INVALID_REQUEST,
                                      "Bad Request: sessionId is required")
            return
        session = self.runtime.sessions.get(sid)
        if (session is None or session.transport != "sse" or session.workspace != name
                or session.member != member.name):
            await _http.respond_error(send, 404, rpc.INVALID_REQUEST, "Session not found")
            return
        try:
            payload = orjson.loads(await _http.read_body(receive))
        except _http.BodyTooLarge:
            await _http.respond_error(send, 413, rpc.INVALID_REQUEST, "request body too large")
            return
        except ConnectionResetError:
            return
        except orjson.JSONDecodeError:
            await _http.respond_error(send, 400, rpc.PARSE_ERROR, "Parse error")
            return
        await _http.respond(send, 202, b"Accepted")
        session.spawn(self._handle(live, member, session, payload))

    async def _handle(self, live: Live, member: _auth.Member, session: Session,
                      payload: Any) -> None:
        if isinstance(payload, list):
            replies = [r for r in [await self._one(live, member, session, m) for m in payload]
                       if r is not None]
            if replies:
                session.push(replies)
            return
        reply = await self._one(live, member, session, payload)
        if reply is not None:
            session.push(reply)

    async def _one(self, live: Live, member: _auth.Member, session: Session,
                   msg: Any) -> dict[str, Any] | None:
        problem = _invalid(msg)
        if problem is not None:
            return problem
        if "method" not in msg:
            return None  # a response to a server request: none are sent yet
        if "id" not in msg:
            await self.router.notification(live, member, session, msg)
            return None
        if msg["method"] == "initialize":
            params = msg.get("params")
            requested = params.get("protocolVersion") if isinstance(params, dict) else None
            session.protocol = negotiate(requested, SSE_VERSIONS)
            return rpc.result(msg["id"], initialize_result(live, session.protocol))
        # The snapshot of this request, not of the stream's opening: reloads apply.
        current = self.runtime.live.get(session.workspace, live)
        return await self.router.request(current, member, session, msg)
