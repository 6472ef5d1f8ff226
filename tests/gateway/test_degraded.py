"""One failing upstream never takes a workspace down."""

from __future__ import annotations

import socket
from typing import Any

import httpx
import pytest
from gwtools import mcp_client, member, names, run_gateway, server, text_of, workspace
from mcp.shared.exceptions import MCPError

from mcpyard.crypto import tokens

pytestmark = pytest.mark.anyio


async def test_a_down_server_drops_out_and_the_rest_serve(settings_for: Any, beta: Any) -> None:
    token = tokens.new()
    # a port bound but never listening refuses connections for as long as the test runs
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    nowhere = f"http://127.0.0.1:{hole.getsockname()[1]}/mcp?api_key=do-not-show"
    config = workspace("eng", [server("beta", beta.url), server("down", nowhere)],
                       [member("alice", token)])
    async with run_gateway(settings_for([config])) as gw, httpx.AsyncClient() as http:
        await gw.wait_serving("eng", "beta")
        await gw.wait_for(lambda: gw.runtime.live["eng"].handles["down"].status()["status"]
                          == "degraded")
        ready = await http.get(f"{gw.base_url}/readyz")
        async with mcp_client(gw.url("eng"), token) as client:
            listed = names(await client.list_tools())
            ok = await client.call_tool("beta__echo", {"text": "up"})
            with pytest.raises(MCPError) as failed:
                await client.call_tool("down__anything", {})
    hole.close()
    assert listed == ["beta__echo", "beta__hello"]
    assert text_of(ok) == "beta:up"
    assert failed.value.error.code == -32000
    assert "server down is unavailable" in failed.value.error.message
    assert "do-not-show" not in failed.value.error.message
    assert ready.status_code == 200
    detail = ready.json()["workspaces"]["eng"]
    assert detail["status"] == "degraded"
    assert detail["servers"]["down"]["status"] == "degraded"
    assert detail["servers"]["down"]["reason"]
    assert "do-not-show" not in ready.text
    assert detail["servers"]["beta"]["status"] == "healthy"
