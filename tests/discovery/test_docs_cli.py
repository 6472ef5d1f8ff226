"""`mcpyard docs DIR --out OUT`: starts the servers as `serve` does (or reads a tools file)
and writes manifests and pages; an OpenAI-compatible summarizer (a tiny local server speaking
that API) may replace the summaries, and nothing breaks when it fails."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import jsonschema
import pytest
from gwtools import NS
from test_docs_served import SCHEMA, stdio

KEY = "sk-test-summarizer-key-3141"


class Summarizer(BaseHTTPRequestHandler):
    seen: ClassVar[list[dict[str, Any]]] = []
    fail = False

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append({"path": self.path, "auth": self.headers.get("Authorization"),
                                "body": body})
        if type(self).fail:
            self.send_response(500)
            self.end_headers()
            self.wfile.write(f"bad key {KEY}".encode())
            return
        server = body["messages"][-1]["content"].split()[1]
        reply = {"choices": [{"message": {"role": "assistant",
                                          "content": f"Summary of {server} by the model."}}]}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def summarizer() -> Iterator[str]:
    Summarizer.seen, Summarizer.fail = [], False
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Summarizer)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    finally:
        httpd.shutdown()
        httpd.server_close()


def docs(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mcpyard", "docs", *args],
                          capture_output=True, text=True, timeout=180,
                          env={**os.environ, **(env or {})})


def test_docs_site_from_started_servers_then_from_a_tools_file(tmp_path: Path,
                                                               summarizer: str) -> None:
    folder = tmp_path / "manifests"
    folder.mkdir()
    (folder / "eng.yaml").write_text(f"""apiVersion: mcpyard.io/v1alpha1
kind: Workspace
metadata: {{name: eng, namespace: {NS}}}
spec: {{displayName: Engineering}}
""")
    (folder / "demo.yaml").write_text(stdio("demo", [sys.executable, "-m", "mcpyard.demo"]))
    tools_file = tmp_path / "tools.json"
    first = docs(str(folder), "--out", str(tmp_path / "site"), "--save-tools", str(tools_file))
    assert first.returncode == 0, first.stderr
    site = tmp_path / "site" / "eng"
    assert sorted(p.name for p in site.iterdir()) == [
        "demo.html", "demo.json", "demo.md", "index.html", "index.md", "manifest.json"]
    generated = json.loads((site / "demo.json").read_text())
    jsonschema.validate(generated, SCHEMA)
    assert generated["summarySource"] == "generated"
    assert 'href="demo.html"' in (site / "index.html").read_text()
    assert "team/demo" in json.loads(tools_file.read_text())

    # Offline, from the saved lists, with a summarizer: the same manifest but the summary.
    second = docs(str(folder), "--out", str(tmp_path / "site2"), "--tools", str(tools_file),
                  "--summarizer-url", summarizer, env={"MCPYARD_SUMMARIZER_API_KEY": KEY})
    assert second.returncode == 0, second.stderr
    enriched = json.loads((tmp_path / "site2" / "eng" / "demo.json").read_text())
    assert enriched["summary"] == "Summary of demo by the model."
    assert enriched["summarySource"] == "summarizer"
    assert {**enriched, "summary": None, "summarySource": None} == {
        **generated, "summary": None, "summarySource": None}
    (request,) = Summarizer.seen
    assert request["path"] == "/v1/chat/completions" and request["auth"] == f"Bearer {KEY}"
    assert "echo" in request["body"]["messages"][-1]["content"]

    # A failing summarizer leaves the generated summary, and its words (the key) stay out.
    Summarizer.fail = True
    third = docs(str(folder), "--out", str(tmp_path / "site3"), "--tools", str(tools_file),
                 "--summarizer-url", summarizer, env={"MCPYARD_SUMMARIZER_API_KEY": KEY})
    assert third.returncode == 0
    assert "summarizer failed" in third.stderr and KEY not in third.stderr + third.stdout
    kept = json.loads((tmp_path / "site3" / "eng" / "demo.json").read_text())
    assert kept["summary"] == generated["summary"]
