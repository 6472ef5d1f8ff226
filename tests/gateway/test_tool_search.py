"""Tool search through `mcpyard serve`: find_tools ranks only what the member may call, and
call_tool walks the same access check, limits and call records as a direct call. Real stdio
servers (the demo server and mcp-server-time from PyPI), the official SDK as the client."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from accounting import call_rows
from gwtools import NS, mcp_client, member_manifest, names, text_of
from test_accounting_serve import serve, stop, wait_healthy

from mcpyard.crypto import tokens

pytestmark = pytest.mark.anyio

TIME = [sys.executable, "-c", "from mcp_server_time import main; main()"]


def workspace(tool_search: str) -> str:
    return f"""apiVersion: mcpyard.io/v1alpha1
kind: Workspace
metadata: {{name: eng, namespace: {NS}}}
spec: {{displayName: Engineering, plan: pro, toolSearch: {tool_search}}}
"""


def stdio_server(name: str, command: list[str]) -> str:
    return f"""apiVersion: mcpyard.io/v1alpha1
kind: MCPServer
metadata: {{name: {name}, namespace: {NS}}}
spec:
  workspace: eng
  hosted: {{command: {json.dumps(command)}, transport: stdio}}
"""


def found(result: Any) -> list[dict[str, Any]]:
    assert not result.is_error, text_of(result)
    text = text_of(result)
    return [] if text.startswith("No tool") else list(json.loads(text)["tools"])


def folder_with(tmp_path: Path, tool_search: str) -> tuple[Path, str, str]:
    folder = tmp_path / "manifests"
    folder.mkdir()
    alice, bob = tokens.new(), tokens.new()
    (folder / "eng.yaml").write_text(workspace(tool_search))
    (folder / "demo.yaml").write_text(stdio_server("demo", [sys.executable, "-m",
                                                            "mcpyard.demo"]))
    (folder / "time.yaml").write_text(stdio_server("time", TIME))
    (folder / "alice.yaml").write_text(member_manifest("alice", alice))
    (folder / "bob.yaml").write_text(member_manifest(
        "bob", bob, extra="  access: {allow: ['*'], deny: ['time__*']}\n"))
    return folder, alice, bob


async def test_find_tools_ranks_what_the_member_may_call_and_call_tool_is_a_call(
        tmp_path: Path) -> None:
    folder, alice, bob = folder_with(tmp_path, "true")
    with serve(folder, tmp_path / "state") as (base, proc):
        wait_healthy(base, "demo", "time", deadline=60)
        url = f"{base}/ws/eng/mcp"
        async with mcp_client(url, alice) as s:
            listed = names(await s.list_tools())
            assert "find_tools" in listed and "call_tool" in listed
            assert "demo__add" in listed and "time__convert_time" in listed
            hits = found(await s.call_tool("find_tools", {
                "query": "convert a time from one timezone to another", "limit": 3}))
            assert hits[0]["name"] == "time__convert_time"
            assert "timezone" in json.dumps(hits[0]["inputSchema"])
            assert len(hits) <= 3
            added = await s.call_tool("call_tool", {"name": "demo__add",
                                                    "arguments": {"a": 2, "b": 3}})
            assert not added.is_error and text_of(added) == "5"
            bad = await s.call_tool("find_tools", {"query": "  "})
            assert bad.is_error and "needs a query" in text_of(bad)
        async with mcp_client(url, bob) as s:
            hits = found(await s.call_tool("find_tools", {"query": "timezone current time"}))
            assert all(not h["name"].startswith("time__") for h in hits), hits
            # Denied through call_tool exactly like a direct call: the tool "does not exist".
            with pytest.raises(Exception, match="Unknown tool: time__get_current_time"):
                await s.call_tool("call_tool", {"name": "time__get_current_time",
                                                "arguments": {"timezone": "UTC"}})
        stop(proc)  # the call log is complete once serve stopped
    rows = call_rows(tmp_path / "state" / "calls.db")
    calls = [(r["member"], r["target"], r["server"], r["outcome"]) for r in rows
             if r["method"] == "tools/call"]
    assert ("alice", "demo__add", "demo", "ok") in calls
    assert ("bob", "time__get_current_time", None, "denied") in calls


async def test_tool_search_only_lists_two_tools_and_follows_a_reload(tmp_path: Path) -> None:
    folder, alice, _bob = folder_with(tmp_path, "only")
    with serve(folder, tmp_path / "state") as (base, _proc):
        wait_healthy(base, "demo", "time", deadline=60)
        url = f"{base}/ws/eng/mcp"
        async with mcp_client(url, alice) as s:
            assert names(await s.list_tools()) == ["call_tool", "find_tools"]
            hits = found(await s.call_tool("find_tools", {"query": "count the words of a text"}))
            assert hits[0]["name"] == "demo__word_count"
            counted = await s.call_tool("call_tool", {"name": "demo__word_count",
                                                      "arguments": {"text": "one two three"}})
            assert text_of(counted) == "3"
            (folder / "eng.yaml").write_text(workspace("false"))
            with anyio.fail_after(60):
                while "find_tools" in (listed := names(await s.list_tools())):
                    await anyio.sleep(0.1)
            assert "demo__word_count" in listed and "call_tool" not in listed
        metrics = httpx.get(f"{base}/metrics").text
        assert 'tool="demo__word_count"' in metrics
