"""Helpers of the bridge tests: `mcpyard bridge` as a real process on a free loopback port, in
front of a real stdio server. A module of its own name (not `conftest`), so that importing it
never finds another folder's conftest when several test folders run together."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.proctools import free_port

HERE = Path(__file__).resolve().parent
DEMO = [sys.executable, "-m", "mcpyard.demo"]
INTERACTIVE = [sys.executable, str(HERE / "interactive_server.py")]
TIME = [str(Path(sys.executable).with_name("mcp-server-time")), "--local-timezone", "UTC"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Bridge:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base}/mcp"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_until(self, check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
        """Poll ``check`` under a deadline (the bridge runs in another process)."""
        deadline = time.monotonic() + timeout
        while not check():
            if self.proc.poll() is not None:
                raise AssertionError(f"bridge exited ({self.proc.returncode}):\n{self.output()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}:\n{self.output()}")
            time.sleep(0.05)

    def status(self, path: str) -> tuple[int, str]:
        try:
            r = httpx.get(self.base + path, timeout=5)
        except httpx.TransportError:
            return 0, ""
        return r.status_code, r.text

    def wait_ready(self) -> None:
        self.wait_until(lambda: self.status("/readyz")[0] == 200, "/readyz")


def start(command: list[str], tmp: Path, *extra: str) -> Bridge:
    port = free_port()
    log = tmp / f"bridge-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mcpyard",
                "bridge",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                *extra,
                "--",
                *command,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tmp,
            start_new_session=True,
        )
    return Bridge(proc, port, log)


def stop(bridge: Bridge) -> None:
    if bridge.proc.poll() is None:
        bridge.proc.send_signal(signal.SIGTERM)
        try:
            bridge.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(bridge.proc.pid, signal.SIGKILL)
            bridge.proc.wait()


@pytest.fixture
def bridge_for(tmp_path: Path) -> Iterator[Callable[..., Bridge]]:
    started: list[Bridge] = []

    def make(command: list[str], *extra: str, ready: bool = True) -> Bridge:
        bridge = start(command, tmp_path, *extra)
        started.append(bridge)
        if ready:
            bridge.wait_ready()
        return bridge

    yield make
    for bridge in started:
        stop(bridge)
