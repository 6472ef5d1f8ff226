"""Helpers of the upstream-client tests: real SDK servers on loopback or stdio, a vault stub."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from mcpyard.compiler.config import Injection, SecretRef, ServerConfig
from mcpyard.gateway import upstream

SERVER = str(Path(__file__).with_name("sdk_upstream.py"))
ECHO_SERVER = "/work/shared/bench/echo_server.py"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class Vault:
    """The SecretSource interface as a plain dict lookup by identity."""

    def __init__(self, values: dict[str, str] | None = None) -> None:
        self.values = dict(values or {})
        self.revealed = 0

    def reveal(self, ref: SecretRef) -> str:
        self.revealed += 1
        return self.values[ref.identity]


class Notes:
    """An on_notification handler that keeps what it got and wakes waiters."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self._changed = asyncio.Event()

    async def __call__(self, slug: str, message: dict[str, Any]) -> None:
        self.messages.append((slug, message))
        self._changed.set()

    def methods(self) -> list[str]:
        return [m.get("method", "") for _, m in self.messages]

    async def wait_for(self, method: str) -> dict[str, Any]:
        while True:
            for _, message in self.messages:
                if message.get("method") == method:
                    return message
            self._changed.clear()
            await self._changed.wait()


def ref(name: str, key: str = "value") -> SecretRef:
    return SecretRef(namespace="team", name=name, key=key)


def config(transport: str = "streamable-http", **fields: Any) -> ServerConfig:
    fields.setdefault("slug", "up")
    fields.setdefault("name", fields["slug"])
    fields.setdefault("timeout_seconds", 20)
    return ServerConfig(namespace="team", mode="proxy", transport=transport, **fields)  # type: ignore[arg-type]


def inject(as_: str, name: str, target: str) -> Injection:
    return Injection(ref=ref(name), as_=as_, target=target)  # type: ignore[arg-type]


class HttpServer:
    """A real MCP server in a subprocess on a loopback port."""

    def __init__(self, *args: str, script: str = SERVER) -> None:
        self.args = list(args)
        self.script = script
        self.port = 0
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> HttpServer:
        cmd = [sys.executable, self.script, *self.args, "--port", str(self.port)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # the server binds before it prints
        assert line.startswith("PORT "), f"server did not start: {line!r}"
        self.port = int(line.split()[1])
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            assert self.proc.stdout is not None
            self.proc.stdout.close()
            self.proc = None

    def restart(self) -> None:
        """Same port, new process: every session the old one knew is gone."""
        self.stop()
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    @property
    def sse_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/sse"


@contextlib.contextmanager
def running(*args: str) -> Iterator[HttpServer]:
    server = HttpServer(*args).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def stateful() -> Iterator[HttpServer]:
    """A handshake-era server with sessions (a dual-era one is talked to sessionless)."""
    with running("--transport", "streamable-http", "--handshake-only") as server:
        yield server


@pytest.fixture(scope="module")
def stateless_json() -> Iterator[HttpServer]:
    with running("--transport", "streamable-http", "--stateless", "--json") as server:
        yield server


@contextlib.asynccontextmanager
async def opened(
    server: ServerConfig, *, secrets: Vault | None = None, workdir: Path | None = None
) -> AsyncIterator[tuple[Any, Notes]]:
    """create() + start(), closed at the end whatever happens."""
    notes = Notes()
    client = upstream.create(
        server, secrets=secrets or Vault(), on_notification=notes, workdir=workdir
    )
    try:
        await client.start()
        yield client, notes
    finally:
        await client.close()


def text_of(result: dict[str, Any]) -> str:
    """The text of a tools/call result."""
    assert result.get("isError") is not True, result
    return "".join(c.get("text", "") for c in result["content"])


def structured(result: dict[str, Any]) -> Any:
    assert result.get("isError") is not True, result
    content = result["structuredContent"]
    return content.get("result", content)


def process_gone(pid: int) -> bool:
    """True when ``pid`` no longer exists, not even as a zombie (signal 0 reaches zombies)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def group_members(pgid: int) -> list[int]:
    """Live processes whose process group is ``pgid`` (from /proc)."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            members.append(int(entry))
    return members
