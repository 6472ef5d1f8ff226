"""Tool discovery against a real MCP server (the demo server), credentials injected."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import manifest
from tests.gateway.gwtools import serving, upstream_process
from tests.operator.conftest import DEMO_TOKEN as TOKEN
from tests.operator.conftest import Cluster, example_documents, wait_for


def _eng_secret() -> dict[str, Any]:
    return next(
        d
        for d in example_documents()
        if d["kind"] == "EncryptedSecret" and d["metadata"]["namespace"] == "team-eng"
    )


def _status(cluster: Cluster, name: str) -> dict[str, Any]:
    return cluster.resource("MCPServer", "team-eng", name).get("status") or {}


def test_discovery_fills_status_tools(cluster: Cluster, demo_server: str) -> None:
    cluster.seed_age_key()
    cluster.start()
    cluster.create(
        manifest("Workspace", "eng", namespace="team-eng"),
        _eng_secret(),
        manifest(
            "MCPServer",
            "demo",
            {
                "workspace": "eng",
                "proxy": {"url": demo_server},
                "secrets": [
                    {"secretRef": {"name": "analytics-key", "key": "token"}, "as": "bearer"}
                ],
                "tools": {"exclude": ["fail"]},
            },
            namespace="team-eng",
        ),
        manifest(
            "MCPServer",
            "nobody",
            {"workspace": "eng", "proxy": {"url": demo_server}},
            namespace="team-eng",
        ),
    )

    status = wait_for(
        lambda: (s := _status(cluster, "demo")).get("tools") and s, what="discovered tools"
    )
    names = [t["name"] for t in status["tools"]]
    assert "fail" in names and len(names) >= 2
    assert status["toolCount"] == len(names) - 1  # `fail` is excluded
    assert status["lastRefresh"].endswith("Z")
    # The era the discovery spoke, decided as the gateway decides it (spec.protocolEra).
    assert status["protocol"] == {"era": "handshake", "version": "2025-11-25"}
    wait_for(
        lambda: (
            [
                (c["status"], c["reason"])
                for c in _status(cluster, "demo")["conditions"]
                if c["type"] == "Ready"
            ]
            == [("True", "Serving")]
        ),
        what="demo serving",
    )
    wait_for(
        lambda: (
            (cluster.resource("Workspace", "team-eng", "eng").get("status") or {}).get("tools")
            == len(names) - 1
        ),
        what="the workspace's tool count",
    )

    # Without the bearer the demo server refuses: the server is reported, not hidden.
    def refused() -> str | None:
        for c in _status(cluster, "nobody").get("conditions") or []:
            if c["type"] == "Ready" and c["status"] == "False" and c["reason"] == "Degraded":
                return str(c["message"])
        return None

    message = wait_for(refused, what="the refused server's condition", timeout=20)
    assert "tools/list failed" in message
    assert TOKEN not in message

    # Told to speak 2026-07-28 to the server, the next discovery does, and says so.
    cluster.patch("MCPServer", "team-eng", "demo", {"spec": {"protocolEra": "modern"}})
    wait_for(
        lambda: (
            _status(cluster, "demo").get("protocol") == {"era": "modern", "version": "2026-07-28"}
        ),
        what="the modern era in the demo server's status",
    )


def _tools_changed(cluster: Cluster, name: str) -> tuple[str, str, str] | None:
    for c in _status(cluster, name).get("conditions") or []:
        if c["type"] == "ToolsChanged":
            return (c["status"], c["reason"], c["message"])
    return None


def test_each_refresh_says_whether_the_tools_changed(cluster: Cluster, demo_server: str) -> None:
    cluster.seed_age_key()
    cluster.start(discovery_interval=1.0)
    inject = [{"secretRef": {"name": "analytics-key", "key": "token"}, "as": "bearer"}]
    cluster.create(
        manifest("Workspace", "eng", namespace="team-eng"),
        _eng_secret(),
        manifest(
            "MCPServer",
            "demo",
            {"workspace": "eng", "proxy": {"url": demo_server}, "secrets": inject},
            namespace="team-eng",
        ),
    )
    # Read from what the API server held: a refresh a second later may already have set the
    # condition to ToolsUnchanged before a poll of the current object sees the first one.
    first = wait_for(
        lambda: (cluster.held_conditions("MCPServer", "demo", "ToolsChanged") or [None])[0],
        what="the first discovery",
    )
    assert first[:2] == ("False", "FirstDiscovery"), first
    # The hourly refresh, here every second: the same tools.
    wait_for(
        lambda: (_tools_changed(cluster, "demo") or ("",))[:2] == ("False", "ToolsUnchanged"),
        what="a refresh that found the same tools",
    )
    # The server behind the URL now serves other tools: the next refresh says which.
    with upstream_process("beta") as beta:
        cluster.patch("MCPServer", "team-eng", "demo", {"spec": {"proxy": {"url": beta.url}}})
        changed = wait_for(
            lambda: cluster.ever_true("MCPServer", "demo", "ToolsChanged"),
            what="ToolsChanged",
        )
        assert changed[1] == "ToolsChanged"
        assert "added hello" in changed[2] and "removed add" in changed[2], changed
        assert [t["name"] for t in _status(cluster, "demo")["tools"]] == ["echo", "hello"]
        wait_for(
            lambda: (_tools_changed(cluster, "demo") or ("",))[:2] == ("False", "ToolsUnchanged"),
            what="the next refresh to find them unchanged",
        )


@pytest.fixture
def modern_only() -> Iterator[str]:
    """The demo server refusing initialize: of the 2026-07-28 era only."""
    with serving(Path(__file__).with_name("modern_only_app.py")) as up:
        yield up.url


def test_auto_speaks_2026_07_28_to_a_server_of_that_era_only(
    cluster: Cluster, modern_only: str
) -> None:
    cluster.start()
    cluster.create(
        manifest("Workspace", "eng", namespace="team-eng"),
        manifest(
            "MCPServer",
            "modern",
            {"workspace": "eng", "proxy": {"url": modern_only}},
            namespace="team-eng",
        ),
    )
    status = wait_for(
        lambda: (s := _status(cluster, "modern")).get("protocol") and s,
        what="the modern-only server discovered",
    )
    assert status["protocol"] == {"era": "modern", "version": "2026-07-28"}
    assert "echo" in [t["name"] for t in status["tools"]]
