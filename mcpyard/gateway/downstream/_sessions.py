"""Downstream sessions: who opened them, which protocol they speak, where notifications go.

A session belongs to one member of one workspace; its id is 256 random bits and means nothing
else. Sessions live in this process (several replicas need session affinity). A session that
is unused for ``idle_seconds`` and has no open stream expires; ending a session releases the
upstream sessions it opened.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import TYPE_CHECKING, Literal

import orjson

from mcpyard.gateway.upstream._base import Owner
from mcpyard.mcp import jsonrpc as rpc

if TYPE_CHECKING:
    from mcpyard.gateway._upstreams import Handle

log = logging.getLogger("mcpyard.gateway")

Transport = Literal["streamable-http", "sse", "modern", "listen"]
"""``modern``: the one pseudo-session of a member's sessionless (2026-07-28) requests, which
owns that member's upstream sessions; ``listen``: a ``subscriptions/listen`` stream."""
_CLOSE = b""
_QUEUE_LIMIT = 256


class Session:
    __slots__ = ("_ids", "_queue", "capabilities", "closed", "finalizers", "id", "inflight",
                 "last_seen",
                 "log_level", "member", "owner", "pending", "protocol", "streams", "tasks",
                 "transport", "used", "workspace")

    def __init__(self, workspace: str, member: str, member_key: str, protocol: str | None,
                 transport: Transport) -> None:
        self.id = secrets.token_urlsafe(32)
        self.workspace = workspace
        self.member = member
        """The member's name (its namespace is the workspace's)."""
        self.owner = Owner(member=member_key, session=self.id)
        self.protocol = protocol
        self.transport = transport
        self.last_seen = time.monotonic()
        self.used: set[Handle] = set()
        """Upstreams this session talked to (released when it ends)."""
        self.tasks: set[asyncio.Task[None]] = set()
        self.streams = 0
        self.closed = False
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(_QUEUE_LIMIT)
        self.log_level = 0
        self.capabilities: rpc.JSONObject | None = None
        """What the client declared at initialize (it decides what it may be asked)."""
        """The lowest log level (index in ``_relay.LOG_LEVELS``) relayed; logging/setLevel."""
        self.inflight: dict[rpc.Id, asyncio.Task[rpc.Response] | None] = {}
        """The tasks answering the client's requests that may be cancelled, by request id
        (None once the client cancelled it)."""
        self.pending: dict[str, asyncio.Future[rpc.JSONObject]] = {}
        """The client's answers awaited for requests the gateway relayed to it, by our id."""
        self.finalizers: list[Callable[[], Awaitable[None]]] = []
        """Run when the session ends (leave resource subscriptions)."""
        self._ids = 0

    def request_id(self) -> str:
        """A fresh id for a request the gateway sends this session's client."""
        self._ids += 1
        return f"mcpyard-{self._ids}"

    def answer(self, message: rpc.JSONObject) -> bool:
        """Route a response the client sent to the relayed request waiting for it."""
        id_ = message.get("id")  # ours are strings (request_id)
        future = self.pending.pop(id_, None) if isinstance(id_, str) else None
        if future is None or future.done():
            return False
        future.set_result(message)
        return True

    def push(self, message: rpc.JSONLike) -> None:
        """Queue a message for the session's stream; dropped when no stream is open (allowed for
        notifications) or when the client does not read (a full queue)."""
        if self.closed or (self.streams == 0 and self.transport == "streamable-http"):
            return
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(orjson.dumps(message))

    async def next(self) -> bytes | None:
        """The next encoded message for the stream, or None when the session ended."""
        data = await self._queue.get()
        return None if data is _CLOSE else data

    def spawn(self, coro: Coroutine[object, None, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _close(self) -> None:
        self.closed = True
        self.hangup()

    def hangup(self) -> None:
        """End the session's stream (the session itself lives on until ended)."""
        while True:
            try:
                self._queue.put_nowait(_CLOSE)
                return
            except asyncio.QueueFull:
                self._queue.get_nowait()


class SessionStore:
    def __init__(self, idle_seconds: float, on_change: Callable[[], None] | None = None, *,
                 on_open: Callable[[str], None] | None = None,
                 on_close: Callable[[str], None] | None = None) -> None:
        self.idle_seconds = idle_seconds
        self._sessions: dict[str, Session] = {}
        self._sessionless: dict[tuple[str, str], Session] = {}
        self._on_change = on_change or (lambda: None)
        self._on_open = on_open or (lambda workspace: None)
        """Told the workspace of every session opened (and closed, below): the metrics."""
        self._on_close = on_close or (lambda workspace: None)

    def __len__(self) -> int:
        return len(self._sessions)

    def __iter__(self) -> Iterator[Session]:
        return iter(list(self._sessions.values()))

    def open(self, workspace: str, member: str, member_key: str, protocol: str | None,
             transport: Transport) -> Session:
        session = Session(workspace, member, member_key, protocol, transport)
        self._sessions[session.id] = session
        self._on_open(workspace)
        self._on_change()
        return session

    def sessionless(self, workspace: str, member: str, member_key: str) -> Session:
        """The pseudo-session of a member's sessionless requests (never listed, never swept:
        it holds no stream, only the member's upstream sessions)."""
        key = (workspace, member_key)
        session = self._sessionless.get(key)
        if session is None or session.closed:
            session = self._sessionless[key] = Session(workspace, member, member_key, None,
                                                       "modern")
        return session

    def get(self, session_id: str) -> Session | None:
        session = self._sessions.get(session_id)
        if session is None:
            return None
        now = time.monotonic()
        if session.streams == 0 and now - session.last_seen > self.idle_seconds:
            return None  # expired; the sweeper ends it and releases its upstream sessions
        session.last_seen = now
        return session

    def of_workspace(self, workspace: str) -> list[Session]:
        return [s for s in self._sessions.values() if s.workspace == workspace]

    async def end(self, session: Session) -> None:
        """End a session: close its stream, cancel its work, release its upstream sessions."""
        if session.closed:
            return
        self._forget(session)
        for task in list(session.tasks):
            task.cancel()
        for future in session.pending.values():
            future.cancel()
        finalizers, session.finalizers = session.finalizers, []
        for finalize in finalizers:
            try:
                await finalize()
            except Exception:  # a finalizer only releases upstream state
                log.exception("session %s: cleanup failed", session.id[:8])
        handles, session.used = session.used, set()
        await asyncio.gather(*(h.release(session.owner) for h in handles))

    def _forget(self, session: Session) -> None:
        if self._sessions.pop(session.id, None) is not None:
            self._on_close(session.workspace)
        session._close()
        self._on_change()

    async def end_where(self, predicate: Callable[[Session], bool]) -> int:
        doomed = [s for s in self._sessions.values() if predicate(s)]
        await asyncio.gather(*(self.end(s) for s in doomed))
        return len(doomed)

    async def sweep(self) -> int:
        """End the sessions idle for longer than ``idle_seconds``."""
        limit = time.monotonic() - self.idle_seconds
        return await self.end_where(lambda s: s.streams == 0 and s.last_seen < limit)

    async def run_sweeper(self) -> None:
        interval = max(1.0, min(60.0, self.idle_seconds / 4))
        while True:
            await asyncio.sleep(interval)
            try:
                ended = await self.sweep()
            except Exception:  # never let the sweeper die; it guards memory
                log.exception("session sweep failed")
                continue
            if ended:
                log.info("expired %d idle sessions", ended)

    async def close(self) -> None:
        await self.end_where(lambda s: True)
        await self.end_sessionless(lambda s: True)

    async def end_sessionless(self, predicate: Callable[[Session], bool]) -> None:
        """Release the upstream sessions of members' sessionless requests (a member removed)."""
        doomed = [k for k, s in self._sessionless.items() if predicate(s)]
        for key in doomed:
            session = self._sessionless.pop(key)
            session.closed = True
            handles, session.used = session.used, set()
            await asyncio.gather(*(h.release(session.owner) for h in handles))

    def hangup(self) -> None:
        """End every open stream now: a server shutting down waits for open responses."""
        for session in self._sessions.values():
            if session.streams:
                session.hangup()
