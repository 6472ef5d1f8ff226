"""Traces: `mcpyard serve` with OTEL_EXPORTER_OTLP_ENDPOINT exports the span tree of each MCP
request over OTLP/HTTP to a receiver that decodes the protobuf (opentelemetry-proto); the
client's traceparent is the root's parent and the upstream receives the hop's traceparent."""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from gwtools import member_manifest, server_manifest, serving, wait_port, ws_manifest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from mcpyard.crypto import tokens
from tests.proctools import free_port


class Receiver:
    """A minimal OTLP/HTTP trace receiver: POST /v1/traces, protobuf bodies."""

    def __init__(self) -> None:
        self.spans: list[Any] = []
        self.resources: list[dict[str, Any]] = []
        self.lock = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                assert self.path == "/v1/traces", self.path
                assert self.headers["Content-Type"] == "application/x-protobuf"
                request = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
                with receiver.lock:
                    for rs in request.resource_spans:
                        receiver.resources.append(
                            {a.key: a.value.string_value for a in rs.resource.attributes})
                        for ss in rs.scope_spans:
                            receiver.spans.extend(ss.spans)
                    receiver.lock.notify_all()
                reply = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def wait(self, predicate: Any, timeout: float = 60) -> list[Any]:
        deadline = time.monotonic() + timeout
        with self.lock:
            while not predicate(self.spans):
                left = deadline - time.monotonic()
                assert left > 0, f"spans never arrived: {[s.name for s in self.spans]}"
                self.lock.wait(left)
            return list(self.spans)


@contextlib.contextmanager
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    thread = threading.Thread(target=r.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield r
    finally:
        r.server.shutdown()
        r.server.server_close()


def attrs(span: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for a in span.attributes:
        v = a.value
        out[a.key] = (v.string_value if v.HasField("string_value") else
                      v.bool_value if v.HasField("bool_value") else v.int_value)
    return out


def test_a_call_exports_its_span_tree_with_the_client_trace_context(tmp_path: Path) -> None:
    token = tokens.new()
    folder = tmp_path / "manifests"
    folder.mkdir()
    with serving("trace_upstream.py") as upstream, receiver() as otlp:
        (folder / "ws.yaml").write_text(ws_manifest())
        (folder / "up.yaml").write_text(server_manifest("tracer", upstream.url))
        (folder / "alice.yaml").write_text(member_manifest("alice", token))
        port = free_port()
        env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.url,
               "OTEL_BSP_SCHEDULE_DELAY": "50", "OTEL_SERVICE_NAME": "gw-under-test"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "mcpyard", "serve", str(folder), "--port", str(port),
             "--state-dir", str(tmp_path / "state"), "--log-level", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp_path, env=env)
        try:
            wait_port(port, proc)
            base = f"http://127.0.0.1:{port}/ws/eng/mcp"
            trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
            headers = {"Authorization": f"Bearer {token}",
                       "Accept": "application/json, text/event-stream",
                       "traceparent": f"00-{trace_id}-{parent_id}-01"}
            with httpx.Client(timeout=30) as http:
                deadline = time.monotonic() + 60
                while True:  # the upstream is discovered in the background
                    ready = http.get(f"http://127.0.0.1:{port}/readyz").json()
                    if ready["workspaces"].get("eng", {}).get("servers", {}).get(
                            "tracer", {}).get("status") == "healthy":
                        break
                    assert time.monotonic() < deadline, ready
                    time.sleep(0.1)
                init = http.post(base, headers=headers, json={
                    "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                        "protocolVersion": "2025-06-18", "capabilities": {},
                        "clientInfo": {"name": "t", "version": "0"}}})
                sid = init.headers["mcp-session-id"]
                call = http.post(base, headers={**headers, "Mcp-Session-Id": sid,
                                                "MCP-Protocol-Version": "2025-06-18"}, json={
                    "jsonrpc": "2.0", "id": 2, "method": "tools/call",
                    "params": {"name": "tracer__traceparent",
                               "arguments": {"text": "sekrit-argument"}}})
                assert call.status_code == 200, call.text
                received = call.json()["result"]["content"][0]["text"]

            def complete(spans: list[Any]) -> bool:
                return any(s.name == "mcpyard.upstream" for s in spans) and any(
                    s.name == "mcp.request" and attrs(s).get("mcpyard.tool") for s in spans)

            spans = otlp.wait(complete)
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=30)
    assert token not in err.decode()
    assert otlp.resources[0]["service.name"] == "gw-under-test"
    call_spans = [s for s in spans if s.trace_id.hex() == trace_id]
    by_name: dict[str, list[Any]] = {}
    for s in call_spans:
        by_name.setdefault(s.name, []).append(s)
    # The tools/call request: root (parented by the client's span), then auth, limit, hop.
    root = next(s for s in by_name["mcp.request"]
                if attrs(s).get("mcpyard.tool") == "tracer__traceparent")
    assert root.parent_span_id.hex() == parent_id
    assert root.kind == root.SPAN_KIND_SERVER
    assert attrs(root).items() >= {
        "mcpyard.workspace": "eng", "mcpyard.server": "tracer", "mcpyard.method": "tools/call",
        "mcpyard.outcome": "ok", "mcpyard.member": "alice",
        "http.response.status_code": 200}.items()
    children = {s.name: s for s in call_spans if s.parent_span_id == root.span_id}
    assert set(children) == {"mcpyard.auth", "mcpyard.limit", "mcpyard.upstream"}
    assert attrs(children["mcpyard.auth"])["mcpyard.auth.ok"] is True
    hop = children["mcpyard.upstream"]
    assert hop.kind == hop.SPAN_KIND_CLIENT
    assert attrs(hop) == {"mcpyard.server": "tracer", "mcpyard.tool": "tracer__traceparent"}
    # Order in time: auth, then limit, then the hop, all inside the request.
    auth, limit = children["mcpyard.auth"], children["mcpyard.limit"]
    assert root.start_time_unix_nano <= auth.start_time_unix_nano
    assert auth.end_time_unix_nano <= limit.start_time_unix_nano
    assert limit.end_time_unix_nano <= hop.start_time_unix_nano
    assert hop.end_time_unix_nano <= root.end_time_unix_nano
    # The upstream got the hop's context, in the client's trace.
    assert received == f"00-{trace_id}-{hop.span_id.hex()}-01"
    # Never arguments, results or secrets.
    for s in spans:
        flat = repr(attrs(s))
        assert "sekrit-argument" not in flat and token not in flat and "mwt_" not in flat
