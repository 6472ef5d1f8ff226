"""Helpers of the gateway tests: real upstream MCP servers, a real gateway on loopback, and
the official MCP SDK as the client. No mocks; waits are on events under deadlines."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import anyio
import httpx
import httpx2
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from starlette.applications import Starlette

from mcpyard.compiler.config import (
    Injection,
    MemberConfig,
    SecretRef,
    ServerConfig,
    ToolFilter,
    WorkspaceConfig,
)
from mcpyard.crypto import tokens
from mcpyard.gateway import Settings, build_app
from mcpyard.gateway._runtime import Runtime
from mcpyard.gateway._server import Server
from tests.proctools import free_port

HERE = Path(__file__).parent
ALPHA_SECRET = "upstream-secret-alpha-9f2c"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def wait_port(port: int, proc: subprocess.Popen[bytes], deadline: float = 90.0) -> None:
    """Block until something accepts connections on ``port`` (or the process died)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port}")


@dataclass
class UpstreamProcess:
    url: str
    port: int
    proc: subprocess.Popen[bytes]


@contextlib.contextmanager
def listening(cmd: list[str], port: int, *, env: dict[str, str] | None = None,
              stderr: IO[bytes] | int = subprocess.DEVNULL) -> Iterator[UpstreamProcess]:
    """``cmd`` started, once it listens on ``port`` (its MCP endpoint at /mcp); stopped on
    exit (killed if it does not stop within 10 s)."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        wait_port(port, proc)
        yield UpstreamProcess(f"http://127.0.0.1:{port}/mcp", port, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def serving(script: str | Path, *args: str) -> Iterator[UpstreamProcess]:
    """``python HERE/script --port P *args`` (or a script's own path), once it listens on P."""
    port = free_port()
    with listening([sys.executable, str(HERE / script), "--port", str(port), *args], port) as up:
        yield up


@contextlib.contextmanager
def upstream_process(kind: str, token: str | None = None) -> Iterator[UpstreamProcess]:
    with serving("upstream_app.py", "--kind", kind,
                 *(("--token", token) if token else ())) as up:
        yield up


@pytest.fixture(scope="session")
def alpha() -> Iterator[UpstreamProcess]:
    """Tools echo, add, delete_everything, fail, auth_header; needs ALPHA_SECRET as bearer."""
    with upstream_process("alpha", ALPHA_SECRET) as up:
        yield up


@pytest.fixture(scope="session")
def beta() -> Iterator[UpstreamProcess]:
    """Tools echo and hello; no auth."""
    with upstream_process("beta") as up:
        yield up


# -- hand-built configuration ---------------------------------------------------------------

NS = "team"


def member(name: str, token: str | None, **kw: Any) -> MemberConfig:
    return MemberConfig(name=name, user=f"{name}@example.com", role=kw.pop("role", "member"),
                        token_hash=tokens.hash(token) if token else None,
                        requests_per_minute=None, **kw)


def server(slug: str, url: str, *, secret: bool = False, **kw: Any) -> ServerConfig:
    injections = (Injection(ref=SecretRef(namespace=NS, name="alpha", key="token"), as_="bearer",
                            target="Authorization"),) if secret else ()
    if "tools" in kw and isinstance(kw["tools"], dict):
        kw["tools"] = ToolFilter(**kw["tools"])
    return ServerConfig(slug=slug, name=slug, namespace=NS, mode="proxy",
                        transport="streamable-http", url=url, injections=injections,
                        timeout_seconds=kw.pop("timeout_seconds", 10), **kw)


def workspace(name: str, servers: list[ServerConfig], members: list[MemberConfig],
              **kw: Any) -> WorkspaceConfig:
    return WorkspaceConfig(name=name, namespace=NS, display_name=kw.pop("display_name", name),
                           plan="pro", requests_per_minute=1200, servers=tuple(servers),
                           members=tuple(members), **kw)


# -- the gateway ----------------------------------------------------------------------------

@dataclass
class Gateway:
    app: Starlette
    base_url: str

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.app.state.runtime
        return runtime

    def url(self, workspace: str, path: str = "mcp") -> str:
        return f"{self.base_url}/ws/{workspace}/{path}"

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 30) -> None:
        """Wait until ``predicate()`` holds, re-checking after every configuration change."""
        with anyio.fail_after(timeout):
            while True:
                changed = self.runtime.changed
                if predicate():
                    return
                await changed.wait()

    async def wait_serving(self, workspace: str, *slugs: str) -> None:
        def ok() -> bool:
            live = self.runtime.live.get(workspace)
            return live is not None and all(s in live.available for s in slugs)

        await self.wait_for(ok)


@contextlib.asynccontextmanager
async def run_gateway(settings: Settings) -> AsyncIterator[Gateway]:
    app = build_app(settings)
    server = Server(app, settings, log_level="warning")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    ready = anyio.Event()
    server._on_ready = lambda _app: ready.set()
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.serve, [sock])
            with anyio.fail_after(30):
                await ready.wait()
            try:
                yield Gateway(app, f"http://127.0.0.1:{port}")
            finally:
                await server.stop()
    finally:
        sock.close()


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def settings_for(state_dir: Path) -> Callable[..., Settings]:
    def make(workspaces: list[WorkspaceConfig] | None = None, **kw: Any) -> Settings:
        kw.setdefault("secrets", {f"{NS}/alpha/token": ALPHA_SECRET})
        return Settings(workspaces={w.name: w for w in workspaces or []},
                        state_dir=state_dir, **kw)

    return make


# -- clients --------------------------------------------------------------------------------

@contextlib.asynccontextmanager
async def mcp_client(url: str, token: str | None, *,
                     on_message: Any = None) -> AsyncIterator[ClientSession]:
    """An initialized official-SDK client session over streamable HTTP."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with contextlib.AsyncExitStack() as stack:
        http = await stack.enter_async_context(
            httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=300)))
        streams = await stack.enter_async_context(streamable_http_client(url, http_client=http))
        s = await stack.enter_async_context(
            ClientSession(streams[0], streams[1], message_handler=on_message))
        await s.initialize()
        yield s


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


MCP_HEADERS = {"Accept": "application/json, text/event-stream",
               "Content-Type": "application/json"}


async def raw_initialize(http: httpx.AsyncClient, url: str, token: str,
                         version: str = "2025-06-18") -> str:
    """Initialize over plain HTTP; returns the session id."""
    r = await http.post(url, headers={**MCP_HEADERS, **bearer(token)}, json={
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": version, "capabilities": {},
                   "clientInfo": {"name": "raw", "version": "0"}}})
    assert r.status_code == 200, r.text
    sid = r.headers["mcp-session-id"]
    r = await http.post(url, headers={**MCP_HEADERS, **bearer(token), "Mcp-Session-Id": sid,
                                      "MCP-Protocol-Version": version},
                        json={"jsonrpc": "2.0", "method": "notifications/initialized"})
    assert r.status_code == 202
    return sid


def names(result: Any) -> list[str]:
    return [t.name for t in result.tools]


def text_of(result: Any) -> str:
    return "".join(getattr(c, "text", "") for c in result.content)




# -- manifests ------------------------------------------------------------------------------

def ws_manifest(name: str = "eng", display: str = "Engineering") -> str:
    return f"""apiVersion: mcpyard.io/v1alpha1
kind: Workspace
metadata: {{name: {name}, namespace: {NS}}}
spec: {{displayName: {display}, plan: pro}}
"""


def server_manifest(name: str, url: str, *, workspace: str = "eng", secret: str | None = None,
                    extra: str = "") -> str:
    text = f"""apiVersion: mcpyard.io/v1alpha1
kind: MCPServer
metadata: {{name: {name}, namespace: {NS}}}
spec:
  workspace: {workspace}
  proxy: {{url: "{url}", transport: streamable-http, timeoutSeconds: 10}}
"""
    if secret:
        text += f"""  secrets:
    - secretRef: {{name: {secret}, key: token}}
      as: bearer
"""
    return text + extra


def command_server_manifest(name: str, command: list[str], *, workspace: str = "eng") -> str:
    return f"""apiVersion: mcpyard.io/v1alpha1
kind: MCPServer
metadata: {{name: {name}, namespace: {NS}}}
spec:
  workspace: {workspace}
  hosted:
    command: {command!r}
    transport: stdio
"""


def member_manifest(name: str, token: str, *, workspace: str = "eng", extra: str = "") -> str:
    return f"""apiVersion: mcpyard.io/v1alpha1
kind: Member
metadata: {{name: {name}, namespace: {NS}}}
spec:
  workspace: {workspace}
  user: {name}@example.com
  tokenHash: {tokens.hash(token)}
{extra}"""
