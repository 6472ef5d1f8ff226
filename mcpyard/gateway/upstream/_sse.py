"""The legacy HTTP+SSE client (MCP 2024-11-05): one GET event stream per owner.

Per owner: GET the server's stream, wait for its ``endpoint`` event, POST JSON-RPC messages to
that URL (relative to the stream's), and match responses arriving on the stream by id. The
handshake asks for protocol version 2024-11-05, which old servers expect, and keeps what the
server answers. A stream that drops fails its pending requests with ``UpstreamError``; the next
request of that owner opens a new one. The endpoint must be on the stream's own origin: the
gateway's credentials are never sent to another host.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Unpack

import aiohttp
import orjson
from yarl import URL

from mcpyard import errors
from mcpyard.compiler.config import ServerConfig
from mcpyard.gateway.upstream import _wire
from mcpyard.gateway.upstream._base import (
    Owner,
    Relay,
    UpstreamRPCError,
    Wiring,
)
from mcpyard.gateway.upstream._common import log, quiet
from mcpyard.gateway.upstream._httpbase import HTTPUpstream
from mcpyard.mcp import correlator, protocol, sse
from mcpyard.mcp.jsonrpc import JSONObject

_GET = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
_POST = {"Content-Type": "application/json"}


class _Stream:
    """One owner's event stream and what waits on it."""

    __slots__ = ("endpoint", "pending", "reader", "version")

    def __init__(self) -> None:
        self.endpoint: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.endpoint.add_done_callback(quiet)
        self.pending = correlator.Correlator()
        self.reader: asyncio.Task[None] | None = None
        self.version = protocol.LEGACY_VERSION


class LegacySSEUpstream(HTTPUpstream):
    transport = "an sse server"

    def __init__(self, server: ServerConfig, **wiring: Unpack[Wiring]) -> None:
        super().__init__(server, **wiring)
        self._streams: dict[Owner | None, tuple[_Stream, URL]] = {}
        self._ids = itertools.count(1)

    @property
    def era(self) -> str | None:
        """The legacy transport is of the handshake era (initialize)."""
        return "handshake" if self.protocol_version is not None else None

    @property
    def protocol_version(self) -> str | None:
        found = self._streams.get(None)
        return found[0].version if found is not None else None

    # -- the contract ----------------------------------------------------------------------

    async def start(self) -> None:
        if self._closed:
            return
        limit = self.server.timeout_seconds
        try:
            async with asyncio.timeout(limit):
                await self._stream_for(None)
        except TimeoutError:
            self._fail(f"{self._slug}: timed out after {limit:g}s")
        except errors.UpstreamError:
            pass  # recorded in last_error

    async def _send(
        self, method: str, params: JSONObject | None, owner: Owner | None,
        relay: Relay | None,
    ) -> JSONObject:
        rid = next(self._ids)
        body = _wire.request(rid, method, params)
        if relay is not None:
            self._relays[(owner, rid)] = relay
        try:
            caps = getattr(relay, "capabilities", None)
            stream, endpoint = self._streams.get(owner) or await self._stream_for(owner, caps)
            try:
                message = await self._exchange(stream, endpoint, rid, body)
            except errors.SessionExpired:
                self._drop(owner, stream)
                stream, endpoint = await self._stream_for(owner, caps)
                try:
                    message = await self._exchange(stream, endpoint, rid, body)
                except errors.SessionExpired:
                    raise errors.UpstreamError(
                        f"{self._slug}: the upstream forgot a session it had just created"
                    ) from None
        finally:
            if relay is not None:
                del self._relays[(owner, rid)]
        if self._last_error is not None:
            self._ok()
        return message

    async def notify(
        self, method: str, params: JSONObject | None, *, owner: Owner | None
    ) -> None:
        found = self._streams.get(owner)
        if found is None:
            return
        limit = self.server.timeout_seconds
        try:
            async with asyncio.timeout(limit):
                await self._post(found[1], _wire.notification(method, params))
        except TimeoutError:
            raise self._timed_out(limit) from None
        except errors.SessionExpired:
            self._drop(owner, found[0])

    async def release(self, owner: Owner) -> None:
        found = self._streams.pop(owner, None)
        if found is not None and found[0].reader is not None:
            found[0].reader.cancel()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._streams.clear()
        await self._cancel_tasks()
        if self._http is not None:
            await self._http.close()
            self._http = None
        self._set_closed()

    # -- requests --------------------------------------------------------------------------

    async def _exchange(
        self, stream: _Stream, endpoint: URL, rid: int, body: bytes
    ) -> JSONObject:
        if stream.reader is None or stream.reader.done():
            raise errors.UpstreamError(f"{self._slug}: the event stream closed")
        future = stream.pending.expect(rid)
        try:
            await self._post(endpoint, body)
            return await future
        except asyncio.CancelledError:
            if not future.done():
                cancel = _wire.cancelled(rid, "the gateway's client cancelled")
                self._spawn(self._post_quietly(endpoint, cancel), "cancel")
            raise
        finally:
            stream.pending.discard(rid)

    async def _post(self, endpoint: URL, body: bytes) -> None:
        http = self._http or self._open_http()
        headers = self._headers(_POST)
        try:
            async with http.post(endpoint, data=body, headers=headers) as resp:
                if resp.status in (200, 202, 204):
                    return
                if resp.status == 404:
                    raise self._expired()
                raise self._refusal(resp.status)
        except (aiohttp.ClientError, OSError) as exc:
            raise self._broken(exc) from None

    async def _post_quietly(self, endpoint: URL, body: bytes) -> None:
        try:
            async with asyncio.timeout(self.server.timeout_seconds):
                await self._post(endpoint, body)
        except (errors.UpstreamError, TimeoutError) as exc:
            log.debug("%s: could not post to the upstream: %s", self._slug, type(exc).__name__)

    # -- streams ---------------------------------------------------------------------------

    async def _stream_for(
        self, owner: Owner | None, caps: JSONObject | None = None
    ) -> tuple[_Stream, URL]:
        """The owner's stream; a new one's session declares ``caps``, what the owner's client
        can answer (None for the gateway's own)."""
        self._check_open()
        found = self._streams.get(owner)
        if found is not None:
            return found
        return await self._single(
            owner, lambda: self._connect(owner, caps if owner is not None else None)
        )

    def _drop(self, owner: Owner | None, stream: _Stream) -> None:
        found = self._streams.get(owner)
        if found is not None and found[0] is stream:
            del self._streams[owner]
        if stream.reader is not None:
            stream.reader.cancel()

    async def _connect(
        self, owner: Owner | None, caps: JSONObject | None
    ) -> tuple[_Stream, URL]:
        limit = self.server.timeout_seconds
        stream = _Stream()
        try:
            async with asyncio.timeout(limit):
                endpoint = await self._open(stream, owner)
                rid = next(self._ids)
                params = _wire.initialize_params(protocol.LEGACY_VERSION, caps)
                message = await self._exchange(
                    stream, endpoint, rid, _wire.request(rid, "initialize", params)
                )
                result = _wire.result_of(message, self._slug)
                await self._post(endpoint, _wire.INITIALIZED)
        except BaseException as exc:
            if stream.reader is not None:
                stream.reader.cancel()
            if isinstance(exc, TimeoutError):
                error = errors.UpstreamError(
                    f"{self._slug}: no answer to initialize after {limit:g}s"
                )
            elif isinstance(exc, UpstreamRPCError):
                error = errors.UpstreamError(
                    f"{self._slug}: initialize refused: {_wire.clip(exc.rpc_message)}"
                )
            elif isinstance(exc, errors.SessionExpired):
                error = errors.UpstreamError(f"{self._slug}: the upstream lost the new session")
            elif isinstance(exc, errors.UpstreamError):
                error = exc
            else:
                raise
            self._fail(str(error))
            raise error from None
        self._learn(result)
        version = result.get("protocolVersion")
        if isinstance(version, str):
            stream.version = version
        found = self._streams[owner] = (stream, endpoint)
        self._ok()
        return found

    async def _open(self, stream: _Stream, owner: Owner | None) -> URL:
        """GET the event stream, start its reader, and return the endpoint it announces."""
        http = self._http or self._open_http()
        try:
            resp = await http.get(self._url, headers=self._headers(_GET))
        except (aiohttp.ClientError, OSError) as exc:
            raise self._broken(exc) from None
        if resp.status != 200 or not resp.headers.get("Content-Type", "").startswith(
            "text/event-stream"
        ):
            resp.release()
            raise self._refusal(resp.status)
        stream.reader = self._spawn(self._read(stream, resp, owner), "event stream")
        endpoint = self._url.join(URL(await stream.endpoint))
        if endpoint.origin() != self._url.origin():
            raise errors.UpstreamError(
                f"{self._slug}: the upstream's endpoint is on another origin; "
                "the gateway does not send its credentials there"
            )
        return endpoint

    async def _read(
        self, stream: _Stream, resp: aiohttp.ClientResponse, owner: Owner | None
    ) -> None:
        reason = "the upstream closed the event stream"
        try:
            parser = sse.Parser()
            async for chunk in resp.content.iter_any():
                for event, data in parser.feed(chunk):
                    if event == b"endpoint":
                        if not stream.endpoint.done():
                            stream.endpoint.set_result(data.decode("utf-8", "replace").strip())
                    elif event == b"message":
                        self._dispatch(stream, data, owner)
        except (aiohttp.ClientError, OSError) as exc:
            reason = f"the event stream broke ({type(exc).__name__})"
        except asyncio.CancelledError:
            reason = "the event stream was closed"
            raise
        finally:
            resp.close()
            error = errors.UpstreamError(f"{self._slug}: {reason}")
            if not stream.endpoint.done():
                stream.endpoint.set_exception(error)
            stream.pending.fail_all(error)
            found = self._streams.get(owner)
            if found is not None and found[0] is stream:
                del self._streams[owner]

    def _dispatch(self, stream: _Stream, data: bytes, owner: Owner | None) -> None:
        try:
            message = orjson.loads(data)
        except orjson.JSONDecodeError:
            log.debug("%s: skipped an event that is not JSON", self._slug)
            return
        if type(message) is not dict:
            return
        if "method" not in message:
            stream.pending.resolve(message)
        elif "id" in message:
            found = self._streams.get(owner)
            if found is not None:
                relay = self._sole_relay(owner)
                if relay is not None:
                    self._spawn(self._relay_request(found[1], message, relay), "relay")
                else:
                    answer = _wire.answer(message)
                    self._spawn(self._post_quietly(found[1], answer), "reply")
        else:
            self._incoming_notification(message, self._sole_relay(owner))

    async def _relay_request(self, endpoint: URL, message: JSONObject, relay: Relay) -> None:
        await self._post_quietly(endpoint, await self._relayed_answer(message, relay))

    # -- errors and plumbing -----------------------------------------------------------------

    def _refusal(self, status: int) -> errors.UpstreamError:
        refused = self._credentials_refused(status)
        if refused is not None:
            return refused
        text = f"{self._slug}: the upstream answered HTTP {status}"
        self._fail(text)
        return errors.UpstreamError(text)
