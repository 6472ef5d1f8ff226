"""The four findings of the interop issue, each as it was seen by a user:

1. the SDK 2.x client in its default ``auto`` mode (2026-07-28) calls tools and gets prompts
   of a stdio server;
2. a server that asks its client through the back-channel (SDK 2.x ``MCPServer``, the common
   style) works through the gateway for clients of both eras, over stdio and HTTP;
3. a stdio server restarted while idle is discovered again (its new tool list is served);
4. a reload tells each connected client about the lists that changed for it, once.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
from gwtools import NS, Gateway, member, run_gateway, serving, workspace
from prototools import client

from mcpyard.compiler.config import ServerConfig
from mcpyard.crypto import tokens

pytestmark = pytest.mark.anyio

HERE = Path(__file__).parent
BIN = Path(sys.executable).parent
TOKEN = tokens.new()
MODES = ["auto", "2026-07-28", "legacy"]


def stdio(slug: str, *command: str, **kw: Any) -> ServerConfig:
    return ServerConfig(slug=slug, name=slug, namespace=NS, mode="hosted", transport="stdio",
                        command=command, timeout_seconds=30, **kw)


def http(slug: str, url: str, **kw: Any) -> ServerConfig:
    return ServerConfig(slug=slug, name=slug, namespace=NS, mode="proxy",
                        transport="streamable-http", url=url, timeout_seconds=30, **kw)


@contextlib.asynccontextmanager
async def gateway(settings_for: Any, *servers: ServerConfig) -> AsyncIterator[Gateway]:
    config = workspace("w", list(servers), [member("alice", TOKEN)])
    async with run_gateway(settings_for([config])) as gw:
        await gw.wait_serving("w", *(s.slug for s in servers))
        yield gw


@pytest.mark.parametrize("mode", MODES)
async def test_every_client_mode_calls_a_stdio_server(settings_for: Any, mode: str) -> None:
    """Finding 1: the 2026-07-28 envelope must not reach a handshake-era upstream."""
    time_server = stdio("time", str(BIN / "mcp-server-time"), "--local-timezone", "UTC")
    notes = stdio("bc", sys.executable, str(HERE / "backchannel_app.py"))
    async with gateway(settings_for, time_server, notes) as gw, \
            client(gw.url("w"), TOKEN, mode) as c:
        now = await c.call_tool("time__get_current_time", {"timezone": "Europe/Paris"})
        assert not now.is_error, now
        assert json.loads(now.content[0].text)["timezone"] == "Europe/Paris"  # type: ignore[union-attr]
        prompt = await c.get_prompt("bc__ask", {"topic": "tea"})
        assert prompt.messages[0].content.text == "What about tea?"  # type: ignore[union-attr]
        read = await c.read_resource("mcpyard://bc/memo://backchannel/a")
        assert read.contents[0].text == "memo a"  # type: ignore[union-attr]


async def on_sampling(context: Any, params: types.CreateMessageRequestParams
                      ) -> types.CreateMessageResult:
    asked = params.messages[0].content.text  # type: ignore[union-attr]
    return types.CreateMessageResult(role="assistant", model="m",
                                     content=types.TextContent(text=f"<{asked}>"))


async def on_elicit(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
    if isinstance(params, types.ElicitRequestURLParams):
        return types.ElicitResult(action="accept")
    return types.ElicitResult(action="accept", content={"answer": "yes"})


async def on_roots(context: Any) -> types.ListRootsResult:
    return types.ListRootsResult(roots=[types.Root(uri="file:///work")])


CALLBACKS = {"sampling_callback": on_sampling, "elicitation_callback": on_elicit,
             "list_roots_callback": on_roots}


@pytest.fixture(scope="module")
def backchannel_url() -> Any:
    with serving(str(HERE / "backchannel_app.py")) as up:
        yield up.url


@pytest.mark.parametrize("transport", ["stdio", "http"])
@pytest.mark.parametrize("mode", MODES)
async def test_back_channel_servers_ask_clients_of_both_eras(
        settings_for: Any, backchannel_url: str, transport: str, mode: str) -> None:
    """Finding 2: a server in the back-channel style gets its answers whatever the client's
    era (a 2026-07-28 client answers input-required results the gateway makes of them)."""
    upstream = (stdio("bc", sys.executable, str(HERE / "backchannel_app.py"))
                if transport == "stdio" else http("bc", backchannel_url))
    async with gateway(settings_for, upstream) as gw, \
            client(gw.url("w"), TOKEN, mode, **CALLBACKS) as c:
        sampled = await c.call_tool("bc__sample", {"prompt": "hi"})
        elicited = await c.call_tool("bc__elicit", {"question": "ok?"})
        url = await c.call_tool("bc__elicit_url", {"url": "https://example.com/x"})
        roots = await c.call_tool("bc__roots", {})
        servers = gw.runtime.readiness()[1]["workspaces"]["w"]["servers"]
    assert [r.content[0].text for r in (sampled, elicited, url, roots)] == [  # type: ignore[union-attr]
        "sampled:<hi>", "elicited:accept:yes", "elicited-url:accept", "roots:file:///work"]
    assert servers["bc"]["era"] == "handshake"
