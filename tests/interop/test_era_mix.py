"""``protocolEra: auto`` and a server that serves both eras, with client work in both styles:
a 2026-07-28 client gets the server's own input-required results (its keys, its
requestState), and a tool that asks through the back-channel still gets its answers (the
gateway sends it again in the handshake era once, and remembers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
from gwtools import NS, member, run_gateway, serving, workspace
from prototools import client

from mcpyard.compiler.config import ServerConfig
from mcpyard.crypto import tokens

pytestmark = pytest.mark.anyio

HERE = Path(__file__).parent
TOKEN = tokens.new()


async def on_elicit(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
    return types.ElicitResult(action="accept", content={"name": "Ada"})


async def on_sampling(context: Any, params: types.CreateMessageRequestParams
                      ) -> types.CreateMessageResult:
    asked = params.messages[0].content.text  # type: ignore[union-attr]
    return types.CreateMessageResult(role="assistant", model="m",
                                     content=types.TextContent(text=f"<{asked}>"))


def text(result: Any) -> str:
    assert not getattr(result, "is_error", False), result
    return str(result.content[0].text)


async def test_a_modern_client_gets_both_styles_of_a_dual_era_server(settings_for: Any) -> None:
    with serving(str(HERE / "mixed_app.py")) as up:
        server = ServerConfig(slug="mx", name="mx", namespace=NS, mode="proxy",
                              transport="streamable-http", url=up.url, timeout_seconds=30)
        config = workspace("w", [server], [member("alice", TOKEN)])
        async with run_gateway(settings_for([config])) as gw:
            await gw.wait_serving("w", "mx")
            async with client(gw.url("w"), TOKEN, "2026-07-28", elicitation_callback=on_elicit,
                              sampling_callback=on_sampling) as c:
                greeted = await c.call_tool("mx__greet", {})
                prompt = await c.get_prompt("mx__briefing", {})
                first = await c.call_tool("mx__sample", {"prompt": "hi"})
                second = await c.call_tool("mx__sample", {"prompt": "again"})
                runs = await c.call_tool("mx__runs", {})
            servers = gw.runtime.readiness()[1]["workspaces"]["w"]["servers"]
    assert text(greeted) == "Hello, Ada!"
    assert prompt.messages[0].content.text == "Brief Ada."  # type: ignore[union-attr]
    assert (text(first), text(second)) == ("sampled:<hi>", "sampled:<again>")
    # The first call ran up to its question in 2026-07-28 (no back-channel there), then again
    # in the handshake era; the second went straight to the handshake era.
    assert text(runs) == "3"
    assert servers["mx"]["era"] == "handshake"
