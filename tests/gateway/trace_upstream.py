"""An MCP server (official SDK) that reports the W3C trace context it received.

``python trace_upstream.py --port P``: streamable HTTP at /mcp; the tool ``traceparent``
answers with the ``traceparent`` header of the request that called it ("none" when absent).
"""

from __future__ import annotations

import argparse

import uvicorn
from mcp.server.mcpserver import Context, MCPServer


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args()
    server = MCPServer("trace-upstream", version="1.0.0", log_level="WARNING")

    @server.tool()
    def traceparent(ctx: Context, text: str = "") -> str:
        """The traceparent header this server received."""
        headers = ctx.headers
        return (headers.get("traceparent") if headers else None) or "none"

    uvicorn.run(server.streamable_http_app(), host="127.0.0.1", port=args.port,  # type: ignore[arg-type]
                log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
