"""``mcpyard render DIR``: the compiled configuration and child objects, never a secret."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mcpyard.cli import _common


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "render", help="print the compiled configuration and child objects",
        description="Print what the manifests compile to: each workspace's gateway "
                    "configuration and the Kubernetes objects a cluster needs. Secret values "
                    "are never printed, only references to them.")
    p.add_argument("paths", nargs="+", type=Path, metavar="DIR")
    p.add_argument("-o", "--output", choices=["yaml", "json"], default="yaml")
    p.add_argument("--target", choices=["cluster", "local"], default="cluster",
                   help="render for a cluster (default) or for `mcpyard serve`")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    result = _common.compile_paths(args.paths, target=args.target)
    data = {
        "workspaces": [ws.model_dump(mode="json") for ws in result.compiled.workspaces.values()],
        "objects": [child.object for child in result.compiled.children],
    }
    sys.stdout.write(_common.dump(data, args.output))
    if result.failed:
        print("render: some resources were left out:", file=sys.stderr)
        for line in [*result.loaded.errors, *map(str, result.problems)]:
            print(f"  {line}", file=sys.stderr)
        return 1
    return 0
