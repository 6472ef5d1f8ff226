"""Fault injection: an upstream that hangs, answers garbage, closes mid-stream, answers slowly
or floods notifications. Each time the other servers and members are unaffected, every call
is recorded, and /readyz, /metrics and the log say what happened (docs/reliability.md)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from accounting import call_rows, samples, total
from gwtools import (
    UpstreamProcess,
    mcp_client,
    member,
    run_gateway,
    server,
    serving,
    text_of,
    workspace,
)
from mcp.shared.exceptions import MCPError

from mcpyard.crypto import tokens

pytestmark = pytest.mark.anyio

TIMEOUT = 3.0
"""The faulty server's timeoutSeconds: a hung call fails after this long."""


@pytest.fixture(scope="module")
def faulty() -> Iterator[UpstreamProcess]:
    with serving("faulty_upstream.py") as up:
        yield up


@pytest.fixture
def people() -> dict[str, str]:
    return {"alice": tokens.new(), "bob": tokens.new()}


@pytest.fixture
def config(faulty: UpstreamProcess, beta: Any, people: dict[str, str]) -> Any:
    return workspace("eng", [server("beta", beta.url),
                             server("faulty", faulty.url, timeout_seconds=TIMEOUT)],
                     [member(name, token) for name, token in people.items()])


async def _bob_is_unaffected(url: str, token: str) -> None:
    async with mcp_client(url, token) as bob:
        assert text_of(await bob.call_tool("beta__echo", {"text": "fine"})) == "beta:fine"
        assert text_of(await bob.call_tool("faulty__echo", {"text": "fine"})) == "faulty:fine"


async def _records(gw: Any, state_dir: Path, n: int) -> list[dict[str, Any]]:
    """The call log once it holds ``n`` records (they are written in the background)."""
    with anyio.fail_after(30):
        while True:
            rows = call_rows(state_dir / "calls.db") if (state_dir / "calls.db").exists() else []
            if len(rows) >= n:
                return rows
            await anyio.sleep(0.05)


@pytest.mark.parametrize("fault", ["hang", "garbage", "cut"])
async def test_a_broken_answer_fails_one_call_only(fault: str, settings_for: Any, config: Any,
                                                   people: dict[str, str], state_dir: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "mcpyard")
    async with run_gateway(settings_for([config])) as gw, httpx.AsyncClient() as http:
        await gw.wait_serving("eng", "beta", "faulty")
        url = gw.url("eng")
        async with mcp_client(url, people["alice"]) as alice:
            with anyio.fail_after(TIMEOUT + 60):
                async with anyio.create_task_group() as tg:
                    failure: list[BaseException] = []

                    async def broken() -> None:
                        try:
                            await alice.call_tool(f"faulty__{fault}", {})
                        except MCPError as exc:
                            failure.append(exc)

                    tg.start_soon(broken)
                    # while alice's call is broken, bob and beta are served
                    await _bob_is_unaffected(url, people["bob"])
            [error] = failure
            assert isinstance(error, MCPError)
            assert "faulty" in error.error.message
            # the same session and the same server serve the next call
            assert text_of(await alice.call_tool("faulty__echo", {"text": "again"})) \
                == "faulty:again"
        rows = await _records(gw, state_dir, 5)
        metrics = samples((await http.get(f"{gw.base_url}/metrics")).text)
        ready = (await http.get(f"{gw.base_url}/readyz")).json()
    mine = [r for r in rows if r["target"] == f"faulty__{fault}"]
    assert [r["outcome"] for r in mine] == ["upstream_error"]
    assert mine[0]["error"] and "faulty" in mine[0]["error"]
    assert total(metrics, "mcpyard_tool_calls_total", outcome="upstream_error") == 1
    # one broken answer does not take the server down for everyone
    assert {s: v["status"] for s, v in ready["workspaces"]["eng"]["servers"].items()} == \
        {"beta": "healthy", "faulty": "healthy"}
    if fault == "hang":
        assert "timed out" in error.error.message or "timeout" in error.error.message.lower()


async def test_a_slow_answer_delays_no_one_else(settings_for: Any, config: Any,
                                               people: dict[str, str]) -> None:
    async with run_gateway(settings_for([config])) as gw:
        await gw.wait_serving("eng", "beta", "faulty")
        url = gw.url("eng")
        done = anyio.Event()
        async with mcp_client(url, people["alice"]) as alice:
            with anyio.fail_after(60):
                async with anyio.create_task_group() as tg:
                    answer: list[str] = []

                    async def slow() -> None:
                        result = await alice.call_tool("faulty__slow",
                                                       {"seconds": TIMEOUT / 2})
                        answer.append(text_of(result))
                        done.set()

                    tg.start_soon(slow)
                    await _bob_is_unaffected(url, people["bob"])
                    # bob finished while alice's call was still running
                    assert not done.is_set()
            assert answer == [f"slow:{TIMEOUT / 2}"]


async def test_a_flood_of_notifications_is_bounded(settings_for: Any, faulty: UpstreamProcess,
                                                  beta: Any, people: dict[str, str],
                                                  state_dir: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "mcpyard")
    # a generous timeout: a flood is slow on a loaded machine, and the point is what else
    # happens meanwhile
    config = workspace("eng", [server("beta", beta.url),
                               server("faulty", faulty.url, timeout_seconds=120)],
                       [member(name, token) for name, token in people.items()])
    logs: list[Any] = []

    async def on_message(message: Any) -> None:
        logs.append(message)

    async with run_gateway(settings_for([config])) as gw, httpx.AsyncClient() as http:
        await gw.wait_serving("eng", "beta", "faulty")
        url = gw.url("eng")
        async with mcp_client(url, people["alice"], on_message=on_message) as alice:
            with anyio.fail_after(240):
                async with anyio.create_task_group() as tg:
                    results: list[str] = []

                    async def flood() -> None:
                        results.append(text_of(await alice.call_tool(
                            "faulty__flood", {"count": 2000})))
                        before.append(int(text_of(await alice.call_tool("faulty__lists", {}))))
                        results.append(text_of(await alice.call_tool(
                            "faulty__flood_list_changed", {"count": 500})))

                    before: list[int] = []
                    tg.start_soon(flood)
                    await _bob_is_unaffected(url, people["bob"])
            assert results == ["flooded:2000", "changed:500"]
            assert text_of(await alice.call_tool("beta__echo", {"text": "after"})) \
                == "beta:after"
            await gw.wait_for(lambda: gw.runtime.live["eng"].handles["faulty"].discovering
                              is None or gw.runtime.live["eng"].handles["faulty"]
                              .discovering.done())
            after = int(text_of(await alice.call_tool("faulty__lists", {})))
        logged = [m for m in logs if type(m).__name__ == "LoggingMessageNotification"]
        changed = [m for m in logs if type(m).__name__ == "ToolListChangedNotification"]
        print(f"flood: {len(logged)} log lines relayed, {len(changed)} list_changed relayed, "
              f"{after - before[0]} tools/list")
        rows = await _records(gw, state_dir, 6)
        ready = (await http.get(f"{gw.base_url}/readyz")).json()
    assert {r["outcome"] for r in rows} == {"ok"}
    assert ready["workspaces"]["eng"]["servers"]["faulty"]["status"] == "healthy"
    # a burst of list_changed costs a bounded number of tool refreshes, not one each
    assert after - before[0] < 50
    # the member whose call logged hears every line (nothing lost), in order
    assert [m.params.data for m in logged] == [f"line {i}" for i in range(2000)]
