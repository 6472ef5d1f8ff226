"""`mcpyard gateway` in cluster mode serving an upstream of the 2026-07-28 era only.

The operator applies the example manifests with eng's proxied analytics server pointing at the
demo server that refuses ``initialize`` (``modern_only_app``); its tool discovery negotiates
the era and writes it into the MCPServer's ``status.protocol``; the gateway, reading the config
Secrets through the API, speaks 2026-07-28 to it and serves it to the official SDK client in
its default ``auto`` mode and forced to the handshake era alike.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.operator.conftest import Cluster, wait_for
from tests.operator.test_gateway_in_cluster import (
    TOKENS,
    Gateway,
    _analytics_healthy,
    _examples_against,
    gateway,
)
from tests.operator.test_operator_discovery import modern_only

__all__ = ["gateway", "modern_only"]  # fixtures shared with the other cluster tests


async def _list_and_call(url: str, token: str, mode: str) -> tuple[str, list[str], str]:
    """(protocol version, tool names, the text of analytics__echo) with the SDK client."""
    async with contextlib.AsyncExitStack() as stack:
        http = await stack.enter_async_context(
            httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30))
        c = await stack.enter_async_context(
            Client(streamable_http_client(url, http_client=http), mode=mode, cache=None))
        listed = await c.list_tools()
        result = await c.call_tool("analytics__echo", {"text": f"hello {mode}"})
        assert not result.is_error, result
        text = "".join(getattr(b, "text", "") for b in result.content)
        return c.protocol_version, [t.name for t in listed.tools], text


def _protocol(cluster: Cluster) -> dict[str, Any] | None:
    status = cluster.resource("MCPServer", "team-eng", "analytics").get("status") or {}
    protocol: dict[str, Any] | None = status.get("protocol")
    return protocol


def test_gateway_serves_a_modern_only_upstream_to_both_eras(
    cluster: Cluster, modern_only: str, gateway: Gateway
) -> None:
    # modern_only before gateway: the server stops after the gateway, which holds a stream
    # open on it (uvicorn would wait for it).
    cluster.seed_age_key()
    cluster.start()
    cluster.create(*_examples_against(modern_only))
    wait_for(lambda: cluster.config("eng"), what="the config of eng")
    gateway.start()
    body = wait_for(lambda: _analytics_healthy(gateway), what="eng's analytics up", timeout=30)
    assert body["workspaces"]["eng"]["servers"]["analytics"]["era"] == "modern"

    protocol = wait_for(lambda: _protocol(cluster), what="status.protocol of analytics")
    assert protocol == {"era": "modern", "version": "2026-07-28"}

    for mode, version in (("auto", "2026-07-28"), ("legacy", "2025-11-25")):
        spoken, tools, text = asyncio.run(
            _list_and_call(gateway.url("eng"), TOKENS["alice"], mode))
        assert spoken == version, mode
        assert "analytics__echo" in tools, (mode, tools)
        assert f"hello {mode}" in text, (mode, text)
