"""resources.subscribe is advertised only where a server of the workspace offers it, and a
subscription goes to the server of the URI, or is refused when that server does not offer it.

Real servers: server-everything (npm; offers subscribe, and its toggle-subscriber-updates tool
makes it announce an update of each subscribed resource) and the SDK 2.x back-channel server
(resources, no subscribe).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import mcp_types as types
import pytest
from gwtools import NS, Gateway, member, run_gateway, workspace
from mcp.shared.exceptions import MCPError
from prototools import client, quiet_deprecated
from servers import HERE, NODE, NPM, check_installed

from mcpyard.compiler.config import ServerConfig
from mcpyard.crypto import tokens

pytestmark = pytest.mark.anyio

TOKEN = tokens.new()
MEMO = "mcpyard://bc/memo://backchannel/a"
MODERN = "2026-07-28"


def stdio(slug: str, *command: str) -> ServerConfig:
    return ServerConfig(slug=slug, name=slug, namespace=NS, mode="hosted", transport="stdio",
                        command=command, timeout_seconds=30)


EVERYTHING = stdio("ev", str(NODE), str(NPM / "server-everything" / "dist" / "index.js"), "stdio")
BACKCHANNEL = stdio("bc", sys.executable, str(HERE / "backchannel_app.py"))


@contextlib.asynccontextmanager
async def gateway(settings_for: Any, *servers: ServerConfig) -> AsyncIterator[Gateway]:
    check_installed()
    config = workspace("w", list(servers), [member("alice", TOKEN)])
    async with run_gateway(settings_for([config])) as gw:
        await gw.wait_serving("w", *(s.slug for s in servers))
        yield gw


async def test_no_subscribe_is_advertised_when_no_server_offers_it(settings_for: Any) -> None:
    async with gateway(settings_for, BACKCHANNEL) as gw:
        async with client(gw.url("w"), TOKEN, "legacy") as c:
            resources = c.server_capabilities.resources
            assert resources is not None  # it serves resources, just not subscriptions
            assert not resources.subscribe
            read = await c.read_resource(MEMO)
            assert read.contents[0].text == "memo a"  # type: ignore[union-attr]
        # a 2026-07-28 client reads the same capabilities from server/discover
        async with httpx.AsyncClient() as http:
            r = await http.post(gw.url("w"), json={
                "jsonrpc": "2.0", "id": 1, "method": "server/discover",
                "params": {"_meta": {"io.modelcontextprotocol/protocolVersion": MODERN,
                                     "io.modelcontextprotocol/clientCapabilities": {}}},
            }, headers={"Authorization": f"Bearer {TOKEN}", "MCP-Protocol-Version": MODERN,
                        "Mcp-Method": "server/discover",
                        "Accept": "application/json, text/event-stream",
                        "Content-Type": "application/json"})
        assert r.status_code == 200, r.text
        assert r.json()["result"]["capabilities"]["resources"] == {
            "listChanged": True, "subscribe": False}


async def test_subscriptions_go_to_the_server_that_offers_them(settings_for: Any) -> None:
    updates: list[str] = []
    updated = anyio.Event()

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ResourceUpdatedNotification):
            updates.append(str(message.params.uri))
            updated.set()

    async with gateway(settings_for, EVERYTHING, BACKCHANNEL) as gw, \
            client(gw.url("w"), TOKEN, "legacy", message_handler=on_message) as c:
        resources = c.server_capabilities.resources
        assert resources is not None and resources.subscribe is True
        listed = [str(r.uri) for r in (await c.list_resources()).resources]
        uri = next(u for u in listed if u.startswith("mcpyard://ev/"))
        await c.call_tool("ev__echo", {"message": "hi"})  # opens the session's GET stream
        with quiet_deprecated():
            await c.subscribe_resource(uri)
        started = await c.call_tool("ev__toggle-subscriber-updates", {})
        assert not started.is_error, started
        with anyio.fail_after(30):
            await updated.wait()
        assert updates[0] == uri  # under the workspace's URI, to the session that subscribed

        with pytest.raises(MCPError) as refused, quiet_deprecated():
            await c.subscribe_resource(MEMO)
        assert refused.value.error.code == -32601
        assert refused.value.error.message == (
            f"Method not found: server bc does not offer resources/subscribe, so {MEMO} "
            "cannot be subscribed to")
        with quiet_deprecated():
            await c.unsubscribe_resource(uri)
