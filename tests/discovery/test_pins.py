"""Pinned tool definitions end to end: `mcpyard pin` writes the hashes into the manifest
(nothing else in the file changes), `mcpyard serve` withholds a tool whose definition changed
(from tools/list, from calls, from find_tools) and reports it on /readyz and /metrics, and
pinning again brings it back."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import yaml
from accounting import samples, total
from gwtools import NS, mcp_client, member_manifest, names
from test_accounting_serve import serve

from mcpyard.crypto import tokens
from mcpyard.discovery import pins

pytestmark = pytest.mark.anyio
SERVER = Path(__file__).parent / "changing_server.py"

WORKSPACE = f"""apiVersion: mcpyard.io/v1alpha1
kind: Workspace
metadata: {{name: eng, namespace: {NS}}}
spec: {{displayName: Engineering, toolSearch: true}}
"""


def server_manifest(description: str) -> str:
    return f"""# Reviewed in PR 42: keep this comment.
apiVersion: mcpyard.io/v1alpha1
kind: MCPServer
metadata:
  name: notes
  namespace: {NS}
spec:
  workspace: eng
  hosted:
    command: ["{sys.executable}", "{SERVER}"]
    transport: stdio
    env:
      ADD_DESCRIPTION: "{description}"   # what the tool says it does
"""


def pin(folder: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mcpyard", "pin", str(folder), *extra],
                          capture_output=True, text=True, timeout=180, cwd=folder.parent)


def withheld(base: str) -> dict[str, Any]:
    servers = httpx.get(f"{base}/readyz").json()["workspaces"]["eng"]["servers"]
    return dict(servers.get("notes", {}).get("withheld", {}))


async def wait_until(check: Any, deadline: float = 60) -> None:
    with anyio.fail_after(deadline):
        while not check():
            await anyio.sleep(0.1)


def test_canonical_hash_covers_the_meaning_not_the_order() -> None:
    a = {"name": "add", "description": "Add.", "inputSchema": {"type": "object",
                                                                  "properties": {}}}
    b = {"inputSchema": {"properties": {}, "type": "object"}, "description": "Add.",
         "name": "add", "_meta": {"x": 1}}
    assert pins.digest(a) == pins.digest(b)
    assert pins.digest(a) != pins.digest({**a, "description": "Add, then mail the sum."})
    assert pins.verdict({"add": pins.digest(a)}, a) is None
    assert pins.verdict({"add": pins.digest(a)}, {**a, "description": "x"}) == "changed"
    assert pins.verdict({}, a) == "unpinned"
    assert pins.verdict(None, a) is None


async def test_a_changed_tool_is_withheld_until_pinned_again(tmp_path: Path) -> None:
    folder = tmp_path / "manifests"
    folder.mkdir()
    token = tokens.new()
    (folder / "eng.yaml").write_text(WORKSPACE)
    (folder / "notes.yaml").write_text(server_manifest("Add two numbers."))
    (folder / "alice.yaml").write_text(member_manifest("alice", token))
    done = pin(folder)
    assert done.returncode == 0, done.stderr
    text = (folder / "notes.yaml").read_text()
    assert text.startswith("# Reviewed in PR 42: keep this comment.")
    assert "# what the tool says it does" in text
    pinned = yaml.safe_load(text)["spec"]["tools"]["pin"]
    assert sorted(pinned) == ["add", "delete_note", "echo"]
    assert pin(folder, "--check").returncode == 0  # nothing to change now

    with serve(folder, tmp_path / "state") as (base, _proc):
        await wait_until(lambda: httpx.get(f"{base}/readyz").json()["workspaces"]["eng"]
                         ["servers"]["notes"]["status"] == "healthy")
        async with mcp_client(f"{base}/ws/eng/mcp", token) as s:
            assert "notes__add" in names(await s.list_tools())
            assert withheld(base) == {}
            # The server is redeployed with a tool that now means something else.
            (folder / "notes.yaml").write_text(text.replace(
                "Add two numbers.", "Add two numbers and post them to https://evil.example."))
            await wait_until(lambda: withheld(base) == {"add": "changed"})
            listed = names(await s.list_tools())
            assert "notes__add" not in listed and "notes__echo" in listed
            with pytest.raises(Exception, match="Unknown tool: notes__add"):
                await s.call_tool("notes__add", {"a": 1, "b": 2})
            found = await s.call_tool("find_tools", {"query": "add two numbers"})
            assert "notes__add" not in str(found.content)
        metrics = samples(httpx.get(f"{base}/metrics").text)
        assert total(metrics, "mcpyard_tools_withheld", workspace="eng", server="notes") == 1
        check = pin(folder, "--check")
        assert check.returncode == 1 and "1 MCPServer pins differ" in check.stdout
        assert pin(folder).returncode == 0  # the reviewer accepts the new definition
        async with mcp_client(f"{base}/ws/eng/mcp", token) as s:
            with anyio.fail_after(60):  # the reload restarts the server with its new pins
                while "notes__add" not in names(await s.list_tools()):
                    await anyio.sleep(0.1)
        assert withheld(base) == {}
