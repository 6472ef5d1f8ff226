"""A stdio MCP server (official SDK) whose tools are named in a file, read at start:
``python listing_app.py FILE`` serves one tool per line of FILE (each returns its own name).
A test rewrites FILE and restarts the process to change what the server serves."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from mcp.server.mcpserver import MCPServer


def tool(name: str) -> Callable[[], str]:
    def answer() -> str:
        return name

    return answer


def main() -> None:
    server = MCPServer("listing", log_level="WARNING")
    for name in Path(sys.argv[1]).read_text().split():
        server.add_tool(tool(name), name=name, description=f"the tool {name}")
    server.run("stdio")


if __name__ == "__main__":
    main()
