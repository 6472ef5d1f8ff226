"""``protocolEra: auto`` and a server that serves both eras, with client work in both styles:
a 2026-07-28 client gets the server's own input-required results (its keys, its
requestState), and a tool that asks through the back-channel still gets its answers (the
gateway sends it again in the handshake era once, and remembers)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import mcp_types as types
import pytest
from gwtools import NS, member, run_gateway, serving, workspace
from prototools import client

from mcpyard.compiler.config import ServerConfig
from mcpyard.crypto import tokens
from mcpyard.gateway.downstream import _streams

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


@pytest.fixture
async def mixed_gateway(settings_for: Any) -> AsyncIterator[Any]:
    with serving(str(HERE / "mixed_app.py")) as up:
        server = ServerConfig(slug="mx", name="mx", namespace=NS, mode="proxy",
                              transport="streamable-http", url=up.url, timeout_seconds=60)
        config = workspace("w", [server], [member("alice", TOKEN)])
        async with run_gateway(settings_for([config])) as gw:
            await gw.wait_serving("w", "mx")
            yield gw


async def test_a_modern_client_gets_both_styles_of_a_dual_era_server(mixed_gateway: Any
                                                                     ) -> None:
    gw = mixed_gateway
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
    assert servers["mx"]["modernCalls"] is True  # and /readyz says where modern calls go


V = "2026-07-28"


async def modern_call(http: httpx.AsyncClient, url: str, name: str, arguments: dict[str, Any],
                      **extra: Any) -> dict[str, Any]:
    """One tools/call on the 2026-07-28 wire, as a client that answers sampling; the JSON-RPC
    response message (from a JSON or an event-stream response)."""
    meta = {"io.modelcontextprotocol/protocolVersion": V,
            "io.modelcontextprotocol/clientCapabilities": {"sampling": {}}}
    body = {"jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": {"name": name, "arguments": arguments, "_meta": meta, **extra}}
    headers = {"Authorization": f"Bearer {TOKEN}", "MCP-Protocol-Version": V,
               "Accept": "application/json, text/event-stream", "Mcp-Method": "tools/call",
               "Mcp-Name": name}
    response = await http.post(url, json=body, headers=headers)
    if response.headers["content-type"].startswith("text/event-stream"):
        lines = [line[5:] for line in response.text.splitlines() if line.startswith("data:")]
        messages = [json.loads(line) for line in lines if line.strip()]
        return next(m for m in messages if m.get("id") == 7)
    message: dict[str, Any] = response.json()
    return message


async def test_a_back_channel_request_travels_as_an_input_required_result(
        mixed_gateway: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The translation on the wire: the upstream's sampling request (asked on the handshake
    hop) is the client's input-required result; the retry carrying the answer completes the
    upstream's request and the call. A client that never comes back: the upstream's question
    gets an error after the wait's bound, and a retry after that an invalid-params error."""
    url = mixed_gateway.url("w")
    async with httpx.AsyncClient(timeout=60) as http:
        asked = (await modern_call(http, url, "mx__sample", {"prompt": "hi"}))["result"]
        assert asked["resultType"] == "input_required"
        (key, request), = asked["inputRequests"].items()
        assert request["method"] == "sampling/createMessage"
        assert request["params"]["messages"][0]["content"]["text"] == "hi"
        answer = {"role": "assistant", "model": "m", "content": {"type": "text", "text": "yo"}}
        done = await modern_call(http, url, "mx__sample", {"prompt": "hi"},
                                 inputResponses={key: answer},
                                 requestState=asked["requestState"])
        assert done["result"]["resultType"] == "complete"
        assert done["result"]["content"][0]["text"] == "sampled:yo"

        tampered = await modern_call(http, url, "mx__sample", {"prompt": "hi"},
                                     inputResponses={key: answer},
                                     requestState=asked["requestState"] + "x")
        assert tampered["error"]["code"] == -32602

        monkeypatch.setattr(_streams, "ASK_TIMEOUT", 1.0)
        left = (await modern_call(http, url, "mx__sample", {"prompt": "never"}))["result"]
        assert left["resultType"] == "input_required"
        with anyio.fail_after(30):
            while True:
                failed = await modern_call(http, url, "mx__failed", {})
                lines = failed["result"]["content"][0]["text"].splitlines()
                if len(lines) > 1:  # the first: the 2026-07-28 hop had no back-channel
                    break
                await anyio.sleep(0.1)
        assert lines[-1] == "the client did not answer sampling/createMessage in time"
        (key, _), = left["inputRequests"].items()
        late = await modern_call(http, url, "mx__sample", {"prompt": "never"},
                                 inputResponses={key: answer}, requestState=left["requestState"])
    # Past the bound the parked call is gone: the late retry is told so.
    assert late["error"] == {"code": -32602,
                             "message": "Invalid params: unknown or expired requestState"}
