"""The streamable HTTP client (MCP 2025-03-26 .. 2025-11-25 handshake era), on aiohttp.

One pooled ``aiohttp.ClientSession`` per upstream carries every owner's MCP session. An owner's
first request runs ``initialize`` + ``notifications/initialized`` once (concurrent first requests
share it); afterwards each request carries ``Mcp-Session-Id`` and ``MCP-Protocol-Version``. An
HTTP 404 on a request that carried a session id means the session expired: the owner's session
is re-initialized and the request sent once more. A server that issues no session id keeps no
state per client, so one initialization serves every owner.

A response is ``application/json`` or ``text/event-stream``; on a stream, messages before ours
are notifications (queued for ``on_notification``) or server requests (answered by POST). The
gateway's own session (owner None) keeps the server's GET stream open in the background for
notifications such as ``notifications/tools/list_changed``.

The hot path is kept lean on purpose (measured: see the package docstring): one dict lookup for
the session, one ``orjson.dumps``, one POST, one ``orjson.loads``; headers are built once per
session and copied only when secrets are injected.

With a ``command`` (a hosted server the gateway spawns under a ``Supervisor``), requests first
wait, within their timeout, for the process's port to accept connections, and a process exit
drops every session (they died with it).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from yarl import URL

from mcpyard import errors
from mcpyard.compiler.config import ServerConfig
from mcpyard.gateway.upstream import _process, _wire
from mcpyard.gateway.upstream._base import (
    NotificationHandler,
    Owner,
    Relay,
    SecretSource,
    UpstreamRPCError,
)
from mcpyard.gateway.upstream._common import UpstreamBase, log
from mcpyard.mcp import jsonrpc, process, protocol, sse

POOL_LIMIT = 100
"""Connections per upstream (in-flight requests plus the GET stream)."""
KEEPALIVE = 4.0
"""Below the idle timeout of common servers (uvicorn and Node close at 5 s), so a pooled
connection is never reused just as the server closes it: a POST is not retried."""
CLEANUP_TIMEOUT = 5.0
LISTEN_BACKOFF_MAX = 30.0

_REPEATABLE = frozenset(
    {
        "ping",
        "tools/list",
        "prompts/list",
        "prompts/get",
        "resources/list",
        "resources/templates/list",
        "resources/read",
        "completion/complete",
    }
)
"""Methods that change nothing upstream, so sending one twice is harmless."""

_SUBSCRIPTION_METHODS = frozenset({"resources/subscribe", "resources/unsubscribe"})
"""Handshake-era methods that a 2026-07-28 server serves as its listen stream's filter."""

_JSON = "application/json"
_SSE = "text/event-stream"
_BASE = {"Content-Type": _JSON, "Accept": f"{_JSON}, {_SSE}"}


class _Session:
    """One MCP session on the upstream: its id, version, and ready-made headers.

    A ``modern`` one (2026-07-28) is no session at all: the server keeps nothing between
    requests, every request carries the version and the client's capabilities itself.
    """

    __slots__ = ("get_headers", "headers", "id", "modern", "version")

    def __init__(self, session_id: str | None, version: str, modern: bool = False) -> None:
        self.id = session_id
        self.version = version
        self.modern = modern
        self.headers = {**_BASE, "MCP-Protocol-Version": version}
        if session_id is not None:
            self.headers["Mcp-Session-Id"] = session_id
        self.get_headers = {k: v for k, v in self.headers.items() if k != "Content-Type"}
        self.get_headers["Accept"] = _SSE


class _Expired(Exception):
    """HTTP 404 on a request that carried a session id."""


class _Refused(Exception):
    """The server refused initialize (a 4xx or a JSON-RPC error): not of the handshake era."""

    def __init__(self, error: errors.UpstreamError) -> None:
        self.error = error


class _Unreachable(Exception):
    """A spawned server refused the connection: it is (re)starting."""

    def __init__(self, error: errors.UpstreamError) -> None:
        self.error = error


class StreamableHTTPUpstream(UpstreamBase):
    def __init__(
        self,
        server: ServerConfig,
        *,
        secrets: SecretSource,
        on_notification: NotificationHandler,
        workdir: Path | None = None,
    ) -> None:
        super().__init__(server, secrets=secrets, on_notification=on_notification)
        if not server.url:
            raise ValueError(f"{server.slug}: a streamable-http server needs a url")
        self._url = URL(server.url)
        self._where = _wire.where(self._url)
        self._supervisor: process.Supervisor | None = None
        if server.command:
            self._supervisor = _process.supervisor(
                server,
                secrets=secrets,
                workdir=workdir,
                stdio=False,
                on_spawn=self._spawned,
                on_exit=self._process_exited,
                on_error=self._fail,
            )
        self._http: aiohttp.ClientSession | None = None
        self._retired: list[aiohttp.ClientSession] = []
        self._sessions: dict[Owner | None, _Session] = {}
        self._shared: _Session | None = None
        """The one session of a server that issued no session id (stateless)."""
        self._ids = itertools.count(1)
        self._listener: asyncio.Task[None] | None = None
        self._port_open = False
        self.listening = asyncio.Event()
        """Set while the gateway session's GET stream is open (tests wait on it)."""
        self.share_stateless = True
        """One initialization for every owner when the server issues no session id."""
        self._era: str | None = None
        """``modern`` or ``handshake`` once the server answered; None: decide again (see
        ``_handshake``)."""
        self._watched: set[str] = set()
        """Resource URIs the gateway subscribed to on a 2026-07-28 server (the filter of its
        ``subscriptions/listen`` stream)."""

    @property
    def era(self) -> str | None:
        """Which protocol era the server is spoken to in (None until it was asked)."""
        return self._era

    @property
    def protocol_version(self) -> str | None:
        if self._era == "modern":
            return protocol.MODERN_VERSION
        session = self._sessions.get(None) or self._shared
        return session.version if session is not None else None

    # -- the contract ----------------------------------------------------------------------

    async def start(self) -> None:
        if self._closed:
            return
        if self._supervisor is not None:
            self._supervisor.start()
        limit = self.server.timeout_seconds
        try:
            async with asyncio.timeout(limit):
                if self._supervisor is not None:
                    await self._wait_for_port()
                await self._session_for(None)
        except TimeoutError:
            what = "the port to open" if not self._port_open else "initialize"
            self._fail(f"{self._slug}: no answer after {limit:g}s (waiting for {what})")
        except errors.UpstreamError:
            pass  # recorded in last_error

    async def notify(
        self, method: str, params: dict[str, Any] | None, *, owner: Owner | None
    ) -> None:
        session = self._shared or self._sessions.get(owner)
        if session is None or session.modern:
            return  # no session, nothing it could be about; 2026-07-28 has no notifications
        limit = self.server.timeout_seconds
        try:
            async with asyncio.timeout(limit):
                await self._post_notification(session, _wire.notification(method, params))
        except TimeoutError:
            raise self._timed_out(limit) from None
        except _Expired:
            self._forget(owner, session)

    async def release(self, owner: Owner) -> None:
        session = self._sessions.pop(owner, None)
        if session is not None and session.id is not None:
            await self._delete(session)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._cancel_tasks()
        sessions = [s for s in self._sessions.values() if s.id is not None]
        self._sessions.clear()
        self._shared = None
        if self._http is not None and sessions:
            await asyncio.gather(*(self._delete(s) for s in sessions))
        pools, self._retired = [*self._retired, self._http], []
        self._http = None
        for pool in pools:
            if pool is not None:
                await pool.close()
        if self._supervisor is not None:
            await self._supervisor.close()
        self._set_closed()

    # -- requests --------------------------------------------------------------------------

    async def _send(
        self,
        method: str,
        params: dict[str, Any] | None,
        owner: Owner | None,
        relay: Relay | None = None,
    ) -> dict[str, Any]:
        if not self._port_open and self._supervisor is not None:
            await self._wait_for_port()
        rid = next(self._ids)
        body = _wire.request(rid, method, params)
        repeatable = method in _REPEATABLE
        try:
            message = await self._exchange(owner, body, rid, repeatable, relay, method, params)
        except _Unreachable:
            # A spawned server that is restarting (it refused the connection, so the request
            # never reached it): wait for its port within the caller's timeout, then retry.
            self._port_open = False
            await self._wait_for_port()
            try:
                message = await self._exchange(
                    owner, body, rid, repeatable, relay, method, params
                )
            except _Unreachable as again:
                raise again.error from None
        if not self._healthy:
            self._ok()
        return message

    async def _exchange(
        self,
        owner: Owner | None,
        body: bytes,
        rid: int,
        repeatable: bool,
        relay: Relay | None = None,
        method: str = "",
        params: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """POST on the owner's session; an expired session is re-initialized once."""
        caps = getattr(relay, "capabilities", None)
        session = (self._shared or self._sessions.get(owner)
                   or await self._session_for(owner, caps))
        if session.modern and method in _SUBSCRIPTION_METHODS:
            return await self._watch(rid, method, params)
        if session.modern:
            return await self._post_modern(session, owner, rid, repeatable, relay, method, params)
        try:
            return await self._post(session, body, rid, repeatable, relay)
        except _Expired:
            self._forget(owner, session)
            session = await self._session_for(owner, caps)
            if session.modern:
                return await self._post_modern(
                    session, owner, rid, repeatable, relay, method, params
                )
            try:
                return await self._post(session, body, rid, repeatable, relay)
            except _Expired:
                raise errors.UpstreamError(
                    f"{self._slug}: the upstream forgot a session it had just created"
                ) from None

    async def _post(
        self,
        session: _Session,
        body: bytes,
        rid: int,
        repeatable: bool = False,
        relay: Relay | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """POST one request and return the response message that carries ``rid``."""
        headers = self._headers(headers or session.headers)
        for attempt in (1, 2):
            http = self._http or self._open_http()
            try:
                async with http.post(self._url, data=body, headers=headers) as resp:
                    if resp.status == 200:
                        ctype = resp.headers.get("Content-Type", "")
                        if ctype.startswith(_JSON):
                            return self._parse_json(await resp.read(), rid)
                        if ctype.startswith(_SSE):
                            return await self._read_stream(resp, rid, session, relay)
                        raise errors.UpstreamError(
                            f"{self._slug}: unexpected response type {_wire.clip(ctype)!r}"
                        )
                    if resp.status == 404 and session.id is not None:
                        raise _Expired
                    raise await self._refusal(resp)
            except asyncio.CancelledError:
                # A timeout or a caller that gave up: tell the server to stop (best effort).
                self._spawn(self._cancel(session, rid), "cancel")
                raise
            except aiohttp.ClientConnectorError as exc:
                if self._supervisor is not None:
                    raise _Unreachable(self._broken(exc)) from None
                raise self._broken(exc) from None
            except (aiohttp.ClientError, OSError) as exc:
                # A connection that broke under us most likely means the server restarted, and
                # its other pooled connections are dead too: new requests get a fresh pool.
                self._renew_pool()
                if attempt == 1 and repeatable and isinstance(exc, aiohttp.ServerDisconnectedError):
                    # Closed before any answer, as a pooled connection the server had just
                    # dropped is: a request that changes nothing is sent again. A tools/call
                    # is not, as the server may have started on it.
                    continue
                raise self._broken(exc) from None
        raise AssertionError("unreachable")

    async def _post_modern(
        self,
        session: _Session,
        owner: Owner | None,
        rid: int,
        repeatable: bool,
        relay: Relay | None,
        method: str,
        params: dict[str, Any] | None,
    ) -> dict[str, Any]:
        """A 2026-07-28 request: the envelope in ``_meta``, mirrored in the routing headers.

        ``Mcp-Name`` is computed from the params as they leave (the upstream's own tool name or
        URI), so it always matches the body the upstream reads; the client's ``Mcp-Param-*``
        headers travel untouched. A server that no longer speaks this era (it answers with
        an unsupported-version or unknown-method error to what it served before) makes the
        next request probe again.
        """
        body, headers = _wire.modern_request(rid, method, params, relay)
        try:
            message = await self._post(session, body, rid, repeatable, relay, headers)
        except UpstreamRPCError as exc:
            if exc.code in (protocol.UNSUPPORTED_VERSION, protocol.HEADER_MISMATCH):
                self._forget(owner, session)
                self._era = None
            raise
        error = message.get("error")
        if type(error) is dict and error.get("code") == protocol.UNSUPPORTED_VERSION:
            self._forget(owner, session)
            self._era = None
        return message

    def _parse_json(self, raw: bytes, rid: int) -> dict[str, Any]:
        try:
            message = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise errors.UpstreamError(f"{self._slug}: the upstream sent invalid JSON") from None
        if type(message) is list:  # a batch: pick ours
            message = next((m for m in message if type(m) is dict and m.get("id") == rid), None)
        if type(message) is not dict:
            raise errors.UpstreamError(f"{self._slug}: the upstream sent a malformed response")
        return message

    async def _read_stream(
        self,
        resp: aiohttp.ClientResponse,
        rid: int,
        session: _Session,
        relay: Relay | None = None,
    ) -> dict[str, Any]:
        """Read an SSE response up to the message carrying ``rid``; pass the others on.

        Messages seen before the response concern this request: with a ``relay`` they go to
        it (notifications as they come, requests answered by the downstream client).
        """
        async with contextlib.aclosing(sse.messages(resp.content.iter_any())) as messages:
            async for message in messages:
                if message.get("id") == rid and jsonrpc.is_response(message):
                    return message
                if relay is None or "method" not in message:
                    self._incoming(message, session)
                elif "id" in message:
                    self._spawn(self._relay_request(session, message, relay), "relay")
                else:
                    self._incoming_notification(message, relay)
        raise errors.UpstreamError(f"{self._slug}: the upstream ended the stream without answering")

    def _incoming(self, message: dict[str, Any], session: _Session) -> None:
        """A message that is not our response: a notification or a server request."""
        if "method" not in message:
            log.debug("%s: ignored a response nobody waits for", self._slug)
        elif "id" in message:
            owner = next((o for o, s in self._sessions.items() if s is session), None)
            self._spawn(self._reply(session, self._answer(message, owner)), "reply")
        else:
            self._notify(message)

    async def _reply(self, session: _Session, body: bytes) -> None:
        try:
            async with asyncio.timeout(CLEANUP_TIMEOUT):
                await self._post_notification(session, body)
        except (errors.UpstreamError, _Expired, TimeoutError) as exc:
            log.debug("%s: could not answer a server request: %s", self._slug, type(exc).__name__)

    async def _relay_request(
        self, session: _Session, message: dict[str, Any], relay: Relay
    ) -> None:
        await self._reply(session, await self._relayed_answer(message, relay))

    async def _cancel(self, session: _Session, rid: int) -> None:
        body = _wire.cancelled(rid, "the gateway's client cancelled")
        await self._reply(session, body)

    async def _post_notification(self, session: _Session, body: bytes) -> None:
        """POST a notification or a response (the server answers 202 Accepted)."""
        http = self._http or self._open_http()
        headers = self._headers(session.headers)
        try:
            async with http.post(self._url, data=body, headers=headers) as resp:
                if resp.status in (200, 202, 204):
                    return
                if resp.status == 404 and session.id is not None:
                    raise _Expired
                raise await self._refusal(resp)
        except (aiohttp.ClientError, OSError) as exc:
            raise self._broken(exc) from None

    async def _delete(self, session: _Session) -> None:
        """End a session upstream; best effort (the server may answer 405, or be gone)."""
        http = self._http
        if http is None:
            return
        try:
            async with asyncio.timeout(CLEANUP_TIMEOUT):
                headers = self._headers(session.get_headers)
                async with http.delete(self._url, headers=headers) as resp:
                    log.debug("%s: DELETE session: HTTP %d", self._slug, resp.status)
        except (aiohttp.ClientError, OSError, TimeoutError, errors.UpstreamError) as exc:
            log.debug("%s: DELETE session failed: %s", self._slug, type(exc).__name__)

    # -- sessions --------------------------------------------------------------------------

    async def _session_for(
        self, owner: Owner | None, caps: dict[str, Any] | None = None
    ) -> _Session:
        """The owner's session; a new one declares ``caps``, what the owner's client can
        answer (the server may ask it only that)."""
        self._check_open()
        session = self._shared or self._sessions.get(owner)
        if session is not None:
            return session
        return await self._single(owner, lambda: self._initialize(owner, caps))

    def _forget(self, owner: Owner | None, session: _Session) -> None:
        if self._sessions.get(owner) is session:
            del self._sessions[owner]
        if self._shared is session:
            self._shared = None

    async def _initialize(self, owner: Owner | None, caps: dict[str, Any] | None) -> _Session:
        limit = self.server.timeout_seconds
        try:
            async with asyncio.timeout(limit):
                # The gateway's own session (discovery) declares what clients may answer, so a
                # server lists the tools it offers only to such clients (they are relayed).
                session = await self._handshake(
                    caps if owner is not None else _wire.RELAYED_CAPABILITIES)
        except TimeoutError:
            error = errors.UpstreamError(f"{self._slug}: no answer to initialize after {limit:g}s")
            self._fail(str(error))
            raise error from None
        except UpstreamRPCError as exc:
            error = errors.UpstreamError(
                f"{self._slug}: initialize refused: {_wire.clip(exc.rpc_message)}"
            )
            self._fail(str(error))
            raise error from None
        except errors.UpstreamError as exc:
            self._fail(str(exc))
            raise
        if session.id is None and self.share_stateless:
            # No session id: the server keeps no state per client, so there is nothing one
            # owner could leak to another; one handshake serves them all.
            self._shared = session
        else:
            self._sessions[owner] = session
        listener = self._listener
        if owner is None and session.id is not None and (listener is None or listener.done()):
            self._listener = self._spawn(self._listen(), "GET stream")
        elif session.modern and (listener is None or listener.done()):
            self._listener = self._spawn(self._listen_modern(), "subscriptions/listen")
        self._ok()
        return session

    async def _handshake(self, caps: dict[str, Any] | None) -> _Session:
        """A new session, in the era ``server.protocol_era`` decides.

        ``auto``: ``initialize`` first, since a server that serves both eras has a back-channel
        only in the handshake era, and a tool that asks its client through it fails in
        2026-07-28; input-required results (the other style) are translated for clients of
        either era anyway. A server that refuses initialize (4xx, JSON-RPC error) and answers
        ``server/discover`` is of the 2026-07-28 era only. ``handshake`` / ``modern``: that era,
        without probing the other (the operator's override).
        """
        policy = self.server.protocol_era
        if policy == "modern" or (policy == "auto" and self._era == "modern"):
            modern = await self._discover()
            if modern is not None:
                self._era = "modern"
                return modern
            if policy == "modern":
                raise errors.UpstreamError(
                    f"{self._slug}: protocolEra is modern, but the server does not serve "
                    f"{protocol.MODERN_VERSION} (server/discover)")
        try:
            session = await self._initialize_handshake(caps)
        except _Refused as refused:
            if policy != "auto":
                raise refused.error from None
            # A server that refuses initialize may be one of the 2026-07-28 era only.
            modern = await self._discover()
            if modern is None:
                raise refused.error from None
            self._era = "modern"
            return modern
        self._era = "handshake"
        return session

    async def _initialize_handshake(self, caps: dict[str, Any] | None) -> _Session:
        http = self._http or self._open_http()
        rid = next(self._ids)
        params = _wire.initialize_params(protocol.LATEST_HANDSHAKE, caps)
        body = _wire.request(rid, "initialize", params)
        bare = _Session(None, protocol.LATEST_HANDSHAKE)
        headers = self._headers(_BASE)
        try:
            async with http.post(self._url, data=body, headers=headers) as resp:
                if resp.status != 200:
                    error = await self._refusal(resp)
                    if 400 <= resp.status < 500 and resp.status not in (401, 403):
                        raise _Refused(error)
                    raise error
                session_id = resp.headers.get("Mcp-Session-Id")
                ctype = resp.headers.get("Content-Type", "")
                if ctype.startswith(_SSE):
                    message = await self._read_stream(resp, rid, bare)
                else:
                    message = self._parse_json(await resp.read(), rid)
        except (aiohttp.ClientError, OSError) as exc:
            raise self._broken(exc) from None
        try:
            result = _wire.result_of(message, self._slug)
        except UpstreamRPCError as exc:
            raise _Refused(exc) from None
        self._learn(result)
        version = result.get("protocolVersion")
        session = _Session(session_id, version if isinstance(version, str) else bare.version)
        try:
            await self._post_notification(session, _wire.INITIALIZED)
        except _Expired:
            raise errors.UpstreamError(
                f"{self._slug}: the upstream forgot a session it had just created"
            ) from None
        return session

    async def _discover(self) -> _Session | None:
        """Probe ``server/discover``: a modern session when the server speaks 2026-07-28.

        Anything but a discover result naming that version (an error, 4xx, a result without
        it) means the handshake era, as the official clients decide; a broken connection is
        no answer and raises.
        """
        http = self._http or self._open_http()
        rid = next(self._ids)
        body, headers = _wire.modern_request(rid, "server/discover", None, None)
        try:
            async with http.post(self._url, data=body, headers=self._headers(headers)) as resp:
                if resp.status != 200:
                    return None
                ctype = resp.headers.get("Content-Type", "")
                bare = _Session(None, protocol.MODERN_VERSION, modern=True)
                if ctype.startswith(_SSE):
                    message = await self._read_stream(resp, rid, bare)
                elif ctype.startswith(_JSON):
                    message = self._parse_json(await resp.read(), rid)
                else:
                    return None
        except (aiohttp.ClientError, OSError) as exc:
            raise self._broken(exc) from None
        result = message.get("result")
        versions = result.get("supportedVersions") if type(result) is dict else None
        if not isinstance(versions, list) or protocol.MODERN_VERSION not in versions:
            return None
        self._learn(result)  # type: ignore[arg-type]
        return bare

    async def _watch(
        self, rid: int, method: str, params: dict[str, Any] | None
    ) -> dict[str, Any]:
        """resources/(un)subscribe on a 2026-07-28 server: the listen stream is opened again
        with the new set of URIs; answered once the server acknowledged it."""
        uri = params.get("uri") if params else None
        if not isinstance(uri, str):
            return {"jsonrpc": "2.0", "id": rid,
                    "error": {"code": -32602, "message": "Invalid params: a uri is needed"}}
        watched = self._watched | {uri} if method == "resources/subscribe" else (
            self._watched - {uri})
        if watched != self._watched:
            self._watched = watched
            listener = self._listener
            if listener is not None and not listener.done():
                listener.cancel()
                await asyncio.gather(listener, return_exceptions=True)
            self.listening.clear()
            self._listener = self._spawn(self._listen_modern(), "subscriptions/listen")
            await self.listening.wait()
        return {"jsonrpc": "2.0", "id": rid, "result": {}}

    async def _listen_modern(self) -> None:
        """Keep a ``subscriptions/listen`` stream open on a modern server (its list_changed
        notifications); reconnect with backoff."""
        delay = 0.5
        while not self._closed and self._era == "modern":
            try:
                await self._listen_modern_once()
                delay = 0.5
            except (aiohttp.ClientError, OSError, errors.UpstreamError) as exc:
                log.debug("%s: listen stream: %s", self._slug, type(exc).__name__)
            finally:
                self.listening.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, LISTEN_BACKOFF_MAX)

    async def _listen_modern_once(self) -> None:
        http = self._http or self._open_http()
        rid = next(self._ids)
        wanted: dict[str, Any] = {"toolsListChanged": True, "promptsListChanged": True,
                                  "resourcesListChanged": True}
        if self._watched:
            wanted["resourceSubscriptions"] = sorted(self._watched)
        body, headers = _wire.modern_request(
            rid, "subscriptions/listen", {"notifications": wanted}, None
        )
        async with http.post(self._url, data=body, headers=self._headers(headers)) as resp:
            if resp.status != 200 or not resp.headers.get("Content-Type", "").startswith(_SSE):
                raise errors.UpstreamError(f"{self._slug}: listen stream: HTTP {resp.status}")
            async for message in sse.messages(resp.content.iter_any()):
                if message.get("method") == "notifications/subscriptions/acknowledged":
                    self.listening.set()
                elif "method" in message:
                    self._notify(message)

    # -- the gateway session's GET stream -----------------------------------------------------

    async def _listen(self) -> None:
        """Keep the GET stream of the gateway's session open; reconnect with backoff."""
        delay = 0.5
        while not self._closed:
            session = self._sessions.get(None)
            if session is None or session.id is None:
                return  # a new gateway session starts its own listener
            try:
                if await self._listen_once(session):
                    return
                delay = 0.5
            except _Expired:
                self._forget(None, session)
                try:
                    await self._session_for(None)  # re-initializes (and keeps this listener)
                    continue
                except errors.UpstreamError:
                    pass
            except (aiohttp.ClientError, OSError, errors.UpstreamError) as exc:
                log.debug("%s: GET stream: %s", self._slug, type(exc).__name__)
            finally:
                self.listening.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, LISTEN_BACKOFF_MAX)

    async def _listen_once(self, session: _Session) -> bool:
        """One GET stream, read to its end; True when the server offers none (405)."""
        http = self._http or self._open_http()
        async with http.get(self._url, headers=self._headers(session.get_headers)) as resp:
            if resp.status == 405:
                log.debug("%s: the upstream offers no GET stream", self._slug)
                return True
            if resp.status == 404:
                raise _Expired
            if resp.status != 200 or not resp.headers.get("Content-Type", "").startswith(_SSE):
                raise errors.UpstreamError(f"{self._slug}: GET stream: HTTP {resp.status}")
            self.listening.set()
            async for message in sse.messages(resp.content.iter_any()):
                self._incoming(message, session)
        return False

    # -- errors and plumbing -----------------------------------------------------------------

    def _renew_pool(self) -> None:
        """Send new requests through a fresh pool; the old one closes once it is idle.

        Closing it now would break the requests still running on it, so it retires: the two
        most recent retired pools stay open (their idle connections expire after KEEPALIVE),
        older ones are closed, and ``close()`` closes them all.
        """
        old, self._http = self._http, None
        if old is None:
            return
        self._retired.append(old)
        while len(self._retired) > 2:
            self._spawn(self._retired.pop(0).close(), "close a retired pool")

    def _open_http(self) -> aiohttp.ClientSession:
        self._check_open()
        connector = aiohttp.TCPConnector(limit=POOL_LIMIT, keepalive_timeout=KEEPALIVE)
        # No client-wide timeout: each request carries its own (asyncio.timeout).
        timeout = aiohttp.ClientTimeout(total=None)
        self._http = aiohttp.ClientSession(connector=connector, timeout=timeout)
        return self._http

    async def _refusal(self, resp: aiohttp.ClientResponse) -> errors.UpstreamError:
        """The error for an HTTP status other than success."""
        status = resp.status
        if status in (401, 403):
            if self._inject:
                text = (
                    f"{self._slug}: the upstream refused the gateway's credentials "
                    f"(HTTP {status}); check the secret configured for this server"
                )
            else:
                text = (
                    f"{self._slug}: the upstream requires credentials (HTTP {status}) "
                    "and none are configured for this server"
                )
            self._fail(text)
            return errors.UpstreamError(text)
        detail = ""
        try:
            raw = await resp.content.read(65536)
            body = orjson.loads(raw)
        except (aiohttp.ClientError, OSError, orjson.JSONDecodeError):
            body = None
        if type(body) is dict and type(body.get("error")) is dict:
            error = _wire.rpc_error(body["error"])
            if status < 500:
                return error  # the server's own JSON-RPC error (bad request, bad version)
            detail = f": {_wire.clip(error.rpc_message)}"
        text = f"{self._slug}: the upstream answered HTTP {status}{detail}"
        if status >= 500:
            self._fail(text)
        return errors.UpstreamError(text)

    def _broken(self, exc: BaseException) -> errors.UpstreamError:
        """A transport failure as a message without URL query or secret."""
        if isinstance(exc, aiohttp.ClientConnectorError):
            reason = _wire.os_reason(exc.os_error)
            text = f"{self._slug}: cannot connect to {self._where}: {reason}"
        elif isinstance(exc, aiohttp.ServerDisconnectedError):
            text = f"{self._slug}: {self._where} closed the connection"
        elif isinstance(exc, aiohttp.ClientPayloadError):
            text = f"{self._slug}: {self._where} sent a broken response"
        else:
            reason = _wire.os_reason(exc) if isinstance(exc, OSError) else type(exc).__name__
            text = f"{self._slug}: request to {self._where} failed ({reason})"
        self._fail(text)
        return errors.UpstreamError(text)

    # -- a spawned server (hosted streamable-http with a command) ------------------------------

    async def _spawned(self, process: asyncio.subprocess.Process) -> None:
        """Requests wait for the port to open; a restart makes the gateway look again."""
        self._started()

    def _process_exited(self, code: int) -> None:
        """The spawned server ended: its sessions died with it."""
        self._port_open = False
        self._sessions.clear()
        self._shared = None
        if not self._closed:
            self._fail(f"{self._slug}: server process exited with code {code}")

    async def _wait_for_port(self) -> None:
        """Wait (within the caller's timeout) until the spawned server accepts connections."""
        supervisor = self._supervisor
        assert supervisor is not None
        host, port = self._url.host or "127.0.0.1", self._url.port
        delay = 0.01
        while not self._port_open:
            self._check_open()
            if supervisor.spawn_error is not None:
                raise errors.UpstreamError(supervisor.spawn_error)
            if supervisor.running:
                try:
                    _, writer = await asyncio.open_connection(host, port)
                except OSError:
                    pass
                else:
                    writer.close()
                    await writer.wait_closed()
                    self._port_open = True
                    return
                # Polling is the only way to learn a port opened; it stops at the first accept.
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.25)
            else:
                await supervisor.changed.wait()
