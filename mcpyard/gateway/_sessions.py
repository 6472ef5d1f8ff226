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
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Literal

import orjson

from mcpyard.gateway.upstream._base import Owner

if TYPE_CHECKING:
    from mcpyard.gateway._runtime import Handle

log = logging.getLogger("mcpyard.gateway")

Transport = Literal["streamable-http", "sse"]
_CLOSE = b""
_QUEUE_LIMIT = 256


class Session:
    __slots__ = ("_queue", "closed", "id", "last_seen", "member", "owner", "protocol",
                 "streams", "tasks", "transport", "used", "workspace")

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
        self.tasks: set[asyncio.Task[Any]] = set()
        self.streams = 0
        self.closed = False
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(_QUEUE_LIMIT)

    def push(self, message: Any) -> None:
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

    def spawn(self, coro: Any) -> None:
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
    def __init__(self, idle_seconds: float, on_change: Callable[[], None] | None = None) -> None:
        self.idle_seconds = idle_seconds
        self._sessions: dict[str, Session] = {}
        self._on_change = on_change or (lambda: None)

    def __len__(self) -> int:
        return len(self._sessions)

    def __iter__(self) -> Iterator[Session]:
        return iter(list(self._sessions.values()))

    def open(self, workspace: str, member: str, member_key: str, protocol: str | None,
             transport: Transport) -> Session:
        session = Session(workspace, member, member_key, protocol, transport)
        self._sessions[session.id] = session
        self._on_change()
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
        handles, session.used = session.used, set()
        await asyncio.gather(*(h.release(session.owner) for h in handles))

    def _forget(self, session: Session) -> None:
        self._sessions.pop(session.id, None)
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

    def hangup(self) -> None:
        """End every open stream now: a server shutting down waits for open responses."""
        for session in self._sessions.values():
            if session.streams:
                session.hangup()
