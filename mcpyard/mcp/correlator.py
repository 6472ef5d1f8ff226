"""Request-id correlation: what waits for the answer to each request sent on one channel.

Every client of a JSON-RPC channel (a stdio process, an SSE stream, the bridge's one child
session) numbers its requests and matches each answer back by its id. ``Pending`` keeps
whatever waits (a bridge call with its event queue); ``Correlator`` keeps futures.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from typing import Generic, TypeVar

from mcpyard.mcp.jsonrpc import JSONObject

T = TypeVar("T")


class Pending(Generic[T]):
    """Request id -> what waits for its answer. Ids are ints from ``ids`` (one counter per
    channel unless several channels share one), so an answer is found by ``type(id) is int``."""

    __slots__ = ("_ids", "_waiting")

    def __init__(self, ids: Iterator[int] | None = None) -> None:
        self._ids = ids if ids is not None else itertools.count(1)
        self._waiting: dict[int, T] = {}

    def next_id(self) -> int:
        return next(self._ids)

    def add(self, rid: int, waiter: T) -> None:
        self._waiting[rid] = waiter

    def pop(self, rid: object) -> T | None:
        """What waited for ``rid`` (an id from the wire: anything), no longer waiting."""
        return self._waiting.pop(rid, None) if type(rid) is int else None

    def values(self) -> list[T]:
        return list(self._waiting.values())

    def take_all(self) -> list[T]:
        """Everything that waits, no longer waiting (the channel closed)."""
        waiting, self._waiting = self._waiting, {}
        return list(waiting.values())

    def __len__(self) -> int:
        return len(self._waiting)


class Correlator(Pending["asyncio.Future[JSONObject]"]):
    """Futures for the answers of requests in flight."""

    __slots__ = ()

    def expect(self, rid: int) -> asyncio.Future[JSONObject]:
        """A future for the answer to ``rid``; ``discard(rid)`` when done with it."""
        future: asyncio.Future[JSONObject] = asyncio.get_running_loop().create_future()
        self.add(rid, future)
        return future

    def discard(self, rid: int) -> None:
        self._waiting.pop(rid, None)

    def resolve(self, message: JSONObject) -> bool:
        """Hand a response to whoever waits for its id; False when nobody does."""
        future = self.pop(message.get("id"))
        if future is None or future.done():
            return False
        future.set_result(message)
        return True

    def fail_all(self, error: BaseException) -> None:
        for future in self.take_all():
            if not future.done():
                future.set_exception(error)
