"""Helpers of the protocol tests: two real SDK upstreams (``protocol_app``), a gateway serving
them as workspace ``p``, and the official SDK 2.x client in either era."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx2
import pytest
from gwtools import Gateway, member, run_gateway, server, serving, workspace
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPDeprecationWarning

from mcpyard.crypto import tokens

MODES = [pytest.param("legacy", id="handshake-client"),
         pytest.param("2026-07-28", id="modern-client")]

# Real, well-formed member tokens: the gateway refuses anything else before any lookup.
ALICE, BOB, CAROL = tokens.new(), tokens.new(), tokens.new()


@contextlib.contextmanager
def protocol_upstream(name: str, era: str = "both") -> Iterator[str]:
    with serving("protocol_app.py", "--name", name, "--era", era) as up:
        yield up.url


UPSTREAM_ERAS = [pytest.param("handshake", id="handshake-upstreams"),
                 pytest.param("both", id="modern-upstreams")]


@pytest.fixture(scope="session", params=UPSTREAM_ERAS)
def upstreams(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """Two upstreams of one era: ``handshake`` (2025 servers) or ``both`` (SDK 2.x servers,
    which the gateway is told to talk to in 2026-07-28: ``protocolEra: modern``)."""
    with protocol_upstream("one", request.param) as one, \
            protocol_upstream("two", request.param) as two:
        yield {"one": one, "two": two, "era": request.param}


def protocol_workspace(urls: dict[str, str], **kw: Any) -> Any:
    """alice sees everything; bob only server one (tools, prompts and resources); carol all
    but ``two``'s prompts and resources."""
    era = "modern" if urls.get("era") == "both" else "auto"
    return workspace("p", [server("one", urls["one"], protocol_era=era),
                           server("two", urls["two"], protocol_era=era)], [
        member("alice", ALICE),
        member("bob", BOB, allow=("one__*", "mcpyard://one/*")),
        member("carol", CAROL, deny=("two__greet", "two__embedded", "mcpyard://two/*")),
    ], **kw)


@contextlib.asynccontextmanager
async def protocol_gateway(settings_for: Any, urls: dict[str, str], **kw: Any
                           ) -> AsyncIterator[Gateway]:
    async with run_gateway(settings_for([protocol_workspace(urls)], **kw)) as gw:
        await gw.wait_serving("p", "one", "two")
        yield gw


@contextlib.asynccontextmanager
async def client(url: str, token: str, mode: str, **kw: Any) -> AsyncIterator[Client]:
    """The official SDK client, forced into one era (``legacy`` or a modern version)."""
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"},
                                  timeout=httpx2.Timeout(30, read=300)) as http:
        kw.setdefault("cache", None)
        async with Client(streamable_http_client(url, http_client=http), mode=mode, **kw) as c:
            yield c


def quiet_deprecated() -> contextlib.AbstractContextManager[Any]:
    """Call a handshake-era method the SDK marks deprecated (subscribe, setLevel); its warning
    is its own class (a UserWarning, not a DeprecationWarning)."""
    return warnings.catch_warnings(action="ignore", category=MCPDeprecationWarning)
