"""The sessionless era (protocol 2026-07-28) on ``/ws/<workspace>/mcp``.

Which era a POST speaks is decided per request (:func:`mcpyard.mcp.protocol.is_modern`, the
official SDK server's rule; a modern ``initialize`` is a method this era does not have).

A modern request carries everything in itself: its version, the client's capabilities and
(optionally) its identity in ``params._meta``, mirrored in the ``MCP-Protocol-Version``,
``Mcp-Method`` and ``Mcp-Name`` headers. The envelope and the headers are checked by the
official SDK's own validation ladder (:func:`mcpyard.mcp.protocol.check_modern`): a missing
envelope is -32602, a header that disagrees with the body -32020, an unsupported version -32022 with
``data.supported`` and ``data.requested``; header names are case-insensitive, values are
compared exactly after trimming the optional whitespace around them (RFC 9110 5.5). Errors
carry the HTTP status the specification assigns (400, 404 for a method this era does not
have). Results get ``resultType`` and the gateway's ``serverInfo`` in ``_meta``; list results
and reads get ``ttlMs`` and ``cacheScope: private`` (every list is filtered per member).

There is no session: the member's requests share one pseudo-session (``SessionStore.
sessionless``) that owns the member's upstream sessions. Progress and log messages (only at or
above the ``logLevel`` the request asks for in ``_meta``) go onto the request's response
stream, which becomes an event stream only when one is sent. Closing the response stream
cancels the request (and the upstream one). ``subscriptions/listen`` opens a stream of
list_changed and resource-updated notifications, the fan-in of every upstream's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from typing import TYPE_CHECKING, cast

import orjson
from mcp.shared import inbound
from starlette.types import Receive, Send

from mcpyard import __version__, errors
from mcpyard.compiler import access, naming
from mcpyard.gateway import _methods, _relay
from mcpyard.gateway._runtime import Live, Runtime
from mcpyard.gateway.downstream import _streams
from mcpyard.gateway.downstream._auth import Member
from mcpyard.gateway.downstream._sessions import Session
from mcpyard.jsontypes import integer
from mcpyard.mcp import asgi, protocol, sse
from mcpyard.mcp import jsonrpc as rpc

if TYPE_CHECKING:
    from mcpyard.gateway._router import Router

log = logging.getLogger("mcpyard.gateway")

PARK_PREFIX = "mcpyard-parked:"
"""A requestState the gateway made (a parked call); any other passes to the upstream."""
PARK_KEY = "mcpyard"
LIST_TTL_MS = 0
"""Lists change with the configuration and the upstreams at any moment; subscriptions/listen
says when. A client may cache, but must ask again."""


def server_info(live: Live) -> rpc.JSONObject:
    return {"name": "mcpyard", "title": live.config.display_name, "version": __version__}


class _ModernReply(_streams.PostStream):
    """A modern request's response. A 2026-07-28 client cannot be sent a request; when a
    handshake-era upstream asks one (sampling, elicitation, roots) during the call, the call is
    parked: this response ends with an input-required result carrying the request, and the
    client's retry (with ``inputResponses`` and the ``requestState`` naming the parked call)
    delivers the answer and picks the call up where it waits."""

    modern = True
    __slots__ = ("parked", "question")

    def __init__(self, send: Send, session: Session, *, can_stream: bool,
                 log_level: int | None, capabilities: rpc.JSONObject | None,
                 forward_headers: dict[str, str] | None) -> None:
        super().__init__(send, session, can_stream=can_stream, log_level=log_level,
                         capabilities=capabilities, forward_headers=forward_headers)
        self.parked = asyncio.Event()
        """Set when the call waits for the client: the current response must end now."""
        self.question: tuple[str, asyncio.Future[rpc.JSONObject], rpc.JSONObject] | None = None

    async def ask(self, method: str, params: rpc.JSONObject | None) -> rpc.JSONObject:
        if self.question is not None:
            raise errors.CannotAsk("the client is already being asked something for this call")
        request: rpc.JSONObject = {"method": method}
        if params is not None:
            request["params"] = params
        future: asyncio.Future[rpc.JSONObject] = asyncio.get_running_loop().create_future()
        self.question = (secrets.token_urlsafe(24), future, request)
        self.parked.set()
        try:
            async with asyncio.timeout(_streams.ASK_TIMEOUT):
                return await future
        except TimeoutError:
            raise errors.CannotAsk(f"the client did not answer {method} in time") from None
        finally:
            self.question = None

    def resume(self, send: Send, answer: rpc.JSONValue) -> None:
        """The client's retry: answer the parked question, and continue on its response."""
        assert self.question is not None
        future = self.question[1]
        self.send = send
        self._queue = None
        self._writer = None
        self.parked = asyncio.Event()
        if not future.done():
            future.set_result({"result": answer} if isinstance(answer, dict) else {
                "error": {"code": rpc.INVALID_PARAMS, "message": "no answer to the request"}})


class _Parked:
    """A call that waits for its client's answer between two HTTP requests."""

    __slots__ = ("expires", "live", "member", "method", "reply", "work")

    def __init__(self, member: str, method: str, live: Live, reply: _ModernReply,
                 work: asyncio.Future[rpc.Response]) -> None:
        self.member = member
        self.method = method
        self.live = live
        self.reply = reply
        self.work = work
        self.expires = time.monotonic() + _streams.ASK_TIMEOUT


class Modern:
    def __init__(self, runtime: Runtime, router: Router, subscriptions: _relay.Subscriptions
                 ) -> None:
        self.runtime = runtime
        self.router = router
        self.subscriptions = subscriptions
        self._parked: dict[str, _Parked] = {}

    async def post(self, live: Live, member: Member, headers: list[tuple[bytes, bytes]],
                   receive: Receive, send: Send, payload: rpc.JSONValue, accept: bytes | None,
                   size: int) -> None:
        """Answer one modern POST (its body already parsed)."""
        if not asgi.accepts(accept, b"application/json"):
            await asgi.respond(send, 406)
            return
        version = _header(headers, b"mcp-protocol-version")
        if not isinstance(payload, dict) or ("id" in payload and not rpc.valid_id(payload["id"])):
            await self._error(send, None, rpc.INVALID_REQUEST,
                              "Body must be a single JSON-RPC request or notification object")
            return
        if "id" not in payload:
            # Client notifications have no meaning in this era (cancelling is closing the
            # stream); they are acknowledged, as the handshake era does.
            if version is not None and version not in protocol.MODERN_VERSIONS:
                await self._unsupported(send, None, version)
            else:
                await asgi.respond(send, 202)
            return
        id_ = cast(rpc.Id, payload["id"])  # valid_id above
        method = payload.get("method")
        if payload.get("jsonrpc") != "2.0" or not isinstance(method, str):
            await self._error(send, id_, rpc.INVALID_REQUEST, "Invalid Request")
            return
        params = payload.get("params")
        if params is not None and not isinstance(params, dict):
            await self._error(send, id_, rpc.INVALID_PARAMS, "params must be an object")
            return
        verdict = protocol.check_modern(payload, headers)
        if isinstance(verdict, inbound.InboundLadderRejection):
            await self._error(send, id_, verdict.code, verdict.message, verdict.data)
            return
        if method in protocol.REMOVED:
            await self._error(send, id_, rpc.METHOD_NOT_FOUND, f"Method not found: {method}")
            return
        if method == "server/discover":
            await self._result(live, send, id_, method, {
                "supportedVersions": list(protocol.MODERN_VERSIONS),
                "capabilities": _methods.capabilities(live),
                "serverInfo": server_info(live),
            })
            return
        if method == "subscriptions/listen":
            if accept is not None and not asgi.accepts(accept, b"text/event-stream"):
                await asgi.respond(send, 406)
                return
            await self._listen(live, member, receive, send, id_, params or {})
            return
        if method == "tools/call":
            problem = _param_headers(live, member, params or {}, headers)
            if problem is not None:
                await self._error(send, id_, problem.code, problem.message, problem.data)
                return
        await self._request(live, member, receive, send, payload, accept, headers, size)

    async def _request(self, live: Live, member: Member, receive: Receive, send: Send,
                       payload: rpc.JSONObject, accept: bytes | None,
                       headers: list[tuple[bytes, bytes]], size: int) -> None:
        # _classify checked the shape: params and its _meta are objects.
        params = cast(rpc.JSONObject, payload["params"])
        state = params.get("requestState")
        if isinstance(state, str) and state.startswith(PARK_PREFIX):
            await self._resume(live, member, receive, send, payload, state)
            return
        session = self.runtime.sessions.sessionless(live.config.name, member.name, member.key)
        meta = cast(rpc.JSONObject, params["_meta"])
        level = meta.get(protocol.LOG_LEVEL_KEY)
        caps = meta.get(protocol.CAPABILITIES_KEY)
        reply = _ModernReply(send, session,
                             can_stream=accept is None or asgi.accepts(accept,
                                                                       b"text/event-stream"),
                             log_level=(_relay.LOG_LEVELS.index(level)
                                        if level in _relay.LOG_LEVELS else None),
                             capabilities=caps if isinstance(caps, dict) else {},
                             forward_headers=_param_headers_of(headers))
        method = cast(str, payload["method"])
        work = asyncio.ensure_future(self.router.request(
            live, member, session, payload, era="modern", size=size, way_back=reply,
            finish=lambda result: self._decorate(live, method, result)))
        await self._serve(live, member, receive, cast(rpc.Id, payload["id"]), method, reply,
                          work)

    async def _resume(self, live: Live, member: Member, receive: Receive, send: Send,
                      payload: rpc.JSONObject, state: str) -> None:
        """The retry of a parked call: deliver the answer, serve the rest of the call."""
        self._sweep()
        parked = self._parked.get(state[len(PARK_PREFIX):])
        id_ = cast(rpc.Id, payload["id"])  # post() checked it
        if parked is None or parked.member != member.key or parked.method != payload["method"]:
            await self._error(send, id_, rpc.INVALID_PARAMS,
                              "Invalid params: unknown or expired requestState")
            return
        del self._parked[state[len(PARK_PREFIX):]]
        responses = cast(rpc.JSONObject, payload["params"]).get("inputResponses")
        answer = responses.get(PARK_KEY) if isinstance(responses, dict) else None
        parked.reply.resume(send, answer)
        await self._serve(parked.live, member, receive, id_, parked.method,
                          parked.reply, parked.work)

    async def _serve(self, live: Live, member: Member, receive: Receive, id_: rpc.Id,
                     method: str, reply: _ModernReply,
                     work: asyncio.Future[rpc.Response]) -> None:
        gone = asyncio.ensure_future(asgi.disconnected(receive))
        parked = asyncio.ensure_future(reply.parked.wait())
        try:
            waiters: set[asyncio.Future[rpc.Response] | asyncio.Task[bool | None]] = {
                work, gone, parked}
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            if not work.done() and reply.parked.is_set() and reply.question is not None:
                token, _, request = reply.question
                self._sweep()
                self._parked[token] = _Parked(member.key, method, live, reply, work)
                await reply.finish(rpc.result(id_, self._decorate(live, method, {
                    "resultType": "input_required",
                    "inputRequests": {PARK_KEY: request},
                    "requestState": PARK_PREFIX + token,
                })))
                return
        finally:
            if not work.done() and not reply.parked.is_set():
                # The client closed its stream: that is how this era cancels.
                work.cancel()
                reply.abort()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await work
                log.info("workspace %s: member %s cancelled %s by closing its stream",
                         live.config.name, member.key, method)
            gone.cancel()
            parked.cancel()
        if not work.done() or work.cancelled():
            return
        answer = work.result()
        answer["id"] = id_
        if "result" in answer:  # completed by _decorate in the router, before its one encode
            await reply.finish(answer)
        else:
            error = answer.get("error")
            code = integer(error, "code") if isinstance(error, dict) else 0
            status = 200 if reply.streaming else protocol.HTTP_STATUS.get(code, 200)
            await reply.finish(answer, status)

    def _sweep(self) -> None:
        """Forget the parked calls whose client never came back (their upstream call ended
        with its own time limit already; this frees what is left)."""
        now = time.monotonic()
        for token in [t for t, p in self._parked.items() if p.expires < now]:
            self._parked.pop(token).work.cancel()

    def _decorate(self, live: Live, method: str, result: rpc.JSONObject) -> rpc.JSONObject:
        # Lists are filtered per member (and behind the member's token): never shared.
        protocol.complete(result, method, LIST_TTL_MS)
        meta = result.get("_meta")
        stamp: rpc.JSONObject = {protocol.SERVER_INFO_KEY: server_info(live)}
        result["_meta"] = {**meta, **stamp} if isinstance(meta, dict) else stamp
        return result

    async def _result(self, live: Live, send: Send, id_: rpc.Id, method: str,
                      result: rpc.Message) -> None:
        await asgi.respond_json(send, 200, rpc.result(id_, self._decorate(live, method,
                                                                          result)))

    async def _error(self, send: Send, id_: rpc.Id, code: int, message: str,
                     data: rpc.JSONValue = None) -> None:
        await asgi.respond_json(send, protocol.HTTP_STATUS.get(code, 400),
                                rpc.error(id_, code, message, data))

    async def _unsupported(self, send: Send, id_: rpc.Id, version: str) -> None:
        await self._error(send, id_, protocol.UNSUPPORTED_VERSION, "Unsupported protocol version",
                          {"supported": list(protocol.MODERN_VERSIONS), "requested": version})

    # -- subscriptions/listen ------------------------------------------------------------

    async def _listen(self, live: Live, member: Member, receive: Receive, send: Send,
                      id_: rpc.Id, params: rpc.JSONObject) -> None:
        wanted = params.get("notifications")
        if not isinstance(wanted, dict):
            await self._error(send, id_, rpc.INVALID_PARAMS,
                              "Invalid params: subscriptions/listen needs notifications")
            return
        honored: rpc.JSONObject = {k: True for k in protocol.LIST_CHANGED.values()
                                  if wanted.get(k)}
        uris = wanted.get("resourceSubscriptions")
        meta: rpc.JSONObject = {protocol.SUBSCRIPTION_KEY: id_}
        session = self.runtime.sessions.open(live.config.name, member.name, member.key,
                                             protocol.MODERN_VERSIONS[-1], "listen")
        session.streams += 1
        if isinstance(uris, list) and uris:
            subscribed = [u for u in uris if isinstance(u, str)]
            honored["resourceSubscriptions"] = list(subscribed)
            for uri in subscribed:
                parts = naming.split_uri(uri)
                if (parts is None or parts[0] not in live.handles
                        or not access.member_may_use(member.config, uri)
                        or not _methods.offers_subscribe(live.handles[parts[0]])):
                    continue  # honored, and never fires, like a URI that does not exist
                with contextlib.suppress(errors.MCPyardError, TimeoutError, OSError):
                    await self.subscriptions.add(live.handles[parts[0]], parts[1], session)
        kinds = {m for m, k in protocol.LIST_CHANGED.items() if honored.get(k)}
        ack = rpc.notification("notifications/subscriptions/acknowledged",
                               {"notifications": honored, "_meta": meta})

        async def next_message() -> bytes | None:
            while True:
                data = await session.next()
                if data is None:
                    return orjson.dumps(rpc.result(id_, {"resultType": "complete",
                                                         "_meta": meta}))
                message = orjson.loads(data)
                method = message.get("method")
                if method in kinds or (method == "notifications/resources/updated"
                                       and "resourceSubscriptions" in honored):
                    params = message.get("params")
                    message["params"] = {**(params if isinstance(params, dict) else {}),
                                         "_meta": meta}
                    return orjson.dumps(message)

        try:
            await sse.serve(receive, send, sse.event(orjson.dumps(ack)), next_message)
        finally:
            session.streams -= 1
            await self.runtime.sessions.end(session)


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key == name:
            return value.decode("latin-1").strip(" \t")
    return None


def _param_headers(live: Live, member: Member, params: rpc.JSONObject,
                   headers: list[tuple[bytes, bytes]]) -> inbound.InboundLadderRejection | None:
    """``Mcp-Param-*`` headers of a tools/call checked against the tool's schema (the gateway
    is the server its client sees); the headers travel on untouched."""
    name = params.get("name")
    entry = live.table.by_key.get(name) if isinstance(name, str) else None
    if entry is None or name not in live.view(member.config).allowed:
        return None
    schema = entry.item.get("inputSchema")
    has_headers = any(k.startswith(b"mcp-param-") for k, _ in headers)
    if not has_headers and b"x-mcp-header" not in orjson.dumps(schema):
        return None
    arguments = params.get("arguments")
    folded = {k.decode("latin-1"): v.decode("latin-1").strip(" \t") for k, v in headers}
    return inbound.validate_mcp_param_headers(
        schema, arguments if isinstance(arguments, dict) else {}, folded)


def _param_headers_of(headers: list[tuple[bytes, bytes]]) -> dict[str, str] | None:
    """The request's ``Mcp-Param-*`` headers, as they came (for a 2026-07-28 upstream)."""
    out = {k.decode("latin-1"): v.decode("latin-1") for k, v in headers
           if k.startswith(b"mcp-param-")}
    return out or None
