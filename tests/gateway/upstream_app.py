"""A real MCP server (official SDK) the gateway tests put behind the gateway.

``python upstream_app.py --port P --kind alpha|beta [--token T]``: streamable HTTP at /mcp.
``auth_header`` reports the Authorization header it received, so a test can prove that the
member's token never reaches an upstream while the injected secret does.
"""

from __future__ import annotations

import argparse
import hmac

import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError


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
    ap.add_argument("--kind", choices=["alpha", "beta"], required=True)
    ap.add_argument("--token")
    args = ap.parse_args()
    app: object = build(args.kind).streamable_http_app()
    if args.token:
        app = _Guard(app, args.token)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning",  # type: ignore[arg-type]
                access_log=False)


if __name__ == "__main__":
    main()
