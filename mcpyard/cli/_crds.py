"""``mcpyard crds``: the CustomResourceDefinitions, generated from the models."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from mcpyard.api import crd
from mcpyard.jsontypes import JSONObject


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "crds", help="print the CustomResourceDefinitions (kubectl apply -f -)")
    p.add_argument("--out-dir", type=Path, metavar="DIR",
                   help="write one file per CRD into DIR instead (how crds/ is made)")
    p.set_defaults(func=run)


def render() -> str:
    """The CRDs as one multi-document YAML stream, as committed in crds/."""
    return "---\n".join(yaml.safe_dump(d, sort_keys=False, width=100)
                        for d in crd.definitions())


def files() -> dict[str, str]:
    """File name -> YAML text of each CRD, as committed in crds/."""
    return {f"{_name(d)}.yaml": yaml.safe_dump(d, sort_keys=False, width=100)
            for d in crd.definitions()}


def _name(definition: JSONObject) -> str:
    meta = definition["metadata"]
    if not isinstance(meta, dict):
        raise TypeError("a CRD without metadata")
    return str(meta["name"])


def run(args: argparse.Namespace) -> int:
    if args.out_dir is None:
        sys.stdout.write(render())
        return 0
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name, text in files().items():
        (args.out_dir / name).write_text(text)
        print(f"wrote {args.out_dir / name}")
    return 0
