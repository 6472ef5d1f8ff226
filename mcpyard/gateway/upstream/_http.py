"""The streamable HTTP client (MCP 2025-03-26 .. 2025-11-25 handshake era), on aiohttp.

The gateway's one connection pool (``_pool``) carries every owner's MCP session. An owner's
first request runs ``initialize`` + ``notifications/initialized`` once (concurrent first requests
share it); afterwards each request carries ``Mcp-Session-Id`` and ``MCP-Protocol-Version``. An
HTTP 404 on a request that carried a session id means the session expired: the owner's session
is re-initialized and the request sent once more. A server that issues no session id keeps no
state per client, so one initialization serves every owner.

A response is ``application/json`` or ``text/event-stream``; on a stream, messages before ours
are notifications (queued for ``on_notification``) or server requests (answered by POST). The
gateway's own session (owner None) keeps the server's GET stream open in the background for
notifications such as ``notifications/tools/list_changed``. So does a member's session whose
client declared it can be asked something (sampling, elicitation, roots): what the server
asks there, outside any call, goes to that client (the request's ``standing`` way back, see
``gateway._relay.Standing``) and its answer comes back by POST.

The hot path is kept lean on purpose (measured: see the package docstring): one dict lookup for
the session, one ``orjson.dumps``, one POST, one ``orjson.loads``; headers are built once per
session and copied only when secrets are injected.

With a ``command`` (a hosted server the gateway spawns under a ``Supervisor``), requests first
wait, within their timeout, for the process's port to accept connections, and a process exit
drops every session (they died with it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Unpack

import aiohttp

from mcpyard import errors
from mcpyard.compiler.config import ServerConfig
from mcpyard.gateway.upstream import _port, _process, _wire
from mcpyard.gateway.upstream._base import (
    Owner,
    Relay,
    UpstreamRPCError,
    Wiring,
)
from mcpyard.gateway.upstream._common import log
from mcpyard.gateway.upstream._modern import _SUBSCRIPTION_METHODS, ModernEra
from mcpyard.gateway.upstream._transport import (
    _BASE,
    _REPEATABLE,
    _SSE,
    LISTEN_BACKOFF_MAX,
    Session,
)
from mcpyard.mcp import protocol, sse
from mcpyard.mcp.backoff import Backoff
from mcpyard.mcp.jsonrpc import JSONObject

MEMBER_STREAMS = 50
"""GET streams of members' sessions kept open at once per upstream (each holds a connection
of the shared pool, not counted against its requests, and the server's own stream state). A
session beyond it has none: what the server asks outside a call is not heard there, as with a
client that opens no GET stream."""

_ASKABLE = frozenset(protocol.CAPABILITY_OF.values())
"""Client capabilities that let a server ask the client something (sampling, ...)."""


class StreamableHTTPUpstream(ModernEra):
    """The streamable HTTP client: the handshake era's sessions, and the 2026-07-28 era when
    the server speaks it (:class:`~mcpyard.gateway.upstream._modern.ModernEra`)."""

    def __init__(self, server: ServerConfig, *, workdir: Path | None = None,
                 **wiring: Unpack[Wiring]) -> None:
        super().__init__(server, **wiring)
        self._port: _port.PortWaiter | None = None
        self._member_streams: dict[Owner, asyncio.Task[None]] = {}
        """The GET streams of members' sessions (see the module docstring)."""
        if server.command:
            self._supervisor = _process.supervisor(
                server,
                secrets=wiring["secrets"],
                workdir=workdir,
                stdio=False,
                on_spawn=self._spawned,
                on_exit=self._process_exited,
                on_error=self._fail,
            )
            self._port = _port.PortWaiter(self._url, self._supervisor, self._check_open)

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

    async def start(self) -> None:
        if self._closed:
            return
        if self._supervisor is not None:
            self._supervisor.start()
        limit = self.server.timeout_seconds
        try:
            async with asyncio.timeout(limit):
                if self._port is not None:
                    await self._port.wait()
                await self._session_for(None)
        except TimeoutError:
            opened = self._port is not None and self._port.open
            what = "the port to open" if not opened else "initialize"
            self._fail(f"{self._slug}: no answer after {limit:g}s (waiting for {what})")
        except errors.UpstreamError:
            pass  # recorded in last_error

    async def notify(
        self, method: str, params: JSONObject | None, *, owner: Owner | None
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
        except errors.SessionExpired:
            self._forget(owner, session)

    async def release(self, owner: Owner) -> None:
        stream = self._member_streams.pop(owner, None)
        if stream is not None:
            stream.cancel()
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
        http, self._http = self._http, None
        if http is not None:
            await http.close()
        if self._supervisor is not None:
            await self._supervisor.close()
        self._set_closed()

    async def _send(
        self,
        method: str,
        params: JSONObject | None,
        owner: Owner | None,
        relay: Relay | None = None,
    ) -> JSONObject:
        if self._port is not None and not self._port.open:
            await self._port.wait()
        rid = next(self._ids)
        body = _wire.request(rid, method, params)
        repeatable = method in _REPEATABLE
        try:
            message = await self._exchange(owner, body, rid, repeatable, relay, method, params)
        except errors.UpstreamStarting as starting:
            # A spawned server that is restarting (it refused the connection, so the request
            # never reached it): wait for its port within the caller's timeout, then retry.
            if self._port is None:
                raise starting.error from None
            self._port.open = False
            await self._port.wait()
            try:
                message = await self._exchange(
                    owner, body, rid, repeatable, relay, method, params
                )
            except errors.UpstreamStarting as again:
                raise again.error from None
        if self._last_error is not None:
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
        params: JSONObject | None = None,
    ) -> JSONObject:
        """POST on the owner's session; an expired session is re-initialized once."""
        caps = getattr(relay, "capabilities", None)
        session = (self._shared or self._sessions.get(owner)
                   or await self._session_for(owner, caps, getattr(relay, "standing", None)))
        if session.modern and method in _SUBSCRIPTION_METHODS:
            return await self._watch(rid, method, params)
        if session.modern:
            return await self._post_modern(session, owner, rid, repeatable, relay, method, params)
        mirrored = await self._mirror(rid, repeatable, relay, method, params)
        if mirrored is not None:
            return mirrored
        try:
            return await self._post(session, body, rid, repeatable, relay)
        except errors.SessionExpired:
            self._forget(owner, session)
            session = await self._session_for(owner, caps, getattr(relay, "standing", None))
            if session.modern:
                return await self._post_modern(
                    session, owner, rid, repeatable, relay, method, params
                )
            try:
                return await self._post(session, body, rid, repeatable, relay)
            except errors.SessionExpired:
                raise errors.UpstreamError(
                    f"{self._slug}: the upstream forgot a session it had just created"
                ) from None

    async def _session_for(
        self, owner: Owner | None, caps: JSONObject | None = None, standing: Relay | None = None
    ) -> Session:
        """The owner's session; a new one declares ``caps``, what the owner's client can
        answer (the server may ask it only that), and ``standing`` hears what the server asks
        it outside any call."""
        self._check_open()
        session = self._shared or self._sessions.get(owner)
        if session is not None:
            return session
        return await self._single(owner, lambda: self._initialize(owner, caps, standing))

    async def _initialize(self, owner: Owner | None, caps: JSONObject | None,
                          standing: Relay | None = None) -> Session:
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
        if session.id is None:
            # No session id: the server keeps no state per client, so there is nothing one
            # owner could leak to another; one handshake serves them all.
            self._shared = session
        else:
            self._sessions[owner] = session
        if (owner is not None and session.id is not None and standing is not None
                and _ASKABLE.intersection(caps or ())):
            self._listen_for(owner, session, standing)
        listener = self._listener
        if owner is None and session.id is not None and (listener is None or listener.done()):
            self._listener = self._spawn(self._listen(), "GET stream")
        elif session.modern and (listener is None or listener.done()):
            self._listener = self._spawn(self._listen_modern(), "subscriptions/listen")
        self._ok()
        return session

    async def _handshake(self, caps: JSONObject | None) -> Session:
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
        except errors.HandshakeRefused as refused:
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

    async def _initialize_handshake(self, caps: JSONObject | None) -> Session:
        http = self._http or self._open_http()
        rid = next(self._ids)
        params = _wire.initialize_params(protocol.LATEST_HANDSHAKE, caps)
        body = _wire.request(rid, "initialize", params)
        bare = Session(None, protocol.LATEST_HANDSHAKE)
        headers = self._headers(_BASE)
        try:
            async with http.post(self._url, data=body, headers=headers) as resp:
                if resp.status != 200:
                    error = await self._refusal(resp)
                    if 400 <= resp.status < 500 and resp.status not in (401, 403):
                        raise errors.HandshakeRefused(error)
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
            raise errors.HandshakeRefused(exc) from None
        self._learn(result)
        version = result.get("protocolVersion")
        session = Session(session_id, version if isinstance(version, str) else bare.version)
        try:
            await self._post_notification(session, _wire.INITIALIZED)
        except errors.SessionExpired:
            raise errors.UpstreamError(
                f"{self._slug}: the upstream forgot a session it had just created"
            ) from None
        return session

    async def _listen(self) -> None:
        """Keep the GET stream of the gateway's session open; reconnect with backoff."""
        delay = Backoff(cap=LISTEN_BACKOFF_MAX)
        while not self._closed:
            session = self._sessions.get(None)
            if session is None or session.id is None:
                return  # a new gateway session starts its own listener
            try:
                if await self._listen_once(session):
                    return
                delay.reset()
            except errors.SessionExpired:
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
            await delay.sleep()

    def _listen_for(self, owner: Owner, session: Session, standing: Relay) -> None:
        old = self._member_streams.pop(owner, None)
        if old is not None:
            old.cancel()
        if len(self._member_streams) >= MEMBER_STREAMS:
            log.debug("%s: %d members' GET streams open, no more", self._slug, MEMBER_STREAMS)
            return
        self._member_streams[owner] = self._spawn(
            self._listen_member(owner, session, standing), "GET stream of a member's session")

    async def _listen_member(self, owner: Owner, session: Session, standing: Relay) -> None:
        """Keep the GET stream of a member's session open while the session lasts: what the
        server asks there goes to the member's client, what it tells there (log messages)
        too, unless it concerns the server as a whole (list_changed)."""

        def heard(message: JSONObject) -> None:
            if "method" not in message:
                log.debug("%s: ignored a response nobody waits for", self._slug)
            elif "id" in message:
                self._spawn(self._relay_request(session, message, standing), "relay")
            else:
                self._incoming_notification(message, standing)

        delay = Backoff(cap=LISTEN_BACKOFF_MAX)
        try:
            while not self._closed and self._sessions.get(owner) is session:
                try:
                    if await self._listen_once(session, heard):
                        return
                    delay.reset()
                except errors.SessionExpired:
                    return  # the owner's next request opens a new session, and its stream
                except (aiohttp.ClientError, OSError, errors.UpstreamError) as exc:
                    log.debug("%s: GET stream of a member: %s", self._slug, type(exc).__name__)
                await delay.sleep()
        finally:
            if self._member_streams.get(owner) is asyncio.current_task():
                del self._member_streams[owner]

    async def _listen_once(self, session: Session,
                           heard: Callable[[JSONObject], None] | None = None) -> bool:
        """One GET stream, read to its end; True when the server offers none (405). What
        arrives goes to ``heard``; by default the gateway's own session handles it (and
        ``listening`` tells the stream is open)."""
        http = self._http or self._open_http()
        async with http.get(self._url, headers=self._headers(session.get_headers)) as resp:
            if resp.status == 405:
                log.debug("%s: the upstream offers no GET stream", self._slug)
                return True
            if resp.status == 404:
                raise self._expired()
            if resp.status != 200 or not resp.headers.get("Content-Type", "").startswith(_SSE):
                raise errors.UpstreamError(f"{self._slug}: GET stream: HTTP {resp.status}")
            if heard is None:
                self.listening.set()
            async for message in sse.messages(resp.content.iter_any()):
                if heard is None:
                    self._incoming(message, session)
                else:
                    heard(message)
        return False

    async def _spawned(self, process: asyncio.subprocess.Process) -> None:
        """Requests wait for the port to open; a restart makes the gateway look again."""
        self._started()

    def _process_exited(self, code: int) -> None:
        """The spawned server ended: its sessions died with it."""
        if self._port is not None:
            self._port.open = False
        self._sessions.clear()
        self._shared = None
        # The next process may be another version: ask again what it serves and how it asks.
        self._serves_modern = None
        self._backchannel = frozenset()
        if not self._closed:
            self._fail(f"{self._slug}: server process exited with code {code}")
