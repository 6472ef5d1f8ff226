"""Fuzzing the gateway's HTTP entry with hypothesis, as an attacker with a valid token would.

Bodies (arbitrary JSON, JSON-RPC-shaped messages with wrong types in every field, raw bytes,
deep nesting) go to ``/ws/eng/mcp`` in both eras and to the legacy ``/ws/eng/messages`` of an
open ``/sse`` session, against `mcpyard serve` as a process with a real upstream. Then:

- no response is >= 500;
- each session still works (a real call answers on each transport);
- every tools/call that reached the router was recorded: the call log holds as many
  tools/call records as ``mcpyard_requests_total{method="tools/call"}`` counted.

``MCPYARD_FUZZ_EXAMPLES`` sets the number of examples (CI: 100; BENCHMARKS.md records a
larger run).
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from accounting import call_rows, samples, total
from gwtools import member_manifest, server_manifest, wait_port, ws_manifest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcpyard.crypto import tokens
from tests.proctools import free_port

EXAMPLES = int(os.environ.get("MCPYARD_FUZZ_EXAMPLES", "100"))
TOKEN = tokens.new()
MODERN = "2026-07-28"
METHODS = ["tools/call", "tools/list", "initialize", "ping", "prompts/list", "prompts/get",
           "resources/list", "resources/read", "resources/templates/list",
           "completion/complete", "logging/setLevel", "server/discover",
           "subscriptions/listen", "resources/subscribe", "notifications/cancelled",
           "notifications/initialized"]

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=30))
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=15)
ids = st.one_of(st.integers(-5, 2**63), st.text(max_size=10), st.none(), json_values)
names = st.one_of(st.sampled_from(["beta__echo", "beta__hello", "beta__nope", "echo",
                                   "x" * 300, "beta__" + "é" * 40]), st.text(max_size=40))
params = st.one_of(
    st.fixed_dictionaries({"name": names}, optional={
        "arguments": st.one_of(st.dictionaries(st.text(max_size=8), json_values, max_size=3),
                               json_values),
        "_meta": st.one_of(json_values, st.just({
            "io.modelcontextprotocol/protocolVersion": MODERN,
            "io.modelcontextprotocol/clientCapabilities": {}})),
        "cursor": json_values, "uri": st.text(max_size=30)}),
    json_values)
messages = st.fixed_dictionaries({}, optional={
    "jsonrpc": st.one_of(st.just("2.0"), json_values),
    "id": ids, "method": st.one_of(st.sampled_from(METHODS), st.text(max_size=20)),
    "params": params, "result": json_values, "error": json_values})


def _nested(levels: int) -> bytes:
    return b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"beta__echo",' \
        b'"arguments":{"text":' + b"[" * levels + b"1" + b"]" * levels + b"}}}"


bodies = st.one_of(
    messages.map(lambda m: json.dumps(m).encode()),
    st.lists(messages, max_size=3).map(lambda m: json.dumps(m).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=64),
    st.integers(1, 1100).map(_nested),
)
transports = st.sampled_from(["handshake", "modern", "sse"])


class Target:
    """A running `mcpyard serve`, a handshake session, and an open legacy SSE session."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.url = f"{base}/ws/eng/mcp"
        self.http = httpx.Client(timeout=60)
        r = self.http.post(self.url, headers=self.headers(), json={
            "jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {},
                "clientInfo": {"name": "fuzz", "version": "0"}}})
        assert r.status_code == 200, r.text
        self.sid = r.headers["mcp-session-id"]
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        endpoint: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read_sse, args=(endpoint,), daemon=True)
        self._reader.start()
        self.messages = base + endpoint.get(timeout=60)

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json",
                "Accept": "application/json, text/event-stream", **extra}

    def _read_sse(self, endpoint: queue.Queue[str]) -> None:
        with httpx.Client(timeout=None) as http, http.stream(
                "GET", f"{self.base}/ws/eng/sse", headers=self.headers()) as stream:
            event = None
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    if event == "endpoint":
                        endpoint.put(line[6:])
                    else:
                        data = json.loads(line[6:])
                        for item in data if isinstance(data, list) else [data]:
                            self.events.put(item)

    def post(self, transport: str, body: bytes) -> httpx.Response:
        if transport == "sse":
            return self.http.post(self.messages, content=body, headers=self.headers())
        if transport == "modern":
            try:
                method = json.loads(body).get("method")
            except (ValueError, AttributeError):
                method = None
            extra = {"MCP-Protocol-Version": MODERN}
            if isinstance(method, str) and method.isascii() and method.isprintable():
                extra["Mcp-Method"] = method
            return self.http.post(self.url, content=body, headers=self.headers(**extra))
        return self.http.post(self.url, content=body, headers=self.headers(
            **{"Mcp-Session-Id": self.sid, "MCP-Protocol-Version": "2025-06-18"}))

    def still_works(self) -> None:
        call = {"jsonrpc": "2.0", "id": "after", "method": "tools/call",
                "params": {"name": "beta__echo", "arguments": {"text": "still here"}}}
        r = self.post("handshake", json.dumps(call).encode())
        assert r.json()["result"]["content"][0]["text"] == "beta:still here", r.text
        modern = {**call, "params": {**call["params"], "_meta": {
            "io.modelcontextprotocol/protocolVersion": MODERN,
            "io.modelcontextprotocol/clientCapabilities": {}}}}
        r = self.http.post(self.url, json=modern, headers=self.headers(**{
            "MCP-Protocol-Version": MODERN, "Mcp-Method": "tools/call",
            "Mcp-Name": "beta__echo"}))
        assert r.json()["result"]["content"][0]["text"] == "beta:still here", r.text
        assert self.post("sse", json.dumps(call).encode()).status_code == 202
        while True:  # answers to fuzzed requests come first
            event = self.events.get(timeout=60)
            if event.get("id") == "after":
                assert event["result"]["content"][0]["text"] == "beta:still here"
                return


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory, beta: Any) -> Iterator[Target]:
    root = tmp_path_factory.mktemp("fuzz")
    folder = root / "manifests"
    folder.mkdir()
    (folder / "all.yaml").write_text("---\n".join([
        ws_manifest(), server_manifest("beta", beta.url), member_manifest("alice", TOKEN)]))
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mcpyard", "serve", str(folder), "--port", str(port),
         "--state-dir", str(root / "state"), "--log-level", "error"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=root,
        # The fuzzer is one member sending as fast as it can: no plan limit applies here.
        env={**os.environ, "MCPYARD_DRAIN_SECONDS": "5"})
    try:
        wait_port(port, proc)
        base = f"http://127.0.0.1:{port}"
        _wait_ready(base)
        t = Target(base)
        t.state = root / "state"  # type: ignore[attr-defined]
        t.proc = proc  # type: ignore[attr-defined]
        yield t
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()


def _wait_ready(base: str) -> None:
    import time

    end = time.monotonic() + 60
    while time.monotonic() < end:
        r = httpx.get(f"{base}/readyz")
        if r.status_code == 200 and "beta" in r.json()["workspaces"]["eng"]["servers"] and \
                r.json()["workspaces"]["eng"]["servers"]["beta"]["status"] == "healthy":
            return
        time.sleep(0.05)
    raise TimeoutError("the gateway did not get ready")


STATUSES: dict[int, int] = {}


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(transport=transports, body=bodies)
def test_fuzzed_bodies_never_get_a_server_error(target: Target, transport: str,
                                                body: bytes) -> None:
    r = target.post(transport, body)
    STATUSES[r.status_code] = STATUSES.get(r.status_code, 0) + 1
    assert r.status_code < 500, (transport, body[:300], r.status_code, r.text[:300])


def test_sessions_work_and_every_routed_call_is_recorded(target: Target) -> None:
    assert sum(STATUSES.values()) >= EXAMPLES  # the fuzzer ran first, in this module
    target.still_works()
    counted = total(samples(httpx.get(f"{target.base}/metrics").text),
                    "mcpyard_requests_total", method="tools/call")
    proc: subprocess.Popen[bytes] = target.proc  # type: ignore[attr-defined]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0
    state: Path = target.state  # type: ignore[attr-defined]
    recorded = [r for r in call_rows(state / "calls.db") if r["method"] == "tools/call"]
    assert counted >= 3 and len(recorded) == counted
    print(f"fuzz: {sum(STATUSES.values())} bodies, statuses {sorted(STATUSES.items())}, "
          f"{int(counted)} tools/call reached the router, {len(recorded)} recorded")
