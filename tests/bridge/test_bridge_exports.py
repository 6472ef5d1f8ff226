"""The bridge package's public names (httpx style: sorted and honest)."""

from __future__ import annotations

import mcpyard.bridge
from mcpyard.cli import build_parser


def test_all_is_sorted_and_honest() -> None:
    assert mcpyard.bridge.__all__ == ["BridgeApp", "Settings", "run", "serve"]
    for name in mcpyard.bridge.__all__:
        assert hasattr(mcpyard.bridge, name)


def test_bridge_is_a_subcommand() -> None:
    args = build_parser().parse_args(["bridge", "--port", "9", "--", "uvx", "mcp-server-time"])
    assert (args.port, args.path, args.command) == (9, "/mcp", ["--", "uvx", "mcp-server-time"])
