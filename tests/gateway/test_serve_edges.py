"""`mcpyard serve` as an operator meets it: a busy port fails before anything starts, /readyz
and /metrics move to the admin port, and the log counts members as the banner does."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from gwtools import command_server_manifest, free_port, member_manifest, wait_port, ws_manifest

from mcpyard.crypto import tokens


def _folder(tmp_path: Path, marker: Path) -> Path:
    folder = tmp_path / "manifests"
    folder.mkdir()
    (folder / "workspace.yaml").write_text(ws_manifest())
    # A server whose start leaves a mark.
    (folder / "marker.yaml").write_text(command_server_manifest("marker", [
        sys.executable, "-c",
        f"open({str(marker)!r}, 'w').close(); import mcpyard.demo.__main__"]))
    (folder / "alice.yaml").write_text(member_manifest("alice", tokens.new()))
    (folder / "bob.yaml").write_text(member_manifest("bob", tokens.new(),
                                                     extra="  disabled: true\n"))
    (folder / "carol.yaml").write_text(member_manifest(
        "carol", tokens.new(), extra="  expires: '2020-01-01T00:00:00Z'\n"))
    return folder


def test_a_busy_port_fails_before_anything_starts(tmp_path: Path) -> None:
    marker = tmp_path / "spawned"
    folder = _folder(tmp_path, marker)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "mcpyard", "serve", str(folder), "--port", str(port),
             "--state-dir", str(tmp_path / "state"), "--log-level", "info"],
            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert not marker.exists(), "a server was spawned before the port was checked"
    assert "serving revision" not in done.stderr and "decrypted" not in done.stderr
    assert not (tmp_path / "state").exists(), "the vault was opened before the port was checked"


def test_admin_port_and_member_counts(tmp_path: Path) -> None:
    marker = tmp_path / "spawned"
    folder = _folder(tmp_path, marker)
    port, admin = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mcpyard", "serve", str(folder), "--port", str(port),
         "--state-dir", str(tmp_path / "state"), "--log-level", "info"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path,
        env={**os.environ, "MCPYARD_ADMIN_PORT": str(admin)})
    try:
        wait_port(port, proc)
        wait_port(admin, proc)
        public, private = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{admin}"
        assert httpx.get(f"{public}/readyz").status_code == 404
        assert httpx.get(f"{public}/metrics").status_code == 404
        assert httpx.get(f"{public}/healthz").status_code == 200
        assert httpx.get(f"{private}/ws/eng/mcp").status_code == 404
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ready = httpx.get(f"{private}/readyz")
            if ready.status_code == 200:
                break
            time.sleep(0.1)
        assert ready.json()["workspaces"]["eng"]["members"] == 1
        assert "# HELP mcpyard_requests_total" in httpx.get(f"{private}/metrics").text
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err.decode()
    banner, log = out.decode(), err.decode()
    assert "(1 servers, 1 members)" in banner
    assert "(1 servers, 1 members; 2 disabled, expired or without a token)" in log
    assert f"Health: {private}/readyz" in banner
