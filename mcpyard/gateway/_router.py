"""The router: the one place that knows both sides, downstream sessions and upstream servers.

It works on parsed JSON-RPC messages (dicts) and returns messages; transports parse and encode.
A request walks down once: member (already authenticated) -> rate limits -> method -> tool
table -> access check -> upstream (under the tool's own name) -> result, untouched -> one
call record, which feeds both the call log and the metrics (so the outcome is decided here and
only here).

Results of calls and lists leave the router already encoded (``orjson.Fragment``): encoded
once, measured once for the record, and embedded as is when the transport encodes the reply.

Tools are answered here; the rest of the protocol (prompts, resources, templates, completion,
subscriptions, logging level) in ``_methods``. A request's ``way_back`` (``_relay.Reply``,
supplied by its transport) carries what the upstream sends before its answer: progress, log
messages and its own requests to the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

import orjson

from mcpyard import __version__, errors
from mcpyard.compiler import access, naming
from mcpyard.gateway import _catalog, _jsonrpc, _methods, _redact, _relay, _toolsearch
from mcpyard.gateway._runtime import Live, Runtime
from mcpyard.gateway.downstream import _auth
from mcpyard.gateway.downstream._auth import Member
from mcpyard.gateway.downstream._sessions import Session
from mcpyard.gateway.services import _limits, _metrics, _records, _tracing
from mcpyard.mcp import jsonrpc as rpc
from mcpyard.mcp import protocol

if TYPE_CHECKING:
    from mcpyard.gateway.oauth._service import OAuth

log = logging.getLogger("mcpyard.gateway")

SHUTTING_DOWN = "the gateway is shutting down: send the request again (another replica, or " \
    "this one once it is back)"
CUT = "the gateway shut down before this call finished: it was cancelled upstream at the end " \
    "of the shutdown grace period"
RECORDED = frozenset({"tools/call", "resources/read", "prompts/get", "tools/list",
                      "resources/list", "resources/templates/list", "prompts/list"})
"""Methods whose every request is kept in the call log; any other request is kept only when
it was refused or failed (a rate-limited ping, an unknown method). Metrics count them all."""


def initialize_result(live: Live, version: str) -> rpc.JSONObject:
    return {
        "protocolVersion": version,
        "capabilities": _methods.capabilities(live),
        "serverInfo": {"name": "mcpyard", "title": live.config.display_name,
                       "version": __version__},
    }


class _Call:
    """What the router learned while answering one request: the facts of its call record."""

    __slots__ = ("error", "outcome", "scope", "server", "target")

    def __init__(self) -> None:
        self.server: str | None = None
        self.target: str | None = None
        self.outcome: _records.Outcome = "ok"
        self.error: str | None = None
        self.scope: _limits.Scope | None = None

    def fail(self, outcome: _records.Outcome, error: str | None) -> None:
        self.outcome, self.error = outcome, error


_SERVED = frozenset({"prompts/get", "resources/read", "completion/complete"})
"""Methods of ``_methods`` that reach one upstream: the record names its server."""


_CLIENT_FAULTS = frozenset({rpc.INVALID_PARAMS, rpc.INVALID_REQUEST, rpc.METHOD_NOT_FOUND})


def client_capabilities(params: object) -> rpc.JSONObject:
    """What an initialize request says the client can answer."""
    caps = params.get("capabilities") if isinstance(params, dict) else None
    return caps if isinstance(caps, dict) else {}


def _failures(reason: str, count: int, address: str) -> str:
    return f"{reason}; {count} failed authentication{'s' if count > 1 else ''} from {address}"


def _target(method: str, params: object) -> str | None:
    """The tool, prompt or resource a request names, as the client sent it."""
    key = protocol.TARGET_FIELD.get(method)
    value = params.get(key) if key is not None and isinstance(params, dict) else None
    return value if isinstance(value, str) else None


class Router:
    """Answers requests; the limiter, the recorder, the metrics and the relays are the
    services it calls, each given to the constructor (the app's lifespan opens and closes
    those that hold connections, files or tasks)."""

    def __init__(self, runtime: Runtime, *, relays: _relay.Relays, page_size: int,
                 metrics: _metrics.Metrics, limiter: _limits.RateLimiter,
                 recorder: _records.Recorder | None, failures: _auth.Failures,
                 oauth: OAuth | None = None) -> None:
        self.runtime = runtime
        self.relays = relays
        self.page_size = page_size
        self.metrics = metrics
        self.limiter = limiter
        self.recorder = recorder
        """None when no call record is kept."""
        self.failures = failures
        """Failed authentications per client address."""
        self.oauth = oauth
        """The OAuth service when the workspaces take OAuth access tokens, else None."""
        self.draining = False
        """Set by :meth:`drain`: new requests are refused."""
        self.drain_seconds = 0.0
        self._cut = False
        self._inflight: set[asyncio.Task[object]] = set()
        self._idle = asyncio.Event()
        self.methods = _methods.Methods(runtime, page_size, relays)

    async def request(self, live: Live, member: Member, session: Session | None,
                      msg: rpc.Message, *, era: _records.Era, size: int = 0,
                      way_back: _relay.Reply | None = None,
                      finish: Callable[[rpc.JSONObject], rpc.JSONObject] | None = None
                      ) -> rpc.Response:
        """Answer one JSON-RPC request (``size``: its bytes on the wire, for the record),
        which its transport checked: a method and an id (``_invalid``, ``Modern.post``).

        ``finish`` completes a result before it is encoded (the 2026-07-28 transport adds
        ``resultType`` and its ``_meta``), so that a result is encoded once.

        Every request passes here once, ``initialize`` included (``session`` is None for an
        initialize on /mcp, which opens the session after this admitted it): it is counted
        against the member's limit, then the workspace's, and answered with a JSON-RPC
        :data:`_jsonrpc.RATE_LIMITED` error when refused (the transport turns that into HTTP 429).
        Initialize counts because it is work the client asks for like any other, and a client
        re-initializing in a loop must not escape its plan.
        """
        started, t0 = time.time(), time.perf_counter()
        method, id_ = cast(str, msg["method"]), cast(rpc.Id, msg["id"])  # the transport checked
        params = msg.get("params")
        call = _Call()
        call.target = _target(method, params)
        if self.draining:
            refusal = None
        else:
            with _tracing.span("mcpyard.limit"):
                refusal = await self.limiter.hit(live.config, member.config)
        if self.draining:
            call.fail("upstream_error", SHUTTING_DOWN)
            answer: rpc.Response = rpc.error(id_, rpc.UPSTREAM_UNAVAILABLE, SHUTTING_DOWN)
        elif refusal is not None:
            call.fail("rate_limited", refusal.message)
            call.scope = refusal.scope
            answer = _jsonrpc.rate_limited(id_, refusal)
        else:
            redactor = self.runtime.redactor
            if way_back is not None and redactor.size:
                way_back = _redact.Reply(way_back, redactor)
            task = asyncio.current_task()
            if task is not None:
                self._inflight.add(task)
            try:
                reply = await self._answer(live, member, session, method, id_, params, call,
                                           era, way_back)
            except asyncio.CancelledError:
                if not self._cut or task is None:
                    raise
                task.uncancel()  # cut by the drain: answered, not cancelled
                message = f"{CUT} ({self.drain_seconds:g} s)"
                call.fail("upstream_error", message)
                reply = rpc.error(id_, rpc.UPSTREAM_UNAVAILABLE, message)
            finally:
                if task is not None:
                    self._inflight.discard(task)
                    if not self._inflight:
                        self._idle.set()
            # What an upstream said may quote a key the gateway injected: blanked here, once,
            # for every era and transport (``_redact``).
            if finish is not None:
                result = reply.get("result")
                if isinstance(result, dict):
                    reply["result"] = finish(result)
            if method in RECORDED and "result" in reply:
                # The reply is the router's alone: its result becomes its encoding.
                encoded = cast(rpc.EncodedResponse, reply)
                encoded["result"] = orjson.Fragment(redactor.encode(reply["result"]))
                answer = encoded
            else:
                answer = redactor.message(reply)
        self._account(live, member, method, call, era, started, t0, size,
                      len(orjson.dumps(answer)))
        return answer

    async def drain(self, grace: float) -> None:
        """Shut down gracefully: refuse new requests, let those in flight finish for up to
        ``grace`` seconds, then answer the rest with a JSON-RPC error (each recorded)."""
        self.draining, self.drain_seconds = True, grace
        if self._inflight:
            log.info("shutting down: waiting up to %g s for %d call(s) in flight", grace,
                     len(self._inflight))
            self._idle.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), grace)
        if self._inflight:
            log.warning("shutting down: %d call(s) still running after %g s are answered "
                        "with an error", len(self._inflight), grace)
            self._cut = True
            for task in list(self._inflight):
                task.cancel()
            self._idle.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), 10)

    def throttled(self, live: Live, address: str) -> int | None:
        """Count a failed authentication from ``address``; the seconds of its 429 when the
        address is over its limit (:class:`_auth.Failures`), else None."""
        wait = self.failures.throttled(address)
        if wait is not None:
            self.metrics.auth_throttled(live.config.name)
        return wait

    def unauthorized(self, live: Live, *, method: str | None, era: _records.Era, size: int,
                     reason: str, address: str = "unknown") -> None:
        """Account a request refused with 401 or 429 (no member; the token is never looked
        at here): metrics count each, the call log gets them aggregated per client address
        (:meth:`_auth.Failures.due`), so that no one can grow it one request at a time.

        ``method`` is the JSON-RPC method when the body named one, else the HTTP method."""
        count = self.failures.due(live.config.name, address)
        call = _Call()
        call.fail("auth_failure", reason if count is None else _failures(reason, count,
                                                                         address))
        self._account(live, None, method or "other", call, era, time.time(),
                      time.perf_counter(), size, 0, keep=count is not None)

    def flush_failures(self) -> None:
        """Record the failed authentications folded and not yet recorded (at shutdown)."""
        for workspace, address, count in self.failures.drain():
            live = self.runtime.live.get(workspace)
            if live is not None and self.recorder is not None:
                call = _Call()
                call.fail("auth_failure", _failures("failed authentication", count, address))
                self._account(live, None, "other", call, "handshake", time.time(),
                              time.perf_counter(), 0, 0, observe=False)

    def refused(self, live: Live, member: Member, msg: object, *, era: _records.Era, size: int,
                message: str) -> rpc.Message:
        """Record a request the transport refused before it reached :meth:`request` (a body
        nested too deep); its JSON-RPC error, under the request's id when it has one."""
        msg = msg if isinstance(msg, dict) else {}
        method = msg.get("method")
        call = _Call()
        call.fail("invalid_request", message)
        reply = rpc.error(msg.get("id") if rpc.valid_id(msg.get("id")) else None,
                          rpc.INVALID_REQUEST, message)
        self._account(live, member, method if isinstance(method, str) else "other", call, era,
                      time.time(), time.perf_counter(), size, len(orjson.dumps(reply)))
        return reply

    def _account(self, live: Live, member: Member | None, method: str, call: _Call,
                 era: _records.Era, started: float, t0: float, request_bytes: int,
                 response_bytes: int, *, keep: bool = True, observe: bool = True) -> None:
        # A method name comes from the client: only the known ones are kept as they are, so
        # neither the log nor the metrics hold whatever a client chose to send there.
        known = method if method in _metrics.METHODS else "other"
        redactor = self.runtime.redactor
        record = _records.CallRecord(
            time=started, workspace=live.config.name,
            member=member.name if member is not None else None,
            user=member.config.user if member is not None else None,
            server=call.server, method=known,
            target=call.target if call.target is None else redactor.text(call.target),
            era=era, outcome=call.outcome,
            error=call.error if call.error is None else redactor.text(call.error),
            latency_ms=(time.perf_counter() - t0) * 1000.0, request_bytes=request_bytes,
            response_bytes=response_bytes, config_revision=live.config.revision,
            git_commit=live.commit, source_revision=live.config.source.revision
            if live.config.source is not None else None,
            oauth_client=member.client if member is not None else None,
            oauth_grant=member.grant if member is not None else None)
        if observe:
            self.metrics.observe(record, limit_scope=call.scope)
        if _tracing.ON:
            _tracing.annotate(record)
        if self.recorder is not None and keep and (known in RECORDED or call.outcome != "ok"):
            self.recorder.record(record)

    async def _answer(self, live: Live, member: Member, session: Session | None,
                      method: str, id_: rpc.Id, params: rpc.JSONValue, call: _Call,
                      era: _records.Era, way_back: _relay.Reply | None) -> rpc.Message:
        if method == "tools/call":
            assert session is not None, "only initialize comes without a session"
            return await self._call(live, member, session, id_, params, call, way_back)
        if method == "tools/list":
            return self._list(live, member, id_, params, call)
        if method == "ping":
            return rpc.result(id_, {})
        if method == "initialize":
            requested = params.get("protocolVersion") if isinstance(params, dict) else None
            if era == "legacy-sse" and session is not None:
                # The legacy transport opens its session with the stream, before initialize.
                session.protocol = protocol.negotiate(requested, protocol.SSE_VERSIONS)
                session.capabilities = client_capabilities(params)
                return rpc.result(id_, initialize_result(live, session.protocol))
            if session is None:
                return rpc.result(id_, initialize_result(
                    live, protocol.negotiate(requested, protocol.STREAMABLE_VERSIONS)))
            call.fail("invalid_request", "the session is already initialized")
            return rpc.error(id_, rpc.INVALID_REQUEST, "the session is already initialized")
        handler = self.methods.handlers.get(method)
        if handler is not None and session is not None:
            reply = await handler(live, member, session, id_, params, way_back)
            if method in _SERVED:
                call.server = self.methods.server_of(live, member, method, params)
            error = reply.get("error")
            if isinstance(error, dict):
                call.fail("invalid_request" if error.get("code") in _CLIENT_FAULTS
                          else "upstream_error", str(error.get("message")))
            return reply
        call.fail("invalid_request", f"Method not found: {method}")
        return rpc.error(id_, rpc.METHOD_NOT_FOUND, f"Method not found: {method}")

    async def notification(self, live: Live, member: Member, session: Session,
                           msg: rpc.Message) -> None:
        """A notification from the client. ``notifications/cancelled`` cancels the request it
        names (the upstream hears of it through the cancelled upstream call);
        ``notifications/roots/list_changed`` goes to every upstream session this session
        opened (the servers that may ask it for its roots); initialized needs nothing."""
        method = msg.get("method")
        params = msg.get("params")
        if method == "notifications/roots/list_changed":
            await asyncio.gather(*(h.notify(method, params if isinstance(params, dict)
                                            else None, session.owner)
                                   for h in list(session.used)))
            return
        if method != "notifications/cancelled":
            return
        rid = params.get("requestId") if isinstance(params, dict) else None
        if not rpc.valid_id(rid):
            return
        task = session.inflight.get(rid)
        if task is not None:
            session.inflight[rid] = None
            task.cancel()

    async def tracked(self, session: Session, id_: rpc.Id,
                      work: asyncio.Future[rpc.Response]) -> rpc.Response | None:
        """Await a request's answer; None when the client cancelled it (no answer is due)."""
        session.inflight[id_] = work  # type: ignore[assignment]
        try:
            return await work
        except asyncio.CancelledError:
            if work.cancelled() and session.inflight.get(id_, work) is None:
                return None
            raise
        finally:
            session.inflight.pop(id_, None)

    def _list(self, live: Live, member: Member, id_: rpc.Id, params: rpc.JSONValue,
              call: _Call) -> rpc.Message:
        cursor = params.get("cursor") if isinstance(params, dict) else None
        try:
            page = _catalog.page(_catalog.TOOLS, live.view(member.config), cursor,
                                 self.page_size)
        except errors.InvalidCursor:
            call.fail("invalid_request", "unknown cursor")
            return rpc.error(id_, rpc.INVALID_PARAMS, "Invalid params: unknown cursor")
        return rpc.result(id_, page)

    async def _call(self, live: Live, member: Member, session: Session, id_: rpc.Id,
                    params: rpc.JSONValue, call: _Call, way_back: _relay.Reply | None
                    ) -> rpc.Message:
        name = params.get("name") if isinstance(params, dict) else None
        if not isinstance(params, dict) or not isinstance(name, str):
            call.fail("invalid_request", "tools/call without a name")
            return rpc.error(id_, rpc.INVALID_PARAMS, "Invalid params: tools/call needs a name")
        if _toolsearch.handles(live, name):
            if name == _catalog.FIND_TOOLS_NAME:
                return await _toolsearch.find(live, live.view(member.config), id_,
                                              params.get("arguments"))
            unwrapped = _toolsearch.unwrap(id_, params)
            if "params" not in unwrapped:
                return unwrapped
            # unwrap built these: an object naming the tool with a string
            params = cast(rpc.JSONObject, unwrapped["params"])
            name = call.target = cast(str, params["name"])
        entry = live.table.by_key.get(name)
        if entry is None or name not in live.view(member.config).allowed:
            if entry is not None:
                # The client gets the same answer as for a tool that does not exist (a hidden
                # tool's existence is not revealed); the record says what happened.
                call.fail("denied", "denied by access rules")
                return rpc.error(id_, rpc.INVALID_PARAMS, f"Unknown tool: {name}")
            return self._unknown(live, member, id_, name, call)
        handle = live.handles[entry.slug]
        call.server = entry.slug
        forwarded = dict(params)
        forwarded["name"] = entry.original
        session.used.add(handle)
        try:
            with (_tracing.upstream_span(entry.slug, name) if _tracing.ON else _tracing.NOOP):
                result = await self.relays.call(handle, "tools/call", forwarded, session, way_back)
        except errors.UpstreamRPCError as exc:
            call.fail("upstream_error", exc.rpc_message)
            return rpc.error(id_, exc.code, exc.rpc_message, exc.data)
        except (errors.MCPyardError, TimeoutError, OSError) as exc:
            log.warning("member %s: %s failed: %s", member.key, name, exc)
            reply = _jsonrpc.error_from(id_, exc, slug=entry.slug)
            call.fail("upstream_error", rpc.error_text(reply))
            return reply
        if result.get("isError") is True:
            call.fail("tool_error", None)  # the tool's own words are a result: not recorded
        return rpc.result(id_, _catalog.tool_result(entry.slug, result))

    def _unknown(self, live: Live, member: Member, id_: rpc.Id, name: str,
                 call: _Call) -> rpc.Message:
        # A server that never listed its tools (down since start) cannot route by table; when
        # the name would be its tool and the member may use it, say that the server is down
        # rather than that the tool does not exist. The split only finds the server.
        parts = naming.split(name)
        if parts is not None:
            handle = live.handles.get(parts[0])
            if (handle is not None and handle.tools is None
                    and access.member_may_use(member.config, name)
                    and (len(name) == naming.MAX_NAME
                         or access.server_exposes(handle.server.tools, parts[1]))):
                # No `server` in the record: the call reached none, and the tool part of the
                # name is unchecked (it must not become a metrics label).
                call.fail("upstream_error", f"server {handle.slug} is unavailable")
                return rpc.error(id_, rpc.UPSTREAM_UNAVAILABLE,
                                 f"server {handle.slug} is unavailable: {handle.why_down}")
        call.fail("invalid_request", "no such tool")
        return rpc.error(id_, rpc.INVALID_PARAMS, f"Unknown tool: {name}")
