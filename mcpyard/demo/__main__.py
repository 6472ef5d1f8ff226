"""``python -m mcpyard.demo``: run the demo MCP server (see the package docstring)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from mcpyard import demo


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mcpyard.demo", description="The mcpyard demo MCP server."
    )
    parser.add_argument(
        "--transport",
        choices=("stdio", "streamable-http"),
        default="stdio",
        help="stdio (default) or streamable-http (served at /mcp)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="listen address (streamable-http)")
    parser.add_argument("--port", type=int, default=8000, help="listen port (streamable-http)")
    parser.add_argument(
        "--token-env",
        metavar="NAME",
        help="require 'Authorization: Bearer <value of env NAME>' (streamable-http only)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    server = demo.build_server()
    if args.transport == "stdio":
        if args.token_env:
            print("--token-env needs --transport streamable-http", file=sys.stderr)
            return 2
        server.run("stdio")
        return 0

    import uvicorn  # only the HTTP mode needs it

    app: Any = server.streamable_http_app(host=args.host)
    if args.token_env:
        token = os.environ.get(args.token_env, "")
        if not token:
            print(
                f"--token-env: environment variable {args.token_env} is empty or unset",
                file=sys.stderr,
            )
            return 2
        app = demo.BearerAuth(app, token)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
