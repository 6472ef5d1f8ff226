"""An upstream MCP server for the upstream-client tests, built with the official SDK (mcp 2.x).

    python sdk_upstream.py --transport stdio
    python sdk_upstream.py --transport streamable-http [--stateless] [--json] [--port P] [--token T]
    python sdk_upstream.py --transport sse [--port P]
    python sdk_upstream.py --app-from ../shared/bench/echo_server.py ...   (serve that script's app)

HTTP servers bind 127.0.0.1 (port 0 = any free port) BEFORE serving and print ``PORT <n>`` on
stdout, so a test knows the port and can connect at once (the kernel queues the connection).
Tools report what the server saw, as hashes where a secret is involved.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import importlib.util
import os
import socket
import subprocess
import sys
from typing import Any

import mcp_types as types
import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from mcp.shared.message import ServerMessageMetadata

mcp = MCPServer(name="sdk-upstream", version="1.0.0", log_level="WARNING")


def _sha(value: str | None) -> str | None:
    return None if value is None else hashlib.sha256(value.encode()).hexdigest()


@mcp.tool()
def echo(text: str = "") -> str:
    """Echo the input text back."""
    return text


@mcp.tool()
def big(size: int) -> str:
    """A string of `size` characters (large messages)."""
    return "x" * size


@mcp.tool()
def whoami(ctx: Context) -> dict[str, Any]:
    """Which session and process served this call."""
    headers = ctx.headers or {}
    return {"session": headers.get("mcp-session-id"), "pid": os.getpid()}


@mcp.tool()
def header_sha(name: str, ctx: Context) -> str | None:
    """SHA-256 of request header `name` as this server received it."""
    headers = ctx.headers or {}
    return _sha(headers.get(name.lower()))


@mcp.tool()
def env_sha(name: str) -> str | None:
    """SHA-256 of environment variable `name` (None when unset)."""
    return _sha(os.environ.get(name))


@mcp.tool()
def env_names() -> list[str]:
    """The names (only) of this process's environment variables."""
    return sorted(os.environ)


@mcp.tool()
def cwd() -> str:
    """The working directory."""
    return os.getcwd()


@mcp.tool()
async def slow(seconds: float) -> str:
    """Answer after `seconds`."""
    await asyncio.sleep(seconds)
    return "done"


@mcp.tool()
def crash(code: int = 3) -> str:
    """Exit the process at once."""
    sys.stdout.flush()
    os._exit(code)


@mcp.tool()
def spawn_child() -> int:
    """Start a long-lived child in this process group; return its pid."""
    child = subprocess.Popen(["sleep", "600"], stdin=subprocess.DEVNULL)
    return child.pid


@mcp.tool()
async def list_changed(ctx: Context) -> str:
    """Send notifications/tools/list_changed on the session's standalone stream."""
    await ctx.session.send_tool_list_changed()
    return "sent"


@mcp.tool()
async def ask_client(ctx: Context) -> dict[str, Any]:
    """Send the client a ping and a roots/list request on this request's stream; report."""
    related = ServerMessageMetadata(related_request_id=ctx.request_context.request_id)
    out: dict[str, Any] = {}
    for name, request in (("ping", types.PingRequest()), ("roots", types.ListRootsRequest())):
        try:
            await ctx.session.send_request(request, types.EmptyResult, metadata=related)
            out[name] = "ok"
        except Exception as exc:
            out[name] = f"error: {exc}"
    return out


@mcp.tool()
async def progress(ctx: Context) -> str:
    """Report progress twice (related to this request), then answer."""
    await ctx.info("working")
    await ctx.report_progress(1, 2)
    return "finished"


class BearerGuard:
    """Require ``Authorization: Bearer <token>`` on HTTP requests (401 otherwise)."""

    def __init__(self, app: Any, token: str) -> None:
        self.app, self.expected = app, ("Bearer " + token).encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if (
            scope["type"] == "http"
            and dict(scope["headers"]).get(b"authorization") != self.expected
        ):
            start = {"type": "http.response.start", "status": 401, "headers": []}
            await send(start)
            await send({"type": "http.response.body", "body": b"unauthorized"})
            return
        await self.app(scope, receive, send)


class HandshakeOnly:
    """A 2025 server: a 2026-07-28 request (its MCP-Protocol-Version header) gets the 400 such
    a server answers an unknown version with, so a dual-era client uses initialize."""

    _KNOWN = frozenset({b"2024-11-05", b"2025-03-26", b"2025-06-18", b"2025-11-25"})

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            version = dict(scope["headers"]).get(b"mcp-protocol-version")
            if version is not None and version not in self._KNOWN:
                await send({"type": "http.response.start", "status": 400,
                            "headers": [(b"content-type", b"application/json")]})
                await send({"type": "http.response.body", "body": b'{"jsonrpc":"2.0","id":null,'
                            b'"error":{"code":-32600,"message":"Unsupported protocol version"}}'})
                return
        await self.app(scope, receive, send)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--transport", default="streamable-http")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--stateless", action="store_true")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--token")
    ap.add_argument("--handshake-only", action="store_true", help="refuse 2026-07-28 requests")
    ap.add_argument("--app-from", help="serve the `mcp` object of this script instead")
    args = ap.parse_args()
    server = mcp
    if args.app_from:
        spec = importlib.util.spec_from_file_location("borrowed_server", args.app_from)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        server = module.mcp
    if args.transport == "stdio":
        server.run("stdio")
        return
    if args.transport == "sse":
        app: Any = server.sse_app()
    else:
        app = server.streamable_http_app(stateless_http=args.stateless, json_response=args.json)
    if args.handshake_only:
        app = HandshakeOnly(app)
    if args.token:
        app = BearerGuard(app, args.token)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(128)
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=1)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
