"""`mcpyard serve` as a real process: banner, serving, and a clean exit on SIGTERM that
leaves no child process behind."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from gwtools import command_server_manifest, free_port, member_manifest, wait_port, ws_manifest

from mcpyard.crypto import tokens
from tests.proctools import alive, descendants


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_serve_runs_and_stops_cleanly(tmp_path: Path) -> None:
    folder = tmp_path / "manifests"
    folder.mkdir()
    token = tokens.new()
    (folder / "workspace.yaml").write_text(ws_manifest())
    (folder / "notes.yaml").write_text(command_server_manifest(
        "notes", [sys.executable, "-m", "mcpyard.demo"]))
    (folder / "alice.yaml").write_text(member_manifest("alice", token))
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mcpyard", "serve", str(folder), "--port", str(port),
         "--state-dir", str(tmp_path / "state"), "--log-level", "warning"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    try:
        wait_port(port, proc)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:  # poll readiness under a deadline: the stdio server starts in the background
            detail = httpx.get(f"{base}/readyz").json()
            status = detail["workspaces"]["eng"]["servers"]["notes"]["status"]
            if status != "starting" or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert status == "healthy", detail
        r = httpx.post(f"{base}/ws/eng/mcp", headers={
            "Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream"},
            json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {},
                "clientInfo": {"name": "t", "version": "0"}}})
        assert r.status_code == 200
        children = descendants(proc.pid)
        assert children, "the stdio server runs as a child of serve"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err.decode()
    banner = out.decode()
    assert f"http://127.0.0.1:{port}/ws/eng/mcp" in banner
    assert "mcpyard token new" in banner
    assert token not in banner and token not in err.decode()
    assert not [pid for pid in children if alive(pid)]
