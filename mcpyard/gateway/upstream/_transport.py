"""What both eras of the streamable HTTP client share: the pooled connections, one POST and
its answer (JSON or an event stream), notifications and server requests met on the way, and
the errors of the HTTP hop, free of URL queries and secrets.

The era-specific parts build on it: the 2026-07-28 exchange (``_modern``) and the handshake
era's sessions (``_http``, the client itself).
"""


from __future__ import annotations

import asyncio
import contextlib
import itertools
from typing import Unpack

import aiohttp
import orjson

from mcpyard import errors
from mcpyard.compiler.config import ServerConfig
from mcpyard.gateway.upstream import _wire
from mcpyard.gateway.upstream._base import (
    Owner,
    Relay,
    Wiring,
)
from mcpyard.gateway.upstream._common import log
from mcpyard.gateway.upstream._httpbase import HTTPUpstream
from mcpyard.mcp import jsonrpc, process, sse
from mcpyard.mcp.jsonrpc import JSONObject

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


_JSON = "application/json"
_SSE = "text/event-stream"
_BASE = {"Content-Type": _JSON, "Accept": f"{_JSON}, {_SSE}"}


class Session:
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


class HTTPTransport(HTTPUpstream):
    """The HTTP hop of one streamable-HTTP upstream (see the module docstring)."""

    transport = "a streamable-http server"

    def __init__(self, server: ServerConfig, **wiring: Unpack[Wiring]) -> None:
        super().__init__(server, **wiring)
        self._supervisor: process.Supervisor | None = None
        """The process of a hosted server the gateway spawns (None: a server elsewhere)."""
        self._sessions: dict[Owner | None, Session] = {}
        self._shared: Session | None = None
        """The one session of a server that issued no session id (stateless)."""
        self._ids = itertools.count(1)
        self._listener: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()
        """Set while the gateway session's GET stream is open (tests wait on it)."""
        self._era: str | None = None
        """``modern`` or ``handshake`` once the server answered; None: decide again (see
        ``_handshake``)."""
        self._watched: set[str] = set()
        """Resource URIs the gateway subscribed to on a 2026-07-28 server (the filter of its
        ``subscriptions/listen`` stream)."""

    async def _post(
        self,
        session: Session,
        body: bytes,
        rid: int,
        repeatable: bool = False,
        relay: Relay | None = None,
        headers: dict[str, str] | None = None,
    ) -> JSONObject:
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
                        raise self._expired()
                    raise await self._refusal(resp)
            except asyncio.CancelledError:
                # A timeout or a caller that gave up: tell the server to stop (best effort).
                self._spawn(self._cancel(session, rid), "cancel")
                raise
            except aiohttp.ClientConnectorError as exc:
                if self._supervisor is not None:
                    raise errors.UpstreamStarting(self._broken(exc)) from None
                raise self._broken(exc) from None
            except (aiohttp.ClientError, OSError) as exc:
                # A connection that broke under us most likely means the server restarted, and
                # its other pooled connections are dead too: new requests get a fresh pool.
                http.renew()
                if attempt == 1 and repeatable and isinstance(exc, aiohttp.ServerDisconnectedError):
                    # Closed before any answer, as a pooled connection the server had just
                    # dropped is: a request that changes nothing is sent again. A tools/call
                    # is not, as the server may have started on it.
                    continue
                raise self._broken(exc) from None
        raise AssertionError("unreachable")

    def _parse_json(self, raw: bytes, rid: int) -> JSONObject:
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
        session: Session,
        relay: Relay | None = None,
    ) -> JSONObject:
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

    def _incoming(self, message: JSONObject, session: Session) -> None:
        """A message that is not our response: a notification or a server request."""
        if "method" not in message:
            log.debug("%s: ignored a response nobody waits for", self._slug)
        elif "id" in message:
            self._spawn(self._reply(session, _wire.answer(message)), "reply")
        else:
            self._notify(message)

    async def _reply(self, session: Session, body: bytes) -> None:
        try:
            async with asyncio.timeout(CLEANUP_TIMEOUT):
                await self._post_notification(session, body)
        except (errors.UpstreamError, TimeoutError) as exc:
            log.debug("%s: could not answer a server request: %s", self._slug, type(exc).__name__)

    async def _relay_request(
        self, session: Session, message: JSONObject, relay: Relay
    ) -> None:
        await self._reply(session, await self._relayed_answer(message, relay))

    async def _cancel(self, session: Session, rid: int) -> None:
        body = _wire.cancelled(rid, "the gateway's client cancelled")
        await self._reply(session, body)

    async def _post_notification(self, session: Session, body: bytes) -> None:
        """POST a notification or a response (the server answers 202 Accepted)."""
        http = self._http or self._open_http()
        headers = self._headers(session.headers)
        try:
            async with http.post(self._url, data=body, headers=headers) as resp:
                if resp.status in (200, 202, 204):
                    return
                if resp.status == 404 and session.id is not None:
                    raise self._expired()
                raise await self._refusal(resp)
        except (aiohttp.ClientError, OSError) as exc:
            raise self._broken(exc) from None

    async def _delete(self, session: Session) -> None:
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

    def _forget(self, owner: Owner | None, session: Session) -> None:
        if self._sessions.get(owner) is session:
            del self._sessions[owner]
        if self._shared is session:
            self._shared = None

    async def _refusal(self, resp: aiohttp.ClientResponse) -> errors.UpstreamError:
        """The error for an HTTP status other than success."""
        status = resp.status
        refused = self._credentials_refused(status)
        if refused is not None:
            return refused
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
