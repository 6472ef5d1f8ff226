"""Tool discovery against a real MCP server (the demo server), credentials injected."""

from __future__ import annotations

from typing import Any

from tests.conftest import manifest
from tests.operator.conftest import DEMO_TOKEN as TOKEN
from tests.operator.conftest import Cluster, example_documents, wait_for


def _status(cluster: Cluster, name: str) -> dict[str, Any]:
    return cluster.resource("MCPServer", "team-eng", name).get("status") or {}


def test_discovery_fills_status_tools(cluster: Cluster, demo_server: str) -> None:
    cluster.seed_age_key()
    cluster.start()
    secret = next(
        d
        for d in example_documents()
        if d["kind"] == "EncryptedSecret" and d["metadata"]["namespace"] == "team-eng"
    )
    cluster.create(
        manifest("Workspace", "eng", namespace="team-eng"),
        secret,
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
