"""A real MCP server (official SDK) the gateway tests put behind the gateway.

``python upstream_app.py --port P --kind alpha|beta|leaky|slow [--token T]``: streamable
HTTP at /mcp.
``auth_header`` reports the Authorization header it received, so a test can prove that the
member's token never reaches an upstream while the injected secret does.
"""

from __future__ import annotations

import argparse
import base64
import hmac
from pathlib import Path
from urllib.parse import quote

import anyio
import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError


def build(kind: str) -> MCPServer:
    server = MCPServer(f"test-{kind}", version="1.0.0", log_level="WARNING")
    if kind == "alpha":
        @server.tool()
        def echo(text: str) -> str:
            """Echo the text."""
            return f"alpha:{text}"

        @server.tool()
        def add(a: int, b: int) -> int:
            """Add two numbers."""
            return a + b

        @server.tool()
        def delete_everything() -> str:
            """A dangerous tool that server filters hide."""
            return "deleted"

        @server.tool()
        def fail(message: str) -> str:
            """Fail on purpose."""
            raise ToolError(message)

        @server.tool()
        def auth_header(ctx: Context) -> str:
            """The Authorization header this server received ("none" when absent)."""
            headers = ctx.headers
            return (headers.get("authorization") if headers else None) or "none"
    elif kind == "slow":
        @server.tool()
        async def sleep(seconds: float, marker: str) -> str:
            """Touch ``marker`` (the call has arrived), then sleep."""
            Path(marker).touch()
            await anyio.sleep(seconds)
            return f"slept {seconds}"
    elif kind == "leaky":
        # A careless API: it quotes the key it was given, as real APIs do in their errors.
        def key(ctx: Context) -> str:
            headers = ctx.headers
            return ((headers.get("authorization") if headers else None) or "").removeprefix(
                "Bearer ")

        @server.tool()
        def key_in_error(ctx: Context) -> str:
            """A JSON-RPC error quoting the key."""
            raise MCPError(code=-32001, message=f"invalid API key {key(ctx)}",
                           data={"key": key(ctx)})

        @server.tool()
        def key_in_tool_error(ctx: Context) -> str:
            """A tool error (isError) quoting the key."""
            raise ToolError(f"invalid API key {key(ctx)}")

        @server.tool()
        async def key_in_result(ctx: Context) -> str:
            """A result quoting the key in every common encoding (and a progress note)."""
            k = key(ctx)
            await ctx.report_progress(1, 2, f"using key {k}")
            return "\n".join([
                f"plain: invalid API key {k}",
                f"basic: Basic {base64.b64encode(f'user:{k}'.encode()).decode()}",
                f"base64url: {base64.urlsafe_b64encode(k.encode()).decode().rstrip('=')}",
                f"url: https://api.example.com/v1?key={quote(k, safe='')}",
                f"hex: {k.encode().hex().upper()}",
                "fine: nothing secret here",
            ])
    elif kind == "mirror":
        @server.tool()
        def headers(ctx: Context) -> str:
            """Every HTTP header this server received with the call, as JSON."""
            import json

            return json.dumps(dict(ctx.headers or {}))
    else:
        @server.tool()
        def echo(text: str) -> str:
            """Echo the text."""
            return f"beta:{text}"

        @server.tool()
        def hello(name: str) -> str:
            """Greet someone."""
            return f"hello {name}"
    return server


class _Guard:
    def __init__(self, app: object, token: str) -> None:
        self.app, self.expected = app, f"Bearer {token}".encode()

    async def __call__(self, scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] == "http":
            got = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(got, self.expected):
                await send({"type": "http.response.start", "status": 401, "headers": []})
                await send({"type": "http.response.body", "body": b""})
                return
        await self.app(scope, receive, send)  # type: ignore[operator]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--kind", choices=["alpha", "beta", "leaky", "slow", "mirror"], required=True)
    ap.add_argument("--token")
    args = ap.parse_args()
    app: object = build(args.kind).streamable_http_app()
    if args.token:
        app = _Guard(app, args.token)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning",  # type: ignore[arg-type]
                access_log=False)


if __name__ == "__main__":
    main()
