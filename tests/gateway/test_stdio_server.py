"""A real stdio server from PyPI (mcp-server-time) behind the gateway, next to an HTTP one."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from gwtools import NS, mcp_client, member, names, run_gateway, server, text_of, workspace

from mcpyard.compiler.config import ServerConfig
from mcpyard.crypto import tokens

pytestmark = pytest.mark.anyio

TIME = shutil.which("mcp-server-time") or str(Path(sys.executable).parent / "mcp-server-time")


async def test_stdio_and_http_servers_in_one_workspace(settings_for: Any, beta: Any) -> None:
    token = tokens.new()
    clock = ServerConfig(slug="time", name="time", namespace=NS, mode="hosted",
                         transport="stdio", command=(TIME, "--local-timezone", "UTC"))
    config = workspace("eng", [clock, server("beta", beta.url)], [member("alice", token)])
    async with run_gateway(settings_for([config])) as gw:
        await gw.wait_serving("eng", "time", "beta")
        async with mcp_client(gw.url("eng"), token) as client:
            listed = names(await client.list_tools())
            now = await client.call_tool("time__get_current_time", {"timezone": "Europe/Paris"})
            hello = await client.call_tool("beta__hello", {"name": "t"})
    assert listed == ["beta__echo", "beta__hello", "time__convert_time",
                      "time__get_current_time"]
    assert json.loads(text_of(now))["timezone"] == "Europe/Paris"
    assert text_of(hello) == "hello t"
