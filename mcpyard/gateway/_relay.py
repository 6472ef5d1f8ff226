"""What flows back to a client during its request: progress, log messages and the upstream's
own requests (sampling, elicitation, roots), plus resource-update subscriptions.

A :class:`Reply` is one downstream request's way back, supplied by its transport (the POST's
event stream, the legacy SSE stream, a modern response stream). :meth:`Relays.call` hands the
upstream client a per-request :class:`Relay` that delivers what the upstream sends before its
answer onto that Reply and nowhere else, so a second member never sees the first member's
server-to-client request. A progress token is replaced by a gateway-wide unique one on the
upstream hop (two clients' tokens never meet on a shared upstream session) and put back on the
way down. Log messages are filtered per downstream session: one client's level never changes
what another sees.

Nothing here runs for a request that carries no progress token and whose transport offers no
way back: a plain tools/call goes straight to the upstream.

A server may also ask outside any call (server-everything asks for the client's roots right
after initialize, on its standalone GET stream). Such a request on a member's upstream session
goes to :class:`Standing`, that session's client's own way back: its GET stream (handshake era)
or its SSE stream (HTTP+SSE). A 2026-07-28 client has no such stream (that revision removed
the GET stream; servers ask only inside results, as input requests): the request then joins
the client's one call in progress on that upstream, if there is exactly one, and is otherwise
refused with a JSON-RPC error. A request for a capability the client did not declare is
refused alike.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Protocol, cast

from mcpyard import errors
from mcpyard.compiler import naming
from mcpyard.mcp import jsonrpc as rpc
from mcpyard.mcp import protocol

if TYPE_CHECKING:
    from mcpyard.gateway._upstreams import Handle
    from mcpyard.gateway.downstream._sessions import Session

log = logging.getLogger("mcpyard.gateway")

LOG_LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")
MAX_INPUT_ROUNDS = 10


class Reply(Protocol):
    """One downstream request's way back to its client."""

    @property
    def log_level(self) -> int | None:
        """The lowest log level (index in LOG_LEVELS) the client wants; None: no logs."""
        ...

    @property
    def capabilities(self) -> rpc.JSONObject | None:
        """What the client can answer (declared at initialize, or in the request's _meta)."""
        ...

    @property
    def forward_headers(self) -> dict[str, str] | None:
        """Headers of the client's request that travel to the upstream as they are
        (Mcp-Param-*)."""
        ...

    @property
    def modern(self) -> bool:
        """A 2026-07-28 client: it gets input-required results, never requests."""
        ...

    def notify(self, message: rpc.JSONObject) -> None:
        """Send a notification to the client on this request's stream (best effort)."""
        ...

    def ask(self, method: str, params: rpc.JSONObject | None) -> Awaitable[rpc.JSONObject]:
        """Send a request to the client and wait for its JSON-RPC response message.

        Raises :class:`mcpyard.errors.CannotAsk` when this transport has no way to (a modern
        client, or a client that does not accept an event stream).
        """
        ...

    @property
    def standing(self) -> Reply:
        """The client session's own way back, outside any call (its GET or SSE stream)."""
        ...


class Relay:
    """What an upstream client calls back, for one request of one downstream client."""

    __slots__ = ("_calls", "_key", "capabilities", "client_token", "headers", "log_level_name",
                 "modern", "reply", "slug", "token")

    def __init__(self, reply: Reply, slug: str, client_token: rpc.JSONValue, token: str | None,
                 calls: dict[tuple[Handle, Session], list[Relay]] | None = None,
                 key: tuple[Handle, Session] | None = None) -> None:
        self.reply = reply
        self._calls = calls
        self._key = key
        self.slug = slug
        self.client_token = client_token
        self.token = token
        """The gateway's progress token for the upstream hop (None: the client sent none)."""
        # What a 2026-07-28 upstream reads from the envelope: the client's own capabilities,
        # the level it asked for, and its Mcp-Param-* headers.
        self.capabilities = reply.capabilities
        self.headers = reply.forward_headers
        self.modern = reply.modern
        """A 2026-07-28 client: the upstream's input-required results reach it as they are."""
        level = reply.log_level
        self.log_level_name = LOG_LEVELS[level] if level is not None else None

    def notify(self, message: rpc.JSONObject) -> None:
        """A notification the upstream sent while working on this request."""
        method = message.get("method")
        params = message.get("params")
        if method == "notifications/progress":
            if self.token is None or not isinstance(params, dict) \
                    or params.get("progressToken") != self.token:
                return
            self.reply.notify({**message, "params": {**params,
                                                     "progressToken": self.client_token}})
        elif method == "notifications/message":
            if self.reply.log_level is None or not isinstance(params, dict):
                return
            if _rank(params.get("level")) >= self.reply.log_level:
                self.reply.notify(message)

    @property
    def standing(self) -> Standing | None:
        """Where the upstream session this call opens sends what it asks outside any call
        (made when the upstream client opens one: most calls never ask)."""
        if self._calls is None or self._key is None:
            return None
        return Standing(self.reply.standing, self.capabilities, self._calls, self._key)

    async def ask(self, message: rpc.JSONObject) -> rpc.Message:
        """A request the upstream sent while working on this request; returns the response
        message to send back to the upstream (with the upstream's own id)."""
        refusal = _refusal(message)
        if refusal is not None:
            return refusal
        try:
            return _response(message, await _ask(self.reply, message))
        except errors.CannotAsk as exc:
            return _cannot(message, exc)


class Standing:
    """What a member's upstream session asks outside any call, for the downstream session
    that opened it (see the module docstring); the upstream client reads it on that session's
    GET stream."""

    __slots__ = ("_calls", "_key", "capabilities", "reply")

    def __init__(self, reply: Reply, capabilities: rpc.JSONObject | None,
                 calls: dict[tuple[Handle, Session], list[Relay]],
                 key: tuple[Handle, Session]) -> None:
        self.reply = reply
        """The session's own way back (a call's ``Reply.standing``: no call's response is
        kept alive by it)."""
        self.capabilities = capabilities
        """What the upstream session was told the client can answer."""
        self._calls = calls
        self._key = key

    def notify(self, message: rpc.JSONObject) -> None:
        """A log message outside any call goes to the session at the level it asked for;
        progress outside a call belongs to no request."""
        params = message.get("params")
        if message.get("method") != "notifications/message" or not isinstance(params, dict):
            return
        level = self.reply.log_level
        if level is not None and _rank(params.get("level")) >= level:
            self.reply.notify(message)

    async def ask(self, message: rpc.JSONObject) -> rpc.Message:
        """The response to send the upstream (with its own id)."""
        refusal = _refusal(message)
        if refusal is not None:
            return refusal
        method = cast(str, message["method"])  # _refusal found it in SERVER_REQUESTS
        capability = protocol.CAPABILITY_OF[method]
        if capability not in (self.capabilities or {}):
            return rpc.error(_id(message), rpc.METHOD_NOT_FOUND,
                             f"the client did not declare the {capability} capability")
        try:
            return _response(message, await _ask(self.reply, message))
        except errors.CannotAsk as exc:
            refused = exc
        # The session has no stream of its own (a 2026-07-28 client): the client's one call
        # in progress on this upstream carries the question (as an input request).
        calls = self._calls.get(self._key, ())
        if len(calls) != 1:
            return _cannot(message, refused)
        return await calls[0].ask(message)


def _rank(level: object) -> int:
    return LOG_LEVELS.index(level) if level in LOG_LEVELS else len(LOG_LEVELS) - 1


def _id(message: rpc.JSONObject) -> rpc.Id:
    # The upstream's own id, echoed as it came (unchecked: the upstream matches it).
    return cast(rpc.Id, message.get("id"))


def _refusal(message: rpc.JSONObject) -> rpc.Message | None:
    """The gateway's own answer to a server request it does not relay (ping, unknown)."""
    method = message.get("method")
    if method == "ping":
        return {"jsonrpc": "2.0", "id": message.get("id"), "result": {}}
    if method not in protocol.SERVER_REQUESTS:
        return rpc.error(_id(message), rpc.METHOD_NOT_FOUND, f"Method not found: {method}")
    return None


def _ask(reply: Reply, message: rpc.JSONObject) -> Awaitable[rpc.JSONObject]:
    params = message.get("params")
    # Only after _refusal: the method is one of SERVER_REQUESTS.
    return reply.ask(cast(str, message["method"]), params if isinstance(params, dict) else None)


def _response(message: rpc.JSONObject, answer: rpc.JSONObject) -> rpc.Message:
    """The client's answer as the response to the upstream's request (with its id)."""
    rid = _id(message)
    out = {k: v for k, v in answer.items() if k in ("result", "error")}
    if not out:
        return rpc.error(rid, rpc.INTERNAL_ERROR, "the client sent a malformed answer")
    return {"jsonrpc": "2.0", "id": rid, **out}


def _cannot(message: rpc.JSONObject, exc: errors.CannotAsk) -> rpc.Message:
    return rpc.error(_id(message), rpc.METHOD_NOT_FOUND,
                     str(exc) or f"the client cannot answer {message.get('method')} now")


class Relays:
    """The ways back of the requests in flight, and the resource subscriptions: where an
    upstream notification outside any request goes (:meth:`on_notification`, the runtime's
    hook). One per gateway; progress tokens are unique within it."""

    def __init__(self) -> None:
        self._tokens = itertools.count(1)
        self._by_token: dict[str, Relay] = {}
        self._calls: dict[tuple[Handle, Session], list[Relay]] = {}
        """The relayed calls in progress, by (upstream, downstream session): where a question
        outside any call goes when the session has no stream of its own."""
        self.subscriptions = Subscriptions()

    async def call(self, handle: Handle, method: str, params: rpc.JSONObject,
                   session: Session, reply: Reply | None) -> rpc.JSONObject:
        """``method`` on ``handle`` for ``session``, relaying what comes back before the
        answer."""
        if reply is None:
            return await handle.request(method, params, session.owner,
                                        handle.server.timeout_seconds)
        meta = params.get("_meta")
        if not isinstance(meta, dict):
            meta = {}
        client_token = meta.get("progressToken")
        token = f"mcpyard-{next(self._tokens)}" if client_token is not None else None
        key = (handle, session)
        relay = Relay(reply, handle.slug, client_token, token, self._calls, key)
        if token is not None:
            params = {**params, "_meta": {**meta, "progressToken": token}}
            # Progress an upstream client cannot attribute to a request (several in flight on
            # one stdio process) still finds its way here by the token.
            self._by_token[token] = relay
        calls = self._calls.setdefault(key, [])
        calls.append(relay)
        try:
            return await _input_rounds(handle, method, params, session, reply, relay)
        finally:
            if token is not None:
                del self._by_token[token]
            calls.remove(relay)
            if not calls and self._calls.get(key) is calls:
                del self._calls[key]

    def on_notification(self, handle: Handle, message: rpc.JSONObject) -> None:
        """An upstream notification the runtime does not handle itself: a resource update
        goes to the sessions subscribed, progress to the request that carries its token."""
        method = message.get("method")
        if method == "notifications/resources/updated":
            self.subscriptions.updated(handle, message)
        elif method == "notifications/progress":
            params = message.get("params")
            token = params.get("progressToken") if isinstance(params, dict) else None
            relay = self._by_token.get(token) if isinstance(token, str) else None
            if relay is not None:
                relay.notify(message)


async def _input_rounds(handle: Handle, method: str, params: rpc.JSONObject,
                        session: Session, reply: Reply, relay: Relay) -> rpc.JSONObject:
    result = await handle.request(method, params, session.owner,
                                  handle.server.timeout_seconds, relay=relay)
    rounds = 0
    while result.get("resultType") == "input_required" and not reply.modern:
        # A 2026-07-28 upstream wants input; a handshake-era client answers requests:
        # ask it each one, then send the call again with the answers and the state.
        rounds += 1
        if rounds > MAX_INPUT_ROUNDS:
            raise errors.UpstreamError(f"{handle.slug}: asked for input {rounds} times")
        params = {**params, "inputResponses": await _answers(reply, result)}
        if "requestState" in result:
            params["requestState"] = result["requestState"]
        else:
            params.pop("requestState", None)
        result = await handle.request(method, params, session.owner,
                                      handle.server.timeout_seconds, relay=relay)
    return result


async def _answers(reply: Reply, result: rpc.JSONObject) -> rpc.JSONObject:
    """The client's answers to an input-required result's requests, by key."""
    requests = result.get("inputRequests")
    out: rpc.JSONObject = {}
    if not isinstance(requests, dict):
        return out
    for key, request in requests.items():
        method = request.get("method") if isinstance(request, dict) else None
        if not isinstance(request, dict) or not isinstance(method, str) \
                or method not in protocol.SERVER_REQUESTS:
            continue
        params = request.get("params")
        try:
            answer = await reply.ask(method, params if isinstance(params, dict) else None)
        except errors.CannotAsk:
            continue  # left out: the upstream asks again or gives up
        if isinstance(answer.get("result"), dict):
            out[key] = answer["result"]
    return out


class Subscriptions:
    """Resource subscriptions: one upstream subscription per (server, URI), many sessions.

    The upstream subscription lives on the gateway's own upstream session (whose notification
    stream the gateway keeps open); each update goes to every downstream session subscribed,
    under the workspace URI. A session that ends leaves its subscriptions.
    """

    def __init__(self) -> None:
        self._subs: dict[tuple[Handle, str], set[Session]] = {}
        self._lock = asyncio.Lock()

    async def add(self, handle: Handle, uri: str, session: Session) -> None:
        key = (handle, uri)
        async with self._lock:
            sessions = self._subs.get(key)
            if sessions is None:
                await handle.request("resources/subscribe", {"uri": uri}, None,
                                     handle.server.timeout_seconds)
                sessions = self._subs[key] = set()
            sessions.add(session)
            session.finalizers.append(lambda: self.remove(handle, uri, session))

    async def remove(self, handle: Handle, uri: str, session: Session) -> None:
        key = (handle, uri)
        async with self._lock:
            sessions = self._subs.get(key)
            if sessions is None or session not in sessions:
                return
            sessions.discard(session)
            if sessions:
                return
            del self._subs[key]
        try:
            await handle.request("resources/unsubscribe", {"uri": uri}, None,
                                 handle.server.timeout_seconds)
        except Exception as exc:  # best effort: the upstream keeps sending, the gateway drops
            log.debug("server %s: resources/unsubscribe failed: %s", handle.slug, exc)

    def updated(self, handle: Handle, message: rpc.JSONObject) -> None:
        params = message.get("params")
        uri = params.get("uri") if isinstance(params, dict) else None
        if not isinstance(params, dict) or not isinstance(uri, str):
            return
        sessions = self._subs.get((handle, uri))
        if not sessions:
            return
        note = {**message, "params": {**params, "uri": naming.resource_uri(handle.slug, uri)}}
        for session in list(sessions):
            session.push(note)
