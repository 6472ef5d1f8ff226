"""Rate limits, call records and metrics through a real gateway, over real HTTP.

Plans and member limits are exact under concurrent load from several sessions; a refusal is
HTTP 429 with ``Retry-After`` and a JSON-RPC error naming the limit (on /mcp), a JSON-RPC
error on the stream (on the legacy /sse); ``/metrics`` counts what the records say.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import httpx
import pytest
from accounting import Raw, call_rows, samples, total, types
from gwtools import bearer, mcp_client, member, run_gateway, server, workspace
from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.shared.exceptions import MCPError

from mcpyard.compiler.config import WorkspaceConfig
from mcpyard.crypto import tokens
from mcpyard.gateway import _jsonrpc as rpc
from mcpyard.mcp import jsonrpc

pytestmark = pytest.mark.anyio


def free_plan(ws: WorkspaceConfig) -> WorkspaceConfig:
    return ws.model_copy(update={"plan": "free", "requests_per_minute": 60})


async def test_free_plan_admits_exactly_60_requests_from_several_sessions(
        settings_for: Any, beta: Any) -> None:
    token = tokens.new()
    ws = free_plan(workspace("eng", [server("beta", beta.url)], [member("alice", token)]))
    async with run_gateway(settings_for([ws])) as gw:
        await gw.wait_serving("eng", "beta")
        async with contextlib.AsyncExitStack() as stack:
            clients = [await stack.enter_async_context(mcp_client(gw.url("eng"), token))
                       for _ in range(4)]
            # The SDK lists tools before its first call of a tool (for output schemas): do
            # it now, so that every request this test makes is one it counts.
            for c in clients:
                await c.list_tools()
            spent = 2 * len(clients)  # an initialize and a tools/list each; both count

            async def call(c: ClientSession, i: int) -> str:
                try:
                    await c.call_tool("beta__echo", {"text": str(i)})
                except MCPError as exc:
                    assert exc.error.code == rpc.RATE_LIMITED, exc.error
                    assert exc.error.data["scope"] == "workspace"
                    assert exc.error.data["limit"] == 60
                    assert 1 <= exc.error.data["retryAfter"] <= 60
                    return "refused"
                return "ok"

            outcomes = await asyncio.gather(*(call(c, i) for i in range(20) for c in clients))
        assert outcomes.count("ok") == 60 - spent
        assert outcomes.count("refused") == 80 - (60 - spent)

        # The 61st request, seen raw: 429, Retry-After, and the body says which limit.
        async with httpx.AsyncClient(timeout=30) as http:
            r = await Raw(http, gw.url("eng"), token).initialize()
            metrics = (await http.get(f"{gw.base_url}/metrics")).text
    assert r.status_code == 429
    wait = int(r.headers["retry-after"])
    assert 1 <= wait <= 60
    body = r.json()
    assert body["error"]["code"] == -32029
    assert body["error"]["message"] == ("rate limit of workspace eng exceeded: 60 requests per "
                                        "minute (plan free)")
    assert body["error"]["data"] == {"retryAfter": wait, "scope": "workspace", "limit": 60}
    found = samples(metrics)
    admitted = sum(v for lab, v in found["mcpyard_requests_total"]
                   if lab["outcome"] != "rate_limited")
    assert admitted == 60
    assert total(found, "mcpyard_rate_limited_total", workspace="eng",
                 scope="workspace") == 80 - (60 - spent) + 1


async def test_a_member_limit_refuses_that_member_only(settings_for: Any, beta: Any) -> None:
    alice, bob = tokens.new(), tokens.new()
    ws = workspace("eng", [server("beta", beta.url)], [
        member("alice", alice).model_copy(update={"requests_per_minute": 5}),
        member("bob", bob)])
    async with run_gateway(settings_for([ws])) as gw:
        await gw.wait_serving("eng", "beta")
        async with httpx.AsyncClient(timeout=30) as http:
            a, b = Raw(http, gw.url("eng"), alice), Raw(http, gw.url("eng"), bob)
            assert (await a.initialize()).status_code == 200
            assert (await b.initialize()).status_code == 200
            replies = await asyncio.gather(*(a.call("beta__echo", text="x") for _ in range(10)))
            statuses = sorted(r.status_code for r in replies)
            assert statuses == [200] * 4 + [429] * 6  # 5 per minute, the initialize included
            refused = next(r for r in replies if r.status_code == 429)
            assert refused.json()["error"]["data"]["scope"] == "member"
            assert refused.json()["error"]["data"]["limit"] == 5
            assert refused.json()["error"]["message"] == (
                "rate limit of member alice exceeded: 5 requests per minute")
            assert int(refused.headers["retry-after"]) >= 1
            for _ in range(10):
                r = await b.call("beta__echo", text="y")
                assert r.status_code == 200, r.text
                assert r.json()["result"]["content"][0]["text"] == "beta:y"


async def test_legacy_sse_delivers_the_refusal_on_the_stream(settings_for: Any,
                                                               beta: Any) -> None:
    token = tokens.new()
    ws = workspace("eng", [server("beta", beta.url)], [
        member("alice", token).model_copy(update={"requests_per_minute": 3})])
    async with run_gateway(settings_for([ws])) as gw:
        await gw.wait_serving("eng", "beta")
        async with sse_client(gw.url("eng", "sse"), headers=bearer(token)) as (read, write), \
                ClientSession(read, write) as client:
            await client.initialize()  # 1
            await client.list_tools()  # 2
            await client.call_tool("beta__echo", {"text": "a"})  # 3
            with pytest.raises(MCPError) as refused:
                await client.call_tool("beta__echo", {"text": "b"})
            assert refused.value.error.code == rpc.RATE_LIMITED
            assert refused.value.error.data["scope"] == "member"
            # the session lives on: the next refusal arrives the same way
            with pytest.raises(MCPError):
                await client.send_ping()
    rows = call_rows(gw.app.state.settings.records_path)
    assert [(r["method"], r["outcome"], r["era"]) for r in rows] == [
        ("tools/list", "ok", "legacy-sse"), ("tools/call", "ok", "legacy-sse"),
        ("tools/call", "rate_limited", "legacy-sse"), ("ping", "rate_limited", "legacy-sse")]


async def test_outcomes_reach_records_and_metrics(settings_for: Any, alpha: Any,
                                                   beta: Any) -> None:
    alice, bob = tokens.new(), tokens.new()
    ws = workspace("eng", [server("alpha", alpha.url, secret=True),
                           server("beta", beta.url)], [
        member("alice", alice, deny=("alpha__add",)), member("bob", bob)])
    async with run_gateway(settings_for([ws])) as gw:
        await gw.wait_serving("eng", "alpha", "beta")
        async with httpx.AsyncClient(timeout=30) as http:
            a = Raw(http, gw.url("eng"), alice)
            assert (await a.initialize()).status_code == 200
            assert (await a.post("tools/list")).status_code == 200
            assert (await a.call("alpha__echo", text="hi")).status_code == 200
            failed = await a.call("alpha__fail", message="boom")
            assert failed.json()["result"]["isError"] is True
            denied = (await a.call("alpha__add", a=1, b=2)).json()
            unknown = (await a.call("alpha__nope")).json()
            # a hidden tool and a missing one answer alike
            assert denied["error"] == {**unknown["error"], "message": "Unknown tool: alpha__add"}
            assert denied["error"]["code"] == jsonrpc.INVALID_PARAMS
            bad = await http.post(gw.url("eng"), headers={**Raw(http, "", tokens.new())
                                                          .headers()}, json={})
            assert bad.status_code == 401
            async with mcp_client(gw.url("eng"), bob) as client:
                assert client is not None
            metrics = (await http.get(f"{gw.base_url}/metrics")).text
        assert gw.runtime.sessions  # open until the gateway stops
    rows = call_rows(gw.app.state.settings.records_path)
    got = [(r["member"], r["method"], r["target"], r["server"], r["outcome"]) for r in rows]
    assert got == [
        ("alice", "tools/list", None, None, "ok"),
        ("alice", "tools/call", "alpha__echo", "alpha", "ok"),
        ("alice", "tools/call", "alpha__fail", "alpha", "tool_error"),
        ("alice", "tools/call", "alpha__add", None, "denied"),
        ("alice", "tools/call", "alpha__nope", None, "invalid_request"),
        (None, "other", None, None, "auth_failure"),
    ]
    assert all(r["era"] == "handshake" and r["config_revision"] == ws.revision for r in rows)
    assert all(r["latency_ms"] >= 0 and r["request_bytes"] > 0 for r in rows)
    assert all(r["response_bytes"] > 0 for r in rows if r["outcome"] != "auth_failure")

    found = samples(metrics)
    assert types(metrics)["mcpyard_request_duration_seconds"] == "histogram"
    assert total(found, "mcpyard_tool_calls_total", workspace="eng", server="alpha",
                 tool="alpha__echo", outcome="ok") == 1
    assert total(found, "mcpyard_tool_calls_total", tool="alpha__fail",
                 outcome="tool_error") == 1
    assert total(found, "mcpyard_requests_total", method="initialize", outcome="ok") == 2
    assert total(found, "mcpyard_requests_total", outcome="auth_failure") == 1
    assert total(found, "mcpyard_request_duration_seconds_count", method="tools/call") == 4
    assert total(found, "mcpyard_upstream_up", workspace="eng", server="alpha") == 1
    assert total(found, "mcpyard_sessions_open", workspace="eng") == 1  # alice's, still open
    assert "alice" not in metrics and "bob" not in metrics


