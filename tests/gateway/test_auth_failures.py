"""Unauthenticated requests cannot grow the call log or the audit log one request at a time:
metrics count each, records are aggregated per client address and window, and an address
that fails too often gets 429 with Retry-After (a valid token from it is still served).
The clock of the limiter and the windows is injected."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from accounting import call_rows, samples, total
from gwtools import MCP_HEADERS, bearer, member, raw_initialize, run_gateway, workspace

from mcpyard.crypto import tokens

pytestmark = pytest.mark.anyio

TOKEN = tokens.new()
INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "raw", "version": "0"}}}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_failures_are_limited_per_address_and_recorded_aggregated(
        settings_for: Any, tmp_path: Path, state_dir: Path) -> None:
    clock = Clock()
    audit = tmp_path / "audit.jsonl"
    ws = workspace("eng", [], [member("alice", TOKEN)])
    settings = settings_for([ws], auth_failures_per_minute=5, auth_record_seconds=60,
                            clock=clock, audit_log=str(audit))
    async with run_gateway(settings) as gw, httpx.AsyncClient() as http:
        url = gw.url("eng")
        statuses = []
        for i in range(20):
            token = tokens.new() if i % 2 else "mwt_not-even-well-formed"
            r = await http.post(url, json=INIT, headers={**MCP_HEADERS, **bearer(token)})
            statuses.append(r.status_code)
            if r.status_code == 429:
                assert int(r.headers["retry-after"]) >= 1
                assert r.json()["error"]["data"]["scope"] == "address"
        sse = await http.get(gw.url("eng", "sse"), headers={"Accept": "text/event-stream"})
        assert statuses == [401] * 5 + [429] * 15 and sse.status_code == 429
        # A member behind the same address is never locked out.
        await raw_initialize(http, url, TOKEN)
        clock.now += 61  # the bucket refills, a new record window opens
        r = await http.post(url, json=INIT, headers=MCP_HEADERS)
        assert r.status_code == 401
        metrics = samples((await http.get(f"{gw.base_url}/metrics")).text)

    assert total(metrics, "mcpyard_requests_total", outcome="auth_failure") == 22
    assert total(metrics, "mcpyard_auth_throttled_total", workspace="eng") == 16
    failures = [r for r in call_rows(state_dir / "calls.db") if r["outcome"] == "auth_failure"]
    # The first failure at once; the 20 folded since, with the one that opened the next
    # window, as one record.
    assert len(failures) == 2
    assert failures[0]["error"].endswith("1 failed authentication from 127.0.0.1")
    assert failures[1]["error"].endswith("21 failed authentications from 127.0.0.1")
    lines = [json.loads(x) for x in audit.read_text().splitlines()]
    assert [x["outcome"] for x in lines].count("auth_failure") == 2
