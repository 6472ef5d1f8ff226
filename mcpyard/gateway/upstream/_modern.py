"""The 2026-07-28 era of the streamable HTTP client: no session, the envelope in every
request's ``_meta`` (mirrored in the routing headers), ``server/discover`` to learn the
server's era, and a ``subscriptions/listen`` stream for its notifications and the resource
subscriptions. The handshake-era client (``_http``) falls back to it (see ``_handshake``).

Under ``protocolEra: auto`` a server that serves both eras is spoken to in the handshake era,
and each request of a 2026-07-28 client that may ask its client something (tools/call,
prompts/get, resources/read) takes the 2026-07-28 hop instead (:meth:`ModernEra._mirror`):
the server's own input-required results then reach that client as the server wrote them
(its keys, several requests at once, its ``requestState``), which no translation of the
handshake era can give. A tool that asks through the back-channel has none on that hop and
answers ``-32600`` (the SDK's "no back-channel"); the request is sent again on the handshake
hop, where the gateway turns its back-channel requests into input-required results, and that
tool is remembered so that it runs once per call from then on.
"""

from __future__ import annotations

import asyncio

import aiohttp

from mcpyard import errors
from mcpyard.gateway.upstream import _wire
from mcpyard.gateway.upstream._base import Owner, Relay, UpstreamRPCError
from mcpyard.gateway.upstream._common import log
from mcpyard.gateway.upstream._transport import (
    _JSON,
    _SSE,
    LISTEN_BACKOFF_MAX,
    HTTPTransport,
    Session,
)
from mcpyard.mcp import jsonrpc as rpc
from mcpyard.mcp import protocol, sse
from mcpyard.mcp.backoff import Backoff

_SUBSCRIPTION_METHODS = frozenset({"resources/subscribe", "resources/unsubscribe"})
"""Handshake-era methods that a 2026-07-28 server serves as its listen stream's filter."""
_ASKING_METHODS = frozenset({"tools/call", "prompts/get", "resources/read"})
"""The requests a 2026-07-28 server may answer with an input-required result."""
_MODERN_HOP = Session(None, protocol.MODERN_VERSION, modern=True)


class ModernEra(HTTPTransport):
    """The 2026-07-28 exchange of the streamable HTTP client."""

    _serves_modern: bool | None = None
    """Whether a server spoken to in the handshake era also serves 2026-07-28 (None: not
    asked yet)."""
    _backchannel: frozenset[tuple[str, str]] = frozenset()
    """(method, name) of the requests that asked through the back-channel (see _mirror)."""

    @property
    def modern_hop(self) -> bool | None:
        """Whether 2026-07-28 clients' calls take the 2026-07-28 hop of a server spoken to in
        the handshake era (``auto`` and it serves both; None: not known yet)."""
        return self._serves_modern if self.server.protocol_era == "auto" else None

    async def _mirror(
        self,
        rid: int,
        repeatable: bool,
        relay: Relay | None,
        method: str,
        params: rpc.JSONObject | None,
    ) -> rpc.JSONObject | None:
        """A 2026-07-28 client's request on the 2026-07-28 hop of a handshake-era session
        (see the module docstring); None: send it in the handshake era."""
        if (self.server.protocol_era != "auto" or method not in _ASKING_METHODS
                or relay is None or not getattr(relay, "modern", False)):
            return None
        target = params.get(protocol.TARGET_FIELD.get(method, "name")) if params else None
        key = (method, target if isinstance(target, str) else "")
        if key in self._backchannel:
            return None
        if self._serves_modern is None:
            self._serves_modern = await self._discover(learn=False) is not None
        if not self._serves_modern:
            return None
        body, headers = _wire.modern_request(rid, method, params, relay)
        try:
            message = await self._post(_MODERN_HOP, body, rid, repeatable, relay, headers)
        except UpstreamRPCError as exc:  # a JSON-RPC error sent with an HTTP error status
            if not self._to_handshake(exc.code, key, params):
                raise
            return None
        error = message.get("error")
        if type(error) is dict and self._to_handshake(error.get("code"), key, params):
            return None
        return message

    def _to_handshake(self, code: object, key: tuple[str, str],
                      params: rpc.JSONObject | None) -> bool:
        """Whether a 2026-07-28 hop's error means: send it in the handshake era."""
        if code in (protocol.UNSUPPORTED_VERSION, protocol.HEADER_MISMATCH):
            self._serves_modern = None  # no longer (an upgrade, a downgrade): ask again
            return True
        if (code == rpc.INVALID_REQUEST and params is not None
                and "inputResponses" not in params and "requestState" not in params):
            # The server wanted its back-channel, which this era does not have.
            self._backchannel = self._backchannel | {key}
            log.info("%s: %s %s asks through the back-channel: served in the handshake era "
                     "from now on", self._slug, key[0], key[1])
            return True
        return False

    async def _post_modern(
        self,
        session: Session,
        owner: Owner | None,
        rid: int,
        repeatable: bool,
        relay: Relay | None,
        method: str,
        params: rpc.JSONObject | None,
    ) -> rpc.JSONObject:
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

    async def _discover(self, *, learn: bool = True) -> Session | None:
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
                bare = Session(None, protocol.MODERN_VERSION, modern=True)
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
        if learn:
            self._learn(result)  # type: ignore[arg-type]
        return bare

    async def _watch(
        self, rid: int, method: str, params: rpc.JSONObject | None
    ) -> rpc.JSONObject:
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
        delay = Backoff(cap=LISTEN_BACKOFF_MAX)
        while not self._closed and self._era == "modern":
            try:
                await self._listen_modern_once()
                delay.reset()
            except (aiohttp.ClientError, OSError, errors.UpstreamError) as exc:
                log.debug("%s: listen stream: %s", self._slug, type(exc).__name__)
            finally:
                self.listening.clear()
            await delay.sleep()

    async def _listen_modern_once(self) -> None:
        http = self._http or self._open_http()
        rid = next(self._ids)
        wanted: rpc.JSONObject = {"toolsListChanged": True, "promptsListChanged": True,
                              "resourcesListChanged": True}
        if self._watched:
            wanted["resourceSubscriptions"] = list[rpc.JSONValue](sorted(self._watched))
        body, headers = _wire.modern_request(
            rid, "subscriptions/listen", {"notifications": wanted}, None
        )
        async with http.stream(self._url, data=body, headers=self._headers(headers)) as resp:
            if resp.status != 200 or not resp.headers.get("Content-Type", "").startswith(_SSE):
                raise errors.UpstreamError(f"{self._slug}: listen stream: HTTP {resp.status}")
            async for message in sse.messages(resp.content.iter_any()):
                if message.get("method") == "notifications/subscriptions/acknowledged":
                    self.listening.set()
                elif "method" in message:
                    self._notify(message)
