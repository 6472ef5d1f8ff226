"""The bridge's process duties: restart with backoff, clear errors, clean exit on SIGTERM."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import mcp_types as types
import pytest
from bridgetools import DEMO, INTERACTIVE, Bridge
from mcp.client import Client
from mcp.shared.exceptions import MCPError

from mcpyard.cli import main
from tests.probes import initialize_body
from tests.proctools import alive, descendants

pytestmark = pytest.mark.anyio

Make = Callable[..., Bridge]


def text(result: Any) -> str:
    return "".join(c.text for c in result.content if isinstance(c, types.TextContent))


async def child_pid(client: Client) -> int:
    return int(text(await client.call_tool("pid", {})))


async def test_a_killed_child_is_restarted(bridge_for: Make) -> None:
    bridge = bridge_for(INTERACTIVE)
    async with Client(bridge.url, mode="legacy") as client:
        first = await child_pid(client)
        assert first in descendants(bridge.proc.pid)
        os.kill(first, signal.SIGKILL)
        with anyio.fail_after(30):
            while True:  # the next call waits for the restarted child (bounded)
                try:
                    second = await child_pid(client)
                    break
                except MCPError:  # raced the exit: failed clearly, try again
                    await anyio.sleep(0.05)
        assert second != first
        assert text(await client.call_tool("steps", {"n": 1})) == "1 steps"
    assert "restarting in 0.5s" in bridge.output()


async def test_a_request_in_flight_fails_clearly_when_the_child_dies(bridge_for: Make) -> None:
    bridge = bridge_for(INTERACTIVE)
    pids: list[int] = []

    async def kill_instead(ctx: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        os.kill(pids[0], signal.SIGKILL)
        with anyio.fail_after(10):
            while alive(pids[0]):
                await anyio.sleep(0.02)
        return types.ElicitResult(action="decline")

    async with Client(bridge.url, mode="legacy", elicitation_callback=kill_instead) as client:
        pids.append(await child_pid(client))
        with pytest.raises(MCPError, match=r"MCP server process .* being restarted"):
            await client.call_tool("ask", {"question": "?"})
        with anyio.fail_after(30):
            while True:
                try:
                    assert await child_pid(client) != pids[0]
                    break
                except MCPError:
                    await anyio.sleep(0.05)


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
async def test_sigterm_exits_0_and_leaves_no_process(bridge_for: Make) -> None:
    bridge = bridge_for(INTERACTIVE)
    async with Client(bridge.url, mode="legacy") as client:
        server = await child_pid(client)
        grandchild = int(text(await client.call_tool("spawn_grandchild", {})))
    tree = descendants(bridge.proc.pid)
    assert {server, grandchild} <= tree
    bridge.proc.send_signal(signal.SIGTERM)
    with anyio.fail_after(30):
        while bridge.proc.poll() is None:
            await anyio.sleep(0.05)
    assert bridge.proc.returncode == 0, bridge.output()
    assert not [pid for pid in tree if alive(pid)]
    assert "SIGTERM: shutting down" in bridge.output()


async def test_sigterm_lets_a_request_in_flight_finish(bridge_for: Make) -> None:
    bridge = bridge_for(INTERACTIVE)
    answered = anyio.Event()

    async def answer_late(ctx: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        bridge.proc.send_signal(signal.SIGTERM)
        with anyio.fail_after(10):
            while httpx.get(bridge.base + "/readyz").status_code != 503:
                await anyio.sleep(0.02)
        # New requests are refused while the call in flight goes on.
        refused = httpx.post(bridge.url, json={"jsonrpc": "2.0", "id": 9, "method": "initialize"})
        assert refused.status_code == 503
        assert refused.json()["error"]["message"] == "the bridge is shutting down"
        answered.set()
        return types.ElicitResult(action="accept", content={"answer": "late"})

    async with Client(bridge.url, mode="legacy", elicitation_callback=answer_late) as client:
        await client.list_tools()  # the client checks results against cached tool schemas
        assert text(await client.call_tool("ask", {"question": "?"})) == "answer: late"
    assert answered.is_set()
    with anyio.fail_after(30):
        while bridge.proc.poll() is None:
            await anyio.sleep(0.05)
    assert bridge.proc.returncode == 0


async def test_a_command_that_cannot_start(bridge_for: Make) -> None:
    bridge = bridge_for(["/nonexistent/mcp-server"], "--startup-wait", "0.2", ready=False)
    bridge.wait_until(lambda: "restarting in 1.0s" in bridge.output(), "a second backoff")
    status, reason = bridge.status("/readyz")
    assert status == 503
    assert reason == "cannot start '/nonexistent/mcp-server': command not found"
    assert bridge.status("/healthz")[0] == 503
    assert "restarting in 0.5s (backoff)" in bridge.output()
    async with httpx.AsyncClient(base_url=bridge.base) as http:
        r = await http.post(
            "/mcp",
            json=initialize_body("t"),
        )
    assert r.status_code == 503
    assert r.json()["error"]["message"] == (
        "the MCP server is not ready: cannot start '/nonexistent/mcp-server': command not found"
    )
    assert bridge.proc.poll() is None  # the bridge itself stays up


async def test_a_server_that_exits_at_once(bridge_for: Make) -> None:
    bridge = bridge_for([sys.executable, "-c", "import sys; sys.exit(3)"], ready=False)
    bridge.wait_until(lambda: "restarting in 1.0s" in bridge.output(), "a second backoff")
    status, reason = bridge.status("/readyz")
    assert (status, reason) == (503, "the server process exited with code 3")


async def test_a_server_that_never_answers_initialize(bridge_for: Make) -> None:
    silent = [sys.executable, "-c", "import time; time.sleep(600)"]
    bridge = bridge_for(silent, "--init-timeout", "0.3", ready=False)
    bridge.wait_until(lambda: "restarting in 1.0s" in bridge.output(), "a second backoff")
    assert "initialize failed: no answer after 0.3s; restarting in 0.5s" in bridge.output()
    assert bridge.status("/readyz")[0] == 503
    # Each silent process is stopped before the next starts: one at a time, no pile-up.
    assert len(descendants(bridge.proc.pid)) <= 1


def test_the_command_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bridge", "--port", "1"]) == 2
    assert "a command is required" in capsys.readouterr().out
    assert DEMO  # the same fixture command the other tests use
