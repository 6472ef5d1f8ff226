"""SIGTERM drains `mcpyard serve`: it stops accepting at once, a call in flight finishes
within the grace period, one that outlives it is answered with a JSON-RPC error (not a bare
500), and every one is in the call log."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from accounting import Raw, call_rows
from gwtools import (
    UpstreamProcess,
    member_manifest,
    server_manifest,
    upstream_process,
    wait_port,
    ws_manifest,
)

from mcpyard.crypto import tokens
from tests.proctools import free_port

pytestmark = pytest.mark.anyio

GRACE = 8


@pytest.fixture(scope="module")
def slow() -> Iterator[UpstreamProcess]:
    with upstream_process("slow") as up:
        yield up


async def _until(predicate: Any, what: str, deadline: float = 60) -> None:
    end = time.monotonic() + deadline
    while not predicate():
        if time.monotonic() > end:
            raise TimeoutError(what)
        await asyncio.sleep(0.05)


def _healthy(readyz: str) -> bool:
    """The gateway serves and the slow server is up (a call before that is refused)."""
    r = httpx.get(readyz)
    if r.status_code != 200:
        return False
    return bool(r.json()["workspaces"]["eng"]["servers"]["slow"]["status"] == "healthy")


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), 0.5).close()
    except OSError:
        return True
    return False


async def test_sigterm_drains_calls_in_flight(tmp_path: Path, slow: UpstreamProcess) -> None:
    folder, state = tmp_path / "manifests", tmp_path / "state"
    folder.mkdir()
    token = tokens.new()
    (folder / "all.yaml").write_text("---\n".join([
        ws_manifest(), server_manifest("slow", slow.url), member_manifest("alice", token)]))
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mcpyard", "serve", str(folder), "--port", str(port),
         "--state-dir", str(state), "--log-level", "info"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path,
        env={**os.environ, "MCPYARD_DRAIN_SECONDS": str(GRACE)})
    try:
        wait_port(port, proc)
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(timeout=120) as http:
            await _until(lambda: _healthy(f"{base}/readyz"), "the slow server healthy")
            raw = Raw(http, f"{base}/ws/eng/mcp", token)
            assert (await raw.initialize()).status_code == 200
            quick, stuck = tmp_path / "quick", tmp_path / "stuck"
            finishes = asyncio.ensure_future(raw.call("slow__sleep", seconds=2,
                                                      marker=str(quick)))
            outlives = asyncio.ensure_future(raw.call("slow__sleep", seconds=600,
                                                      marker=str(stuck)))
            await _until(lambda: quick.exists() and stuck.exists(), "both calls upstream")
            proc.send_signal(signal.SIGTERM)
            # Stop accepting at once, long before the grace period ends.
            await _until(lambda: _refused(port), "the listener closes", deadline=GRACE - 2)
            done, late = await finishes, await outlives
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert done.status_code == 200 and done.json()["result"]["content"][0]["text"] == "slept 2.0"
    assert late.status_code == 200, late.text
    error = late.json()["error"]
    assert error["code"] == -32000 and f"({GRACE} s)" in error["message"]
    assert "shut down before this call finished" in error["message"]
    calls = [r for r in call_rows(state / "calls.db") if r["method"] == "tools/call"]
    assert sorted((r["outcome"], r["error"] is None) for r in calls) == [
        ("ok", True), ("upstream_error", False)]
    assert "still running after 8 s" in err.decode()
