"""The 2026-07-28 era of the streamable HTTP client: no session, the envelope in every
request's ``_meta`` (mirrored in the routing headers), ``server/discover`` to learn the
server's era, and a ``subscriptions/listen`` stream for its notifications and the resource
subscriptions. The handshake-era client (``_http``) falls back to it (see ``_handshake``).
"""

from __future__ import annotations

import asyncio
from typing import Any

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
from mcpyard.mcp import protocol, sse

_SUBSCRIPTION_METHODS = frozenset({"resources/subscribe", "resources/unsubscribe"})
"""Handshake-era methods that a 2026-07-28 server serves as its listen stream's filter."""


class ModernEra(HTTPTransport):
    """The 2026-07-28 exchange of the streamable HTTP client."""

    async def _post_modern(
        self,
        session: Session,
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

    async def _discover(self) -> Session | None:
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
        async with http.stream(self._url, data=body, headers=self._headers(headers)) as resp:
            if resp.status != 200 or not resp.headers.get("Content-Type", "").startswith(_SSE):
                raise errors.UpstreamError(f"{self._slug}: listen stream: HTTP {resp.status}")
            async for message in sse.messages(resp.content.iter_any()):
                if message.get("method") == "notifications/subscriptions/acknowledged":
                    self.listening.set()
                elif "method" in message:
                    self._notify(message)
