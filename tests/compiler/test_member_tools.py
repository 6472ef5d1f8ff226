"""A Member's status names the tools it may use (capped), and every workspace configuration
carries the source revision the compiler was given."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from mcpyard import compiler, hub
from mcpyard.api import v1alpha1
from mcpyard.compiler import _compile
from mcpyard.compiler.config import Source
from tests.conftest import manifest

NOW = datetime(2026, 11, 25, tzinfo=UTC)
H1, H2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64
WS = manifest("Workspace", "eng", {"plan": "starter"})
ECHO = manifest("MCPServer", "echo", {"workspace": "eng",
                                      "proxy": {"url": "http://127.0.0.1:9/mcp"}})


def _member(name: str, token: str, **spec: Any) -> dict[str, Any]:
    return manifest("Member", name, {"workspace": "eng", "user": f"{name}@x",
                                     "tokenHash": token, **spec})


def _build(tools: list[str], *docs: dict[str, Any], **kw: Any) -> compiler.Compilation:
    observed = compiler.Observed(tools={("team", "echo"): tools})
    return compiler.compile([v1alpha1.parse(d) for d in (WS, ECHO, *docs)], now=NOW,
                            catalog=hub.catalog(), observed=observed, **kw)


@pytest.mark.parametrize(("tools", "access", "names", "not_listed"), [
    pytest.param(["b", "a", "delete_x"], None, ["echo__a", "echo__b", "echo__delete_x"], 0,
                 id="all-tools-sorted"),
    pytest.param(["b", "a", "delete_x"], {"deny": ["echo__delete_*"]}, ["echo__a", "echo__b"],
                 0, id="deny-wins"),
    pytest.param(["a"], {"allow": ["other__*"]}, [], 0, id="none"),
    pytest.param([f"t{i:03}" for i in range(_compile.MEMBER_TOOLS_MAX + 7)], None,
                 [f"echo__t{i:03}" for i in range(_compile.MEMBER_TOOLS_MAX)], 7,
                 id="capped-with-the-count-beyond"),
])
def test_member_status_names_its_tools(tools: list[str], access: dict[str, Any] | None,
                                       names: list[str], not_listed: int) -> None:
    extra = {"access": access} if access else {}
    out = _build(tools, _member("alice", H1, **extra))
    status = out.statuses[("team", "Member", "alice")]
    assert status["toolNames"] == names
    assert status["toolsNotListed"] == not_listed
    assert status["tools"] == len(names) + not_listed  # the printer column's count, unchanged
    v1alpha1.Member.model_validate(  # the status is what the model (and the CRD) describe
        {**_member("alice", H1, **extra), "status": status})


def test_without_discovered_tools_no_names_are_claimed() -> None:
    out = compiler.compile([v1alpha1.parse(d) for d in (WS, ECHO, _member("a", H1))], now=NOW,
                           catalog=hub.catalog())
    assert "toolNames" not in out.statuses[("team", "Member", "a")]


def test_the_source_reaches_every_workspace_config_and_its_hash() -> None:
    other = manifest("Workspace", "data", namespace="data")
    source = Source(revision="main@sha1:" + "a" * 40, origin="Kustomization flux-system/apps")
    out = _build([], other, source=source)
    assert {w.source for w in out.workspaces.values()} == {source}
    assert out.statuses[("team", "Workspace", "eng")]["source"] == source.model_dump()
    v1alpha1.Workspace.model_validate(
        {**WS, "status": out.statuses[("team", "Workspace", "eng")]})
    plain = _build([], other)
    assert plain.workspaces["eng"].source is None
    # A new revision is a new configuration: the gateway swaps it in and records it.
    assert plain.workspaces["eng"].revision != out.workspaces["eng"].revision
