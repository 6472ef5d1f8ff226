"""Deeply nested JSON is refused at the edge: a JSON-RPC error naming the limit, a call
record, never a 500 and never a call forwarded upstream (where it broke the encoder, or hung
the client until its timeout)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from accounting import call_rows
from gwtools import (
    MCP_HEADERS,
    bearer,
    mcp_client,
    member,
    raw_initialize,
    run_gateway,
    server,
    workspace,
)
from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.shared.exceptions import MCPError

from mcpyard.crypto import tokens

pytestmark = pytest.mark.anyio

TOKEN = tokens.new()
MODERN = "2026-07-28"


def nested(levels: int) -> Any:
    value: Any = "deep"
    for i in range(levels):
        value = {"a": value} if i % 2 else [value]
    return value


def deep(levels: int) -> str:
    """``levels`` of nesting as JSON text (no encoder recurses that deep)."""
    opened = "".join("[" if i % 2 else '{"a":' for i in range(levels))
    return opened + '"deep"' + "".join("]" if i % 2 else "}" for i in reversed(range(levels)))


def call(levels: int, meta: str = "", batch: bool = False) -> bytes:
    text = ('{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"beta__echo",'
            f'{meta}"arguments":{{"text":{deep(levels)}}}}}}}')
    return (f"[{text}]" if batch else text).encode()


MODERN_META = ('"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",'
               '"io.modelcontextprotocol/clientCapabilities":{}},')


async def test_nesting_is_refused_at_the_edge(settings_for: Any, beta: Any,
                                              state_dir: Path) -> None:
    ws = workspace("eng", [server("beta", beta.url)], [member("alice", TOKEN)])
    async with run_gateway(settings_for([ws])) as gw, httpx.AsyncClient(timeout=60) as http:
        await gw.wait_serving("eng", "beta")
        url = gw.url("eng")
        sid = await raw_initialize(http, url, TOKEN)
        session = {**MCP_HEADERS, **bearer(TOKEN), "Mcp-Session-Id": sid,
                   "MCP-Protocol-Version": "2025-06-18"}
        for levels in (65, 200, 256, 512, 1000):
            r = await http.post(url, content=call(levels), headers=session)
            assert r.status_code == 400, (levels, r.text)
            error = r.json()["error"]
            assert r.json()["id"] == 7 and error["code"] == -32600
            assert "deeper than 64 levels" in error["message"]
        # The modern era and a batch are refused the same way.
        r = await http.post(url, headers={
            **MCP_HEADERS, **bearer(TOKEN), "MCP-Protocol-Version": MODERN,
            "Mcp-Method": "tools/call", "Mcp-Name": "beta__echo"},
            content=call(300, MODERN_META))
        assert r.status_code == 400 and "64 levels" in r.json()["error"]["message"]
        r = await http.post(url, content=call(300, batch=True), headers={
            **session, "MCP-Protocol-Version": "2025-03-26"})
        assert r.status_code == 400 and "64 levels" in r.json()["error"]["message"]
        # Beyond what the JSON parser takes at all: a parse error, still no 500.
        r = await http.post(url, content=b"[" * 5000 + b"]" * 5000, headers=session)
        assert r.status_code == 400 and r.json()["error"]["code"] == -32700
        # Within the limit the call goes through (the tool refuses a non-string itself).
        r = await http.post(url, content=call(50), headers=session)
        assert r.status_code == 200 and "error" not in r.json()

        # The official SDK clients get a JSON-RPC error, on /mcp and on the legacy /sse.
        async with mcp_client(url, TOKEN) as s:
            with pytest.raises(MCPError, match="deeper than 64 levels"):
                await s.call_tool("beta__echo", {"text": nested(200)})
            assert (await s.call_tool("beta__echo", {"text": "still fine"})).content
        async with sse_client(gw.url("eng", "sse"), headers=bearer(TOKEN)) as (read, write), \
                ClientSession(read, write) as s:
            await s.initialize()
            with pytest.raises(MCPError, match="deeper than 64 levels"):
                await s.call_tool("beta__echo", {"text": nested(200)})
            assert (await s.call_tool("beta__echo", {"text": "still fine"})).content

    refused = [r for r in call_rows(state_dir / "calls.db")
               if r["error"] and "64 levels" in r["error"]]
    assert len(refused) == 9, [(r["era"], r["method"]) for r in refused]
    assert {r["era"] for r in refused} == {"handshake", "modern", "legacy-sse"}
    assert all(r["outcome"] == "invalid_request" and r["member"] == "alice"
               and r["server"] is None for r in refused)


async def test_the_limit_is_configurable(settings_for: Any, beta: Any) -> None:
    ws = workspace("eng", [server("beta", beta.url)], [member("alice", TOKEN)])
    async with run_gateway(settings_for([ws], max_json_depth=8)) as gw, \
            httpx.AsyncClient(timeout=60) as http:
        await gw.wait_serving("eng", "beta")
        sid = await raw_initialize(http, gw.url("eng"), TOKEN)
        r = await http.post(gw.url("eng"), content=call(10), headers={
            **MCP_HEADERS, **bearer(TOKEN), "Mcp-Session-Id": sid})
        assert r.status_code == 400 and "deeper than 8 levels" in r.text
