"""What several subcommands share: reading manifests and compiling them."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import yaml

from mcpyard import compiler, hub, manifests
from mcpyard.api._problem import Problem


@dataclass(frozen=True)
class Result:
    loaded: manifests.Loaded
    compiled: compiler.Compilation

    @property
    def problems(self) -> list[Problem]:
        return sorted({*self.loaded.problems, *self.compiled.problems})

    @property
    def failed(self) -> bool:
        return bool(self.loaded.errors) or any(p.severity == "error" for p in self.problems)


def compile_loaded(loaded: manifests.Loaded, *, target: compiler.Target = "cluster") -> Result:
    compiled = compiler.compile(loaded.resources, now=datetime.now(UTC), catalog=hub.catalog(),
                                target=target)
    return Result(loaded, compiled)


def compile_paths(paths: Sequence[Path], *, target: compiler.Target = "cluster") -> Result:
    return compile_loaded(manifests.load(paths), target=target)


# Everything str.splitlines() breaks on (and other control characters): a name or a value
# from a manifest must never break the one-line-per-problem output.
_ONE_LINE = {c: f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"
             for c in (*range(0x20), *range(0x7f, 0xa0), 0x2028, 0x2029)}


def one_line(text: str) -> str:
    return text.translate(_ONE_LINE)


def print_problems(result: Result, *, warnings: bool = True) -> None:
    """Errors one per line on stdout, warnings on stderr (they don't fail a check)."""
    for line in result.loaded.errors:
        print(one_line(line))
    for p in result.problems:
        # The file and line first, as the loader's own errors and compilers do: a problem
        # names where to look, the resource and the field.
        source = p.source or result.loaded.sources.get((p.namespace, p.kind, p.name))
        text = one_line(f"{source}: {p}" if source else str(p))
        if p.severity == "error":
            print(text)
        elif warnings:
            print(f"warning: {text}", file=sys.stderr)


def dump(data: object, output: str) -> str:
    if output == "json":
        import json

        return json.dumps(data, indent=2, sort_keys=False, default=str) + "\n"
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=100)
