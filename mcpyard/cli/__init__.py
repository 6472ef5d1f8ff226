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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mcpyard", description="A GitOps gateway for MCP servers."
    )
    parser.add_argument("--version", action="version", version=f"mcpyard {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in _COMMANDS.modules():
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    sys.stdout.flush()
    return code


__all__ = ["build_parser", "main"]
