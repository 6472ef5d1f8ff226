"""The gateway's one HTTP connection pool (``upstream/_pool.py``): requests limited per
upstream, not per host; a closed upstream's connections released; one pool for every
upstream, none held by a server nobody asked. Real aiohttp servers on loopback, real MCP
servers for the upstream clients."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator

import anyio
import pytest
from aiohttp import web
from uphelpers import HttpServer, Vault, config, opened
from yarl import URL

from mcpyard.gateway import upstream
from mcpyard.gateway.upstream import _pool

pytestmark = pytest.mark.anyio


class Origin:
    """A loopback HTTP server that counts the requests in flight per path and keeps the
    transports of its connections; ``/slow`` answers once ``gate`` is set."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.inflight: Counter[str] = Counter()
        self.most: Counter[str] = Counter()
        self.transports: list[asyncio.BaseTransport] = []
        self.url = URL()

    async def handle(self, request: web.Request) -> web.Response:
        path = request.path
        if request.transport is not None and request.transport not in self.transports:
            self.transports.append(request.transport)
        self.inflight[path] += 1
        self.most[path] = max(self.most[path], self.inflight[path])
        try:
            if path.startswith("/slow"):
                await self.gate.wait()
            return web.json_response({"ok": path})
        finally:
            self.inflight[path] -= 1

    def open_connections(self) -> int:
        return sum(1 for t in self.transports if not t.is_closing())


@contextlib.asynccontextmanager
async def origin() -> AsyncIterator[Origin]:
    served = Origin()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", served.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    served.url = URL(f"http://{host}:{port}")
    try:
        yield served
    finally:
        served.gate.set()
        await runner.cleanup()


async def post(client: _pool.Client, url: URL) -> object:
    async with client.post(url, data=b"{}", headers={"Content-Type": "application/json"}) as r:
        return await r.json()


async def test_requests_are_limited_per_upstream_not_per_host() -> None:
    async with origin() as served:
        slow, fast = served.url / "slow", served.url / "fast"
        a, b = _pool.client(slow, limit=2), _pool.client(fast, limit=2)
        try:
            with anyio.fail_after(30):
                held = [asyncio.create_task(post(a, slow)) for _ in range(5)]
                while served.inflight["/slow"] < 2:
                    await asyncio.sleep(0.01)
                # Upstream a has its 2 requests out; b, on the same host, is not held by them.
                assert await post(b, fast) == {"ok": "/fast"}
                assert served.inflight["/slow"] == 2
                assert not any(task.done() for task in held)
                served.gate.set()
                assert await asyncio.gather(*held) == [{"ok": "/slow"}] * 5
            assert served.most["/slow"] == 2
            # One pool carried both.
            pool = _pool.current()
            assert pool is not None and pool.clients == 2
        finally:
            await a.close()
            await b.close()
        assert _pool.current() is None


async def test_a_closed_upstream_releases_its_connections() -> None:
    async with origin() as one, origin() as two:
        a, b = _pool.client(one.url / "mcp"), _pool.client(two.url / "mcp")
        try:
            with anyio.fail_after(30):
                await post(a, one.url / "mcp")
                await post(b, two.url / "mcp")
                pool = _pool.current()
                assert pool is not None
                assert pool.idle(one.url) == 1 and pool.idle(two.url) == 1
                await a.close()
                # a's keep-alive connection is closed now, not when it would expire; b keeps
                # its own.
                assert pool.idle(one.url) == 0 and pool.idle(two.url) == 1
                while one.open_connections():
                    await asyncio.sleep(0.01)
                assert two.open_connections() == 1
                assert await post(b, two.url / "mcp") == {"ok": "/mcp"}
        finally:
            await a.close()
            await b.close()
        # The last client closed the pool, and with it b's connection.
        assert _pool.current() is None
        with anyio.fail_after(30):
            while two.open_connections():
                await asyncio.sleep(0.01)


async def test_upstreams_share_the_pool_and_a_server_nobody_asked_holds_none(
    stateless_json: HttpServer,
) -> None:
    idle = upstream.create(config(slug="idle", url=stateless_json.url), secrets=Vault(),
                           on_notification=_ignore)
    assert _pool.current() is None  # created, never asked: no pool, no connection
    async with opened(config(slug="one", url=stateless_json.url)) as (one, _):
        async with opened(config(slug="two", url=stateless_json.url)) as (two, _):
            with anyio.fail_after(20):
                await one.request("tools/list", None, owner=None)
                await two.request("tools/list", None, owner=None)
            pool = _pool.current()
            assert pool is not None and pool.clients == 2
        assert pool.clients == 1
    assert _pool.current() is None
    await idle.close()


async def _ignore(slug: str, message: dict[str, object]) -> None:
    """No notification matters here."""
