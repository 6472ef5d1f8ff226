"""Helpers of the accounting tests: a real redis-server, Prometheus text, raw MCP calls."""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from gwtools import MCP_HEADERS, bearer, free_port, listening
from prometheus_client.parser import text_string_to_metric_families


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A throwaway redis-server on a free port; yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (Debian: apt-get install -y redis-server)")
    port = free_port()
    with listening([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "no"], port):
        yield f"redis://127.0.0.1:{port}/0"


def samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Prometheus text parsed by the official parser: sample name -> [(labels, value)]."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((dict(s.labels), s.value))
    return out


def total(found: dict[str, list[tuple[dict[str, str], float]]], name: str,
          **labels: str) -> float:
    return sum(v for lab, v in found.get(name, [])
               if all(lab.get(k) == want for k, want in labels.items()))


def types(text: str) -> dict[str, str]:
    return {f.name: f.type for f in text_string_to_metric_families(text)}


class Raw:
    """One MCP session over plain HTTP, to see statuses and headers the SDK hides."""

    def __init__(self, http: httpx.AsyncClient, url: str, token: str) -> None:
        self.http, self.url, self.token = http, url, token
        self.sid: str | None = None
        self.next_id = 1

    def headers(self) -> dict[str, str]:
        out = {**MCP_HEADERS, **(bearer(self.token) if self.token else {})}
        if self.sid:
            out["Mcp-Session-Id"] = self.sid
            out["MCP-Protocol-Version"] = "2025-06-18"
        return out

    async def post(self, method: str, params: dict[str, Any] | None = None) -> httpx.Response:
        self.next_id += 1
        body: dict[str, Any] = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        if params is not None:
            body["params"] = params
        return await self.http.post(self.url, headers=self.headers(), json=body)

    async def initialize(self) -> httpx.Response:
        r = await self.post("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                           "clientInfo": {"name": "raw", "version": "0"}})
        if r.status_code == 200:
            self.sid = r.headers["mcp-session-id"]
            done = await self.http.post(self.url, headers=self.headers(), json={
                "jsonrpc": "2.0", "method": "notifications/initialized"})
            assert done.status_code == 202
        return r

    async def call(self, tool: str, **arguments: Any) -> httpx.Response:
        return await self.post("tools/call", {"name": tool, "arguments": arguments})


def call_rows(path: Any) -> list[dict[str, Any]]:
    """Every call record in the SQLite call log at ``path``, oldest first."""
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM calls ORDER BY id")]
    finally:
        conn.close()
