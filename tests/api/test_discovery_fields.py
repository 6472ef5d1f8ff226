"""Workspace.spec.toolSearch takes true, false or "only"; MCPServer.spec.tools.pin takes
sha256 hashes; both reach the compiled configuration."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from mcpyard import compiler
from mcpyard.api.v1alpha1 import MCPServer, Workspace

HASH = "sha256:" + "ab" * 32


def workspace(tool_search: Any) -> dict[str, Any]:
    return {"apiVersion": "mcpyard.io/v1alpha1", "kind": "Workspace",
            "metadata": {"name": "eng", "namespace": "t"}, "spec": {"toolSearch": tool_search}}


@pytest.mark.parametrize("value", [True, False, "only"])
def test_tool_search_accepts_its_three_values(value: Any) -> None:
    assert Workspace.model_validate(workspace(value)).spec.tool_search == value


@pytest.mark.parametrize("value", ["yes", "ONLY", 1])
def test_tool_search_refuses_anything_else(value: Any) -> None:
    with pytest.raises(ValidationError, match=r"tool_?[sS]earch"):
        Workspace.model_validate(workspace(value))


def server(pin: Any) -> dict[str, Any]:
    return {"apiVersion": "mcpyard.io/v1alpha1", "kind": "MCPServer",
            "metadata": {"name": "gh", "namespace": "t"},
            "spec": {"workspace": "eng", "proxy": {"url": "https://mcp.example.com/mcp"},
                     "tools": {"pin": pin}}}


def test_pin_takes_sha256_hashes_and_reaches_the_config() -> None:
    resources = [Workspace.model_validate(workspace("only")),
                 MCPServer.model_validate(server({"create_issue": HASH}))]
    out = compiler.compile(resources, now=datetime(2026, 1, 1, tzinfo=UTC), catalog={},
                           target="local")
    config = out.workspaces["eng"]
    assert config.tool_search == "only"
    assert config.servers[0].tools.pin == {"create_issue": HASH}
    with pytest.raises(ValidationError, match="pin"):
        MCPServer.model_validate(server({"create_issue": "md5:abc"}))
