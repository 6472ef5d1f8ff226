"""A real Redis server for the tests that need one (Debian's redis-server)."""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Iterator

import pytest

from tests.proctools import free_port

__all__ = ["redis_url"]


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail(
            "redis-server is not installed: the Redis rate-limit tests need a real "
            "server (Debian: apt-get install -y redis-server)"
        )
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--logfile",
            "",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    ready = threading.Event()
    lines: list[str] = []

    def watch() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "Ready to accept connections" in line:
                ready.set()

    reader = threading.Thread(target=watch, daemon=True)
    reader.start()
    try:
        if not ready.wait(20):
            pytest.fail("redis-server did not start:\n" + "".join(lines))
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)
        reader.join(10)
        assert proc.stdout is not None
        proc.stdout.close()
