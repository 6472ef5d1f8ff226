"""One HTTP connection pool for every HTTP upstream of the gateway.

A gateway of 1,000 workspaces x 5 servers gave each upstream client its own
``aiohttp.ClientSession`` and connector: ~6 KiB of Python objects each, and more in the
allocator's arenas once they had been used (~37 KiB of RSS per server, measured with 2,000 dead
upstreams: ``BENCHMARKS.md``, "the cluster gateway"). Now there is one session and connector
per event loop (:class:`Pool`), created by the first client that needs it and closed with the
last one, and each upstream holds a :class:`Client`: its view of the pool.

- **Limits per upstream**, not per host: a client has at most ``POOL_LIMIT`` requests (so
  connections) of its own in flight; the others wait for one to end. Long-lived streams (the
  GET stream of a gateway or member session, a legacy SSE stream, ``subscriptions/listen``)
  are not counted: one upstream holding a stream per member must never starve its own
  requests, and many workspaces proxying one host must not share one limit.
- **A closed upstream's connections are released**: its idle keep-alive connections are
  closed at once (the others go back to the pool when their request ends, and expire after
  ``KEEPALIVE``). A broken connection (the server restarted) drops the idle connections to
  that origin too, so that new requests do not meet the dead ones (:meth:`Client.renew`).
- **No cookies**: the pool is shared by every upstream and every member, so it keeps no
  cookie jar (a cookie one server set must not travel to another, nor across members).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Generator, Mapping
from types import TracebackType
from typing import Any, Protocol

import aiohttp
from yarl import URL


class _Request(Protocol):
    """What aiohttp's ``get``/``post`` return (its own class for it is private): awaited, or
    entered with ``async with``."""

    def __await__(self) -> Generator[object, None, aiohttp.ClientResponse]: ...

    async def __aenter__(self) -> aiohttp.ClientResponse: ...

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None: ...


POOL_LIMIT = 100
"""Requests (so connections) of one upstream in flight at once, streams not counted."""
KEEPALIVE = 4.0
"""Below the idle timeout of common servers (uvicorn and Node close at 5 s), so a pooled
connection is never reused just as the server closes it: a POST is not retried."""

_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Pool] = (
    weakref.WeakKeyDictionary())


class Pool:
    """The one ``aiohttp.ClientSession`` of an event loop (see the module docstring)."""

    def __init__(self) -> None:
        connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, keepalive_timeout=KEEPALIVE)
        # No client-wide timeout: each request carries its own (asyncio.timeout).
        self.http = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=None),
            cookie_jar=aiohttp.DummyCookieJar())
        self.clients = 0

    def idle(self, url: URL) -> int:
        """Idle pooled connections to ``url``'s origin (what tests and the bench look at)."""
        return sum(len(conns) for _, conns in self._idle_of(url))

    def drop_idle(self, url: URL) -> None:
        """Close the idle pooled connections to ``url``'s origin."""
        conns = self._conns()
        for key, idle in self._idle_of(url):
            conns.pop(key, None)
            for proto, _ in idle:
                proto.close()

    # aiohttp's connection keys and idle lists are private (untyped here).
    def _idle_of(self, url: URL) -> list[tuple[Any, Any]]:
        host, port = url.host, url.port
        return [(key, idle) for key, idle in list(self._conns().items())
                if getattr(key, "host", None) == host and getattr(key, "port", None) == port]

    def _conns(self) -> dict[Any, Any]:
        # aiohttp keeps its idle connections by ConnectionKey in ``_conns`` and offers no public
        # way to close those of one host; without it (another aiohttp) they expire after
        # KEEPALIVE all the same.
        conns = getattr(self.http.connector, "_conns", None)
        return conns if isinstance(conns, dict) else {}


def client(url: URL, limit: int = POOL_LIMIT) -> Client:
    """A client of the running loop's pool for the upstream at ``url`` (created if needed)."""
    loop = asyncio.get_running_loop()
    pool = _pools.get(loop)
    if pool is None or pool.http.closed:
        pool = _pools[loop] = Pool()
    pool.clients += 1
    return Client(pool, url, limit)


def current() -> Pool | None:
    """The running loop's pool, if a client has one open."""
    return _pools.get(asyncio.get_running_loop())


class Client:
    """One upstream's view of the shared pool: its requests limited, its connections dropped
    when it closes. ``post``/``delete`` count against the limit; ``stream``/``get`` do not."""

    __slots__ = ("_closed", "_pool", "_slots", "_url")

    def __init__(self, pool: Pool, url: URL, limit: int) -> None:
        self._pool = pool
        self._url = url
        self._slots = asyncio.Semaphore(limit)
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def post(self, url: URL, *, data: bytes, headers: Mapping[str, str]) -> _Limited:
        return _Limited(self._slots, self._pool.http.post, url, data=data, headers=headers)

    def delete(self, url: URL, *, headers: Mapping[str, str]) -> _Limited:
        return _Limited(self._slots, self._pool.http.delete, url, headers=headers)

    def get(self, url: URL, **kwargs: Any) -> _Request:  # aiohttp's own keyword arguments
        """A long-lived GET stream (not counted against the limit)."""
        return self._pool.http.get(url, **kwargs)

    def stream(self, url: URL, *, data: bytes, headers: Mapping[str, str]) -> _Request:
        """A POST whose response is a long-lived stream (not counted against the limit)."""
        return self._pool.http.post(url, data=data, headers=headers)

    def renew(self) -> None:
        """A connection broke under us: most likely the server restarted, and the idle
        connections to it are dead too; new requests open fresh ones."""
        self._pool.drop_idle(self._url)

    async def close(self) -> None:
        """Release this upstream's idle connections; the last client closes the pool."""
        if self._closed:
            return
        self._closed = True
        pool = self._pool
        pool.drop_idle(self._url)
        pool.clients -= 1
        if pool.clients == 0:
            loop = asyncio.get_running_loop()
            if _pools.get(loop) is pool:
                del _pools[loop]
            await pool.http.close()


class _Limited:
    """``async with``: a slot of the client's limit, then the request; both released at exit."""

    __slots__ = ("_args", "_cm", "_kwargs", "_send", "_slots")

    def __init__(self, slots: asyncio.Semaphore, send: Callable[..., _Request], *args: object,
                 **kwargs: object) -> None:
        self._slots = slots
        self._send = send
        self._args = args
        self._kwargs = kwargs
        self._cm: _Request | None = None

    async def __aenter__(self) -> aiohttp.ClientResponse:
        await self._slots.acquire()
        try:
            self._cm = self._send(*self._args, **self._kwargs)
            return await self._cm.__aenter__()
        except BaseException:
            self._slots.release()
            raise

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        try:
            if self._cm is not None:
                await self._cm.__aexit__(kind, exc, tb)
        finally:
            self._slots.release()
