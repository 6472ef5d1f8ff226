"""Tool discovery against a real MCP server (the demo server), credentials injected."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import manifest
from tests.operator.conftest import Cluster, example_documents, wait_for

TOKEN = "demo-analytics-key-0001"  # the value of the example EncryptedSecret


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def demo_server() -> Iterator[str]:
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mcpyard.demo",
            "--transport",
            "streamable-http",
            "--port",
            str(port),
            "--token-env",
            "DEMO_TOKEN",
        ],
        env={**os.environ, "DEMO_TOKEN": TOKEN},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def listening() -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    try:
        wait_for(listening, what="the demo server")
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.wait(10)


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
