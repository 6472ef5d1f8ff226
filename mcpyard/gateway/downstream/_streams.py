"""The ways back to a client during one of its requests (``_relay.Reply`` implementations).

- :class:`PostStream`: a streamable HTTP POST. It answers with plain JSON unless something must
  reach the client before the answer (progress, a log message, a server-to-client request);
  then, and only then, it turns into a ``text/event-stream`` that carries those messages and
  ends with the answer. A plain tools/call pays for one object and one attribute check.
- :class:`SessionStream`: the session's own stream: the legacy HTTP+SSE transport's one event
  stream, where everything travels anyway, or a streamable HTTP session's GET stream, where
  what an upstream asks outside any call goes (``_relay.Standing``).

A request the gateway relays to the client gets a gateway id (``mcpyard-N``, per session); the
client's answer arrives as a separate POST on the same session and is routed by that id
(:meth:`Session.answer`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import orjson
from starlette.types import Send

from mcpyard import errors
from mcpyard.gateway.downstream._sessions import Session
from mcpyard.mcp import asgi, protocol, sse
from mcpyard.mcp import jsonrpc as rpc

log = logging.getLogger("mcpyard.gateway")

ASK_TIMEOUT = 600.0
"""How long a relayed request waits for the client (a person may be answering it)."""


async def ask_session(session: Session, emit: Callable[[rpc.JSONObject], None], method: str,
                      params: rpc.JSONObject | None) -> rpc.JSONObject:
    """Send ``method`` to the session's client through ``emit`` and wait for its answer."""
    rid = session.request_id()
    future: asyncio.Future[rpc.JSONObject] = asyncio.get_running_loop().create_future()
    session.pending[rid] = future
    message: rpc.JSONObject = {"jsonrpc": "2.0", "id": rid, "method": method}
    if params is not None:
        message["params"] = params
    try:
        emit(message)
        async with asyncio.timeout(ASK_TIMEOUT):
            return await future
    except asyncio.CancelledError:
        if session.closed:
            raise errors.CannotAsk("the client's session ended") from None
        raise
    except TimeoutError:
        raise errors.CannotAsk(f"the client did not answer {method} in time") from None
    finally:
        session.pending.pop(rid, None)


class PostStream:
    """A POST's response: JSON, or an event stream once something must go first."""

    __slots__ = ("_queue", "_writer", "can_stream", "capabilities", "forward_headers",
                 "headers", "log_level", "send", "session")
    modern = False

    def __init__(self, send: Send, session: Session, *, can_stream: bool,
                 log_level: int | None, headers: list[tuple[bytes, bytes]] | None = None,
                 capabilities: rpc.JSONObject | None = None,
                 forward_headers: dict[str, str] | None = None) -> None:
        self.send = send
        self.session = session
        self.can_stream = can_stream
        self.log_level = log_level
        self.headers = headers
        """Extra headers of the HTTP response."""
        self.capabilities = capabilities if capabilities is not None else session.capabilities
        self.forward_headers = forward_headers
        self._queue: asyncio.Queue[bytes | None] | None = None
        """Encoded events, then None at the end."""
        self._writer: asyncio.Task[sse.Response] | None = None

    @property
    def streaming(self) -> bool:
        return self._queue is not None

    def notify(self, message: rpc.JSONObject) -> None:
        if not self.can_stream:
            return
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._writer = asyncio.get_running_loop().create_task(self._write(self._queue))
        self._queue.put_nowait(orjson.dumps(message))

    async def ask(self, method: str, params: rpc.JSONObject | None) -> rpc.JSONObject:
        if not self.can_stream:
            raise errors.CannotAsk(f"the client does not accept an event stream, so it cannot be "
                            f"asked for {method}")
        return await ask_session(self.session, self.notify, method, params)

    @property
    def standing(self) -> SessionStream:
        return SessionStream(self.session)

    async def finish(self, reply: rpc.JSONLike, status: int = 200) -> None:
        """Send the answer: as the stream's last event, or as the JSON response."""
        if self._queue is None or self._writer is None:
            await asgi.respond_json(self.send, status, reply, self.headers)
            return
        self._queue.put_nowait(None)
        with contextlib.suppress(OSError):
            response = await self._writer
            await response.finish(orjson.dumps(reply))

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.cancel()

    async def _write(self, queue: asyncio.Queue[bytes | None]) -> sse.Response:
        response = sse.Response(self.send, self.headers)
        while (data := await queue.get()) is not None:
            await response.event(data)
        return response


class SessionStream:
    """The session's own stream: notifications and requests outside a request's response."""

    __slots__ = ("session",)
    modern = False
    forward_headers: dict[str, str] | None = None

    def __init__(self, session: Session) -> None:
        self.session = session

    @property
    def standing(self) -> SessionStream:
        return self

    @property
    def capabilities(self) -> rpc.JSONObject | None:
        return self.session.capabilities

    @property
    def log_level(self) -> int | None:
        return self.session.log_level

    def notify(self, message: rpc.JSONObject) -> None:
        if self.session.transport in _STREAMED:
            self.session.push(message)

    async def ask(self, method: str, params: rpc.JSONObject | None) -> rpc.JSONObject:
        session = self.session
        if session.transport not in _STREAMED:
            # 2026-07-28 removed the GET stream: a server asks only within a result.
            raise errors.CannotAsk(f"a {protocol.MODERN_VERSION} client has no stream for "
                                   f"{method} outside a call")
        if session.transport == "streamable-http" and session.streams == 0:
            raise errors.CannotAsk(f"the client has no GET stream open to be asked for {method}")
        return await ask_session(session, session.push, method, params)


_STREAMED = frozenset({"streamable-http", "sse"})
"""Transports whose sessions have a stream of their own (a GET stream, the SSE stream)."""
