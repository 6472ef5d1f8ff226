"""The legacy HTTP+SSE transport, end to end with the official SDK's SSE client."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from gwtools import bearer, member, names, run_gateway, server, text_of, workspace
from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.shared.exceptions import MCPError

from mcpyard.crypto import tokens

pytestmark = pytest.mark.anyio


async def test_sse_client_end_to_end(settings_for: Any, alpha: Any, beta: Any) -> None:
    token, other = tokens.new(), tokens.new()
    config = workspace("eng", [server("alpha", alpha.url, secret=True), server("beta", beta.url)],
                       [member("alice", token, deny=("alpha__fail",)), member("bob", other)])
    async with run_gateway(settings_for([config])) as gw:
        await gw.wait_serving("eng", "alpha", "beta")
        sessions: list[str] = []
        async with sse_client(gw.url("eng", "sse"), headers=bearer(token),
                              on_session_created=sessions.append) as streams, \
                ClientSession(streams[0], streams[1]) as client:
            init = await client.initialize()
            listed = names(await client.list_tools())
            called = await client.call_tool("beta__hello", {"name": "sse"})
            with pytest.raises(MCPError) as hidden:
                await client.call_tool("alpha__fail", {"message": "x"})
            # another member cannot post into this session
            async with httpx.AsyncClient() as http:
                r = await http.post(f"{gw.url('eng', 'messages')}?sessionId={sessions[0]}",
                                    headers=bearer(other),
                                    json={"jsonrpc": "2.0", "id": 99, "method": "ping"})
            assert r.status_code == 404
            assert len(gw.runtime.sessions) == 1
        await gw.wait_for(lambda: len(gw.runtime.sessions) == 0)
    assert init.server_info.name == "mcpyard"
    assert "alpha__fail" not in listed and "beta__hello" in listed
    assert text_of(called) == "hello sse"
    assert hidden.value.error.message == "Unknown tool: alpha__fail"
