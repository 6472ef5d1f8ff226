"""The ``mcpyard`` command: a thin layer over the compiler, crypto, hub and gateway.

Each subcommand lives in its own module with ``register(subparsers)``; it parses arguments,
calls library functions, prints, and returns an exit code. No rule lives here.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mcpyard import __version__
from mcpyard.cli import _COMMANDS


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Every subcommand, or only ``command`` (the others are not imported)."""
    parser = argparse.ArgumentParser(
        prog="mcpyard", description="A GitOps gateway for MCP servers."
    )
    parser.add_argument("--version", action="version", version=f"mcpyard {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in _COMMANDS.modules(command):
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(words[0] if words else None)
    args = parser.parse_args(words)
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    sys.stdout.flush()
    return code


__all__ = ["build_parser", "main"]
