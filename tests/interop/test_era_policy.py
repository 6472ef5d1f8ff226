"""``spec.protocolEra``: the era the gateway speaks to an upstream is the operator's decision,
checked where it is written and shown in /readyz."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from gwtools import NS, member, run_gateway, serving, workspace

from mcpyard import manifests
from mcpyard.compiler.config import ServerConfig
from mcpyard.crypto import tokens

HERE = Path(__file__).parent
TOKEN = tokens.new()


@contextlib.contextmanager
def both_eras() -> Iterator[str]:
    with serving(str(HERE / "backchannel_app.py")) as up:
        yield up.url


@pytest.mark.anyio
async def test_the_era_follows_the_policy_and_shows_in_readyz(settings_for: Any) -> None:
    with both_eras() as url:
        servers = [ServerConfig(slug=era, name=era, namespace=NS, mode="proxy",
                                transport="streamable-http", url=url, protocol_era=era)
                   for era in ("auto", "handshake", "modern")]
        clock = ServerConfig(slug="clock", name="clock", namespace=NS, mode="hosted",
                             transport="stdio", command=(str(Path(sys.executable).parent /
                                                             "mcp-server-time"),))
        config = workspace("w", [*servers, clock], [member("m", TOKEN)])
        async with run_gateway(settings_for([config])) as gw, httpx.AsyncClient() as http:
            await gw.wait_serving("w", "auto", "handshake", "modern", "clock")
            body = (await http.get(f"{gw.base_url}/readyz")).json()
    shown = body["workspaces"]["w"]["servers"]
    assert {s: (shown[s]["eraPolicy"], shown[s]["era"], shown[s]["protocolVersion"])
            for s in shown} == {
        "auto": ("auto", "handshake", "2025-11-25"),
        "handshake": ("handshake", "handshake", "2025-11-25"),
        "modern": ("modern", "modern", "2026-07-28"),
        "clock": ("auto", "handshake", "2025-11-25"),
    }


@pytest.mark.parametrize("source", [
    "hosted: {command: [mcp-server-time], transport: stdio}",
    "proxy: {url: 'http://example.com/sse', transport: sse}",
])
def test_modern_is_refused_where_it_cannot_be_spoken(tmp_path: Path, source: str) -> None:
    (tmp_path / "s.yaml").write_text(f"""apiVersion: mcpyard.io/v1alpha1
kind: MCPServer
metadata: {{name: s, namespace: team}}
spec:
  workspace: w
  protocolEra: modern
  {source}
""")
    loaded = manifests.load([tmp_path])
    problems = [str(p) for p in loaded.problems]
    assert any("protocolEra: modern (2026-07-28) is spoken over streamable-http only" in p
               and "team/MCPServer/s" in p for p in problems), problems
