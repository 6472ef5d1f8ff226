"""A server's requests outside any call, through the gateway, as a direct connection has them.

server-everything (TS SDK, its own streamable HTTP transport) asks for the client's roots right
after initialize and whenever the client says its roots changed, as a request on its
standalone GET stream, outside any call; its ``get-roots-list`` tool shows what it got. The
gateway keeps the GET stream of the member's upstream session and relays those requests to the
member's own session (its GET stream, or its HTTP+SSE stream); a 2026-07-28 client has no such
stream, so the question joins its call in progress (an input request in the call's result).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest
from gwtools import NS, Gateway, member, run_gateway, workspace
from mcp import Client
from mcp.client.sse import sse_client
from mcp.shared.exceptions import MCPDeprecationWarning
from prototools import client
from servers import check_installed, everything_http

from mcpyard.compiler.config import ServerConfig
from mcpyard.crypto import tokens
from mcpyard.gateway import _relay
from mcpyard.gateway.downstream import _streams
from mcpyard.gateway.downstream._sessions import Session

pytestmark = pytest.mark.anyio

TOKEN = tokens.new()
TOOL = "ev__get-roots-list"
DEADLINE = 60


class Roots:
    """The client's roots, and how often the server asked for them."""

    def __init__(self, *uris: str) -> None:
        self.uris = list(uris)
        self.asked = 0

    async def __call__(self, context: Any) -> types.ListRootsResult:
        self.asked += 1
        return types.ListRootsResult(roots=[types.Root(uri=u) for u in self.uris])


@contextlib.asynccontextmanager
async def everything_gateway(settings_for: Any, log: Path) -> AsyncIterator[Gateway]:
    check_installed()
    with log.open("wb") as err, everything_http(stderr=err) as url:
        server = ServerConfig(slug="ev", name="ev", namespace=NS, mode="proxy",
                              transport="streamable-http", url=url, timeout_seconds=DEADLINE)
        config = workspace("w", [server], [member("alice", TOKEN)])
        async with run_gateway(settings_for([config])) as gw:
            await gw.wait_serving("w", "ev")
            yield gw


@contextlib.asynccontextmanager
async def connect(gw: Gateway, way: str, **kw: Any) -> AsyncIterator[Client]:
    if way == "sse":
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with Client(sse_client(gw.url("w", "sse"), headers=headers), mode="legacy",
                          cache=None, **kw) as c:
            yield c
        return
    async with client(gw.url("w"), TOKEN, way, **kw) as c:
        yield c


def text(result: Any) -> str:
    assert not result.is_error, result
    return "".join(getattr(b, "text", "") for b in result.content)


async def roots_listed(c: Client, uri: str) -> str:
    """Call get-roots-list until it shows ``uri`` (the server stores the client's answer a
    moment after sending it)."""
    with anyio.fail_after(DEADLINE):
        while True:
            got = text(await c.call_tool(TOOL, {}))
            if uri in got:
                return got
            await anyio.sleep(0.1)


@pytest.mark.parametrize("way", ["legacy", "sse", "auto", "2026-07-28"])
async def test_roots_asked_outside_a_call_reach_the_member(settings_for: Any, tmp_path: Path,
                                                           way: str) -> None:
    roots = Roots("file:///first")
    async with everything_gateway(settings_for, tmp_path / "everything.log") as gw, \
            connect(gw, way, list_roots_callback=roots) as c:
        with anyio.fail_after(DEADLINE):
            first = text(await c.call_tool(TOOL, {}))
        assert "file:///first" in first, first
        assert roots.asked >= 1
        if c.protocol_version >= "2026":
            return  # no notifications from a 2026-07-28 client: its roots go with each call
        # The client's roots change: the gateway forwards the notification, the server asks
        # again (outside any call) and the member's client answers.
        asked = roots.asked
        roots.uris = ["file:///second"]
        with pytest.warns(MCPDeprecationWarning):
            await c.send_roots_list_changed()
        with anyio.fail_after(DEADLINE):
            while roots.asked == asked:
                await anyio.sleep(0.05)
        assert "file:///second" in await roots_listed(c, "file:///second")


async def test_a_client_without_a_stream_is_not_asked_outside_a_call(
        settings_for: Any, tmp_path: Path) -> None:
    """A handshake-era client that opened no GET stream (and has no call in progress) cannot
    be asked: the server gets a JSON-RPC error at once, not silence."""
    log = tmp_path / "everything.log"
    async with everything_gateway(settings_for, log) as gw, httpx2.AsyncClient(
            headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as http:
        sid = await _initialize_without_stream(http, gw.url("w"))
        # A first call opens the member's upstream session; the server asks for roots 350 ms
        # after initialize, when no call of this client is in progress (were the call still
        # running, its JSON response could not carry the question either).
        await _post(http, gw.url("w"), sid, {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                                             "params": {"name": "ev__echo",
                                                        "arguments": {"message": "hi"}}},
                    accept="application/json")
        with anyio.fail_after(DEADLINE):
            while f"{_REFUSED}: the client" not in log.read_text():
                await anyio.sleep(0.05)


async def _initialize_without_stream(http: httpx2.AsyncClient, url: str) -> str:
    response = await http.post(url, json={
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {"roots": {}},
                   "clientInfo": {"name": "t", "version": "1"}}},
        headers={"Accept": "application/json, text/event-stream"})
    assert response.status_code == 200, response.text
    sid = response.headers["mcp-session-id"]
    await _post(http, url, sid, {"jsonrpc": "2.0", "method": "notifications/initialized"})
    return sid


_REFUSED = "MCP error -32601"
"""How server-everything logs the gateway's refusal (the gateway's own discovery session is
refused alike, with "the gateway has no client": not this)."""


async def _post(http: httpx2.AsyncClient, url: str, sid: str, message: dict[str, Any],
                accept: str = "application/json, text/event-stream") -> None:
    response = await http.post(url, json=message, headers={
        "Accept": accept, "Mcp-Session-Id": sid,
        "MCP-Protocol-Version": "2025-11-25"})
    assert response.status_code in (200, 202), response.text


async def test_a_capability_the_client_did_not_declare_is_refused() -> None:
    """The upstream session declared what the member's client can answer; a request beyond
    it is refused by the gateway (the client never sees it), ping is answered."""
    session = Session("w", "alice", f"{NS}/alice", "2025-11-25", "streamable-http")
    session.streams = 1  # its GET stream is open: only the capability stands in the way
    standing = _relay.Standing(_streams.SessionStream(session), {"sampling": {}}, {},
                               (None, session))  # type: ignore[arg-type]
    refused = await standing.ask({"jsonrpc": "2.0", "id": 7, "method": "roots/list"})
    pong = await standing.ask({"jsonrpc": "2.0", "id": 8, "method": "ping"})
    assert refused == {"jsonrpc": "2.0", "id": 7, "error": {
        "code": -32601, "message": "the client did not declare the roots capability"}}
    assert pong == {"jsonrpc": "2.0", "id": 8, "result": {}}
    assert session.pending == {} and session._queue.empty()
