"""``mcpyard validate DIR...``: exit 0 when valid, else one line per problem and exit 1."""

from __future__ import annotations

import argparse
from pathlib import Path

from mcpyard.cli import _common


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "validate", help="check manifests; one line per problem",
        description="Exit 0 when every manifest is valid; otherwise print one line per problem "
                    "(<namespace>/<Kind>/<name>: <field path>: <message>) and exit 1.")
    p.add_argument("paths", nargs="+", type=Path, metavar="DIR")
    p.add_argument("--target", choices=["cluster", "local"], default="cluster",
                   help="check for a cluster (default) or for `mcpyard serve`")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    result = _common.compile_paths(args.paths, target=args.target)
    _common.print_problems(result)
    return 1 if result.failed else 0
