"""Real stdio servers behind a real `mcpyard bridge`, reached by the official SDK client over
streamable HTTP, in both protocol eras."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import mcp.client.session
import mcp_types as types
import pytest
from bridgetools import DEMO, INTERACTIVE, TIME, Bridge
from mcp.client import Client
from mcp.shared.exceptions import MCPDeprecationWarning

pytestmark = pytest.mark.anyio

Make = Callable[..., Bridge]
ERAS = [pytest.param("legacy", id="handshake"), pytest.param("2026-07-28", id="modern")]


def text(result: Any) -> str:
    return "".join(c.text for c in result.content if isinstance(c, types.TextContent))


async def test_time_server(bridge_for: Make) -> None:
    bridge = bridge_for(TIME)
    async with Client(bridge.url, mode="legacy") as client:
        assert client.server_info is not None and client.server_info.name == "mcp-time"
        names = {t.name for t in (await client.list_tools()).tools}
        assert {"get_current_time", "convert_time"} <= names
        result = await client.call_tool("get_current_time", {"timezone": "UTC"})
        assert not result.is_error
        assert json.loads(text(result))["timezone"] == "UTC"


@pytest.mark.parametrize("mode", ERAS)
async def test_demo_server(bridge_for: Make, mode: str) -> None:
    bridge = bridge_for(DEMO)
    async with Client(bridge.url, mode=mode) as client:
        tools = [t.name for t in (await client.list_tools()).tools]
        assert tools == ["echo", "add", "word_count", "fail", "whoami"]
        assert text(await client.call_tool("echo", {"text": "hi"})) == "hi"
        assert text(await client.call_tool("add", {"a": 2, "b": 3})) == "5"
        failed = await client.call_tool("fail", {"message": "boom"})
        assert failed.is_error and "boom" in text(failed)
        resource = await client.read_resource("demo://readme")
        assert "mcpyard demo server" in resource.contents[0].text  # type: ignore[union-attr]
        prompt = await client.get_prompt("summarize", {"text": "a b c"})
        assert "a b c" in prompt.messages[0].content.text  # type: ignore[union-attr]
        assert (await client.list_resources()).resources[0].uri == "demo://readme"
        assert client.server_capabilities.completions is None  # the child offers none


async def test_auto_mode_discovers_the_modern_era(bridge_for: Make) -> None:
    bridge = bridge_for(DEMO)
    async with Client(bridge.url) as client:
        assert client.protocol_version == "2026-07-28"
        assert client.session.discover_result is not None
        assert text(await client.call_tool("echo", {"text": "auto"})) == "auto"


@pytest.mark.parametrize("version", ["2025-03-26", "2025-06-18", "2025-11-25"])
async def test_handshake_versions(
    bridge_for: Make, monkeypatch: pytest.MonkeyPatch, version: str
) -> None:
    monkeypatch.setattr(mcp.client.session, "LATEST_HANDSHAKE_VERSION", version)
    bridge = bridge_for(DEMO)
    async with Client(bridge.url, mode="legacy") as client:
        assert client.protocol_version == version
        # The child's own identity, not the bridge's.
        info = client.server_info
        assert info is not None and (info.name, info.version) == ("mcpyard-demo", "1.0.0")
        assert text(await client.call_tool("word_count", {"text": "one two"})) == "2"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MCPDeprecationWarning)  # ping is handshake-era only
            await client.send_ping()


async def test_two_concurrent_clients(bridge_for: Make) -> None:
    bridge = bridge_for(DEMO)
    seen: dict[str, list[str]] = {"a": [], "b": []}

    async def use(name: str, mode: str) -> None:
        async with Client(bridge.url, mode=mode) as client:
            for i in range(20):
                seen[name].append(text(await client.call_tool("echo", {"text": f"{name}{i}"})))

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            tg.start_soon(use, "a", "legacy")
            tg.start_soon(use, "b", "2026-07-28")
    assert seen == {n: [f"{n}{i}" for i in range(20)] for n in seen}


@pytest.mark.parametrize("mode", ERAS)
async def test_progress_and_logs_reach_the_caller(bridge_for: Make, mode: str) -> None:
    bridge = bridge_for(INTERACTIVE)
    progress: list[tuple[float, float | None, str | None]] = []
    logs: list[Any] = []

    async def on_progress(p: float, total: float | None, message: str | None) -> None:
        progress.append((p, total, message))

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logs.append(params.data)

    async with Client(bridge.url, mode=mode, logging_callback=on_log, log_level="info") as client:
        result = await client.call_tool("steps", {"n": 3}, progress_callback=on_progress)
    assert text(result) == "3 steps"
    assert progress == [(1, 3, "step 1"), (2, 3, "step 2"), (3, 3, "step 3")]
    assert logs == ["did 3 steps"]


@pytest.mark.parametrize("mode", ERAS)
async def test_elicitation_is_relayed_to_the_caller(bridge_for: Make, mode: str) -> None:
    bridge = bridge_for(INTERACTIVE)
    asked: list[str] = []

    async def on_elicit(ctx: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"answer": "42"})

    async with Client(bridge.url, mode=mode, elicitation_callback=on_elicit) as client:
        result = await client.call_tool("ask", {"question": "the answer?"})
    assert asked == ["the answer?"]
    assert text(result) == "answer: 42"


async def test_unknown_session_and_plain_http(bridge_for: Make) -> None:
    bridge = bridge_for(DEMO)
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    headers = {
        "accept": "application/json, text/event-stream",
        "mcp-protocol-version": "2025-06-18",
    }
    async with httpx.AsyncClient(base_url=bridge.base) as http:
        r = await http.post("/mcp", json=ping, headers={**headers, "mcp-session-id": "nope"})
        assert r.status_code == 404
        r = await http.post("/mcp", json=ping, headers=headers)
        assert r.status_code == 400
        r = await http.post("/mcp", content=b"{", headers=headers)
        assert r.status_code == 400 and r.json()["error"]["code"] == -32700
        assert (await http.get("/healthz")).status_code == 200
        assert (await http.get("/readyz")).text == "ready"


async def test_modern_requests_are_checked_as_the_gateway_checks_them(bridge_for: Make) -> None:
    bridge = bridge_for(DEMO)
    meta = {"io.modelcontextprotocol/protocolVersion": "2099-01-01",
            "io.modelcontextprotocol/clientCapabilities": {}}
    listing = {"jsonrpc": "2.0", "id": 7, "method": "tools/list", "params": {"_meta": meta}}
    headers = {"accept": "application/json, text/event-stream",
               "mcp-protocol-version": "2099-01-01", "mcp-method": "tools/list"}
    async with httpx.AsyncClient(base_url=bridge.base) as http:
        r = await http.post("/mcp", json=listing, headers=headers)
        assert r.status_code == 400
        assert r.json()["error"]["code"] == -32022
        assert r.json()["error"]["data"] == {"supported": ["2026-07-28"],
                                             "requested": "2099-01-01"}
        no_envelope = {"jsonrpc": "2.0", "id": 8, "method": "tools/list"}
        r = await http.post("/mcp", json=no_envelope,
                            headers={**headers, "mcp-protocol-version": "2026-07-28"})
        assert r.status_code == 400 and r.json()["error"]["code"] == -32602
        meta["io.modelcontextprotocol/protocolVersion"] = "2026-07-28"
        r = await http.post("/mcp", json=listing,
                            headers={**headers, "mcp-protocol-version": "2026-07-28"})
        assert r.status_code == 200
        result = r.json()["result"]
        assert (result["resultType"], result["ttlMs"], result["cacheScope"]) == (
            "complete", 0, "private")
        assert result["tools"]
