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
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from gwtools import (
    NS,
    Gateway,
    command_server_manifest,
    member,
    member_manifest,
    run_gateway,
    serving,
    workspace,
    ws_manifest,
)
from prototools import client

from mcpyard.compiler.config import ServerConfig
from mcpyard.crypto import tokens
from mcpyard.gateway import Settings

pytestmark = pytest.mark.anyio

HERE = Path(__file__).parent
BIN = Path(sys.executable).parent
TOKEN, BOB = tokens.new(), tokens.new()
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


async def test_a_restarted_stdio_server_is_discovered_again(settings_for: Any,
                                                            tmp_path: Path) -> None:
    """Finding 3: a process that restarts while idle may serve other tools; the gateway
    lists and routes the new ones without waiting for a reload."""
    listing = tmp_path / "tools.txt"
    listing.write_text("first\n")
    upstream = stdio("ls", sys.executable, str(HERE / "listing_app.py"), str(listing))
    async with gateway(settings_for, upstream) as gw, client(gw.url("w"), TOKEN, "legacy") as c:
        assert [t.name for t in (await c.list_tools()).tools] == ["ls__first"]
        listing.write_text("first\nsecond\n")
        handle = gw.runtime.live["w"].handles["ls"]
        pid = handle.upstream.pid  # type: ignore[union-attr]
        os.kill(pid, signal.SIGKILL)
        await gw.wait_for(lambda: "ls__second" in gw.runtime.live["w"].table.by_key)
        assert [t.name for t in (await c.list_tools()).tools] == ["ls__first", "ls__second"]
        second = await c.call_tool("ls__second", {})
        assert second.content[0].text == "second"  # type: ignore[union-attr]
        servers = gw.runtime.readiness()[1]["workspaces"]["w"]["servers"]
        assert servers["ls"]["tools"] == 2


def _manifests(root: Path, bob_allow: str, env: str = "a", alice_deny: str = "") -> None:
    (root / "workspace.yaml").write_text(ws_manifest("w"))
    (root / "bc.yaml").write_text(
        command_server_manifest("bc", [sys.executable, str(HERE / "backchannel_app.py")],
                                workspace="w") + f"    env: {{MARK: {env}}}\n")
    (root / "alice.yaml").write_text(member_manifest(
        "alice", TOKEN, workspace="w", extra=f"  access: {{deny: [{alice_deny}]}}\n"))
    (root / "bob.yaml").write_text(member_manifest(
        "bob", BOB, workspace="w", extra=f"  access: {{allow: [{bob_allow}]}}\n"))


async def test_a_reload_tells_each_client_what_changed_for_it_once(state_dir: Path,
                                                                   tmp_path: Path) -> None:
    """Finding 4: list_changed goes once, and only to the members whose view changed.

    Notifications travel on each client's own stream in order, so the last one a client hears
    shows that none came before it that should not have."""
    root = tmp_path / "manifests"
    root.mkdir()
    _manifests(root, '"bc__echo"')
    heard: dict[str, list[str]] = {"alice": [], "bob": []}
    news = {"event": anyio.Event()}

    def collect(who: str) -> Any:
        async def on_message(message: Any) -> None:
            method = getattr(message, "method", "")
            if isinstance(method, str) and method.endswith("/list_changed"):
                heard[who].append(method.split("/")[1])
                news["event"].set()
                news["event"] = anyio.Event()
        return on_message

    async def hear(who: str, count: int) -> None:
        with anyio.fail_after(60):
            while len(heard[who]) < count:
                await news["event"].wait()

    settings = Settings(manifests=root, state_dir=state_dir, reload_debounce_ms=50)
    async with run_gateway(settings) as gw:
        await gw.wait_serving("w", "bc")
        async with client(gw.url("w"), TOKEN, "legacy", message_handler=collect("alice")), \
                client(gw.url("w"), BOB, "legacy", message_handler=collect("bob")):
            # Bob gains a tool: only bob hears, and only of tools.
            _manifests(root, '"bc__echo", "bc__sample"')
            await hear("bob", 1)
            # The server restarts with another environment and serves the same lists: nobody
            # hears anything (its lists stay served while it restarts).
            old = gw.runtime.live["w"].handles["bc"]
            _manifests(root, '"bc__echo", "bc__sample"', env="b")

            def restarted() -> bool:
                handle = gw.runtime.live["w"].handles["bc"]
                return handle is not old and handle.up and not handle.provisional

            await gw.wait_for(restarted)
            # Bob gains the prompts and resources: bob hears of them once each.
            _manifests(root, '"bc__*", "mcpyard://bc/*"', env="b")
            await hear("bob", 4)
            # Alice loses a tool: the first (and only) news alice hears.
            _manifests(root, '"bc__*", "mcpyard://bc/*"', env="b", alice_deny='"bc__echo"')
            await hear("alice", 1)
    assert heard == {"alice": ["tools"], "bob": ["tools", "tools", "prompts", "resources"]}
