"""``mcpyard access diff OLD NEW``: who gains or loses which tools, for pull-request review."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mcpyard import errors, manifests
from mcpyard.cli import _common
from mcpyard.compiler import diff as access_diff


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p: argparse.ArgumentParser = sub.add_parser("access", help="review access changes")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    d: argparse.ArgumentParser = actions.add_parser(
        "diff", help="who gains or loses which tools between OLD and NEW",
        description="OLD and NEW are folders, or git revisions of the repository in the "
                    "current directory (then --path limits which folders are read).")
    d.add_argument("old", metavar="OLD")
    d.add_argument("new", metavar="NEW")
    d.add_argument("--format", choices=["text", "markdown", "json"], default="text")
    d.add_argument("--path", action="append", default=None, metavar="DIR",
                   help="with git revisions: read manifests below DIR only (repeatable)")
    d.add_argument("--tools", type=Path, metavar="FILE",
                   help="YAML of known tools, {namespace/server: [tool, ...]}, for a per-tool "
                        "diff of servers whose tools the manifests don't list")
    d.add_argument("--exit-code", action="store_true",
                   help="exit 1 when access changed (for scripts)")
    d.set_defaults(func=run)


def _load(ref: str, paths: list[str] | None) -> manifests.Loaded:
    path = Path(ref)
    if path.exists():
        return manifests.load([path])
    return manifests.load_revision(ref, paths or ["."])


def _tools(path: Path | None) -> dict[tuple[str, str], list[str]]:
    if path is None:
        return {}
    import yaml

    data = yaml.safe_load(path.read_text()) or {}
    out = {}
    for key, names in data.items():
        ns, _, name = str(key).partition("/")
        out[(ns, name)] = [str(n) for n in names or []]
    return out


def render_text(result: access_diff.AccessDiff, *, markdown: bool) -> str:
    if result.empty:
        return "No access changes.\n"
    lines = ["## Access changes", ""] if markdown else []
    for ws in result.workspaces:
        title = f"workspace {ws.name} ({ws.namespace}): {ws.change}"
        lines += [f"### {title}", ""] if markdown else [title]
        for d in ws.details:
            lines.append(f"- {d}" if markdown else f"  {d}")
        for m in ws.members:
            head = f"{m.name} <{m.user}>: {m.change}"
            lines.append(f"- **{m.name}** ({m.user}): {m.change}" if markdown else f"  {head}")
            ind = "  - " if markdown else "    "
            lines += [f"{ind}+ {t}" if not markdown else f"{ind}gains `{t}`" for t in m.gains]
            lines += [f"{ind}- {t}" if not markdown else f"{ind}loses `{t}`" for t in m.loses]
            lines += [f"{ind}{d}" for d in m.details]
        if markdown:
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def run(args: argparse.Namespace) -> int:
    try:
        old, new = _load(args.old, args.path), _load(args.new, args.path)
    except errors.ManifestError as exc:
        print(f"access diff: {exc}", file=sys.stderr)
        return 2
    results = []
    for side, loaded in (("OLD", old), ("NEW", new)):
        result = _common.compile_loaded(loaded)
        if result.failed:
            print(f"access diff: {side} has problems (invalid resources are left out):",
                  file=sys.stderr)
            for line in [*loaded.errors, *(str(p) for p in result.problems
                                           if p.severity == "error")]:
                print(f"  {line}", file=sys.stderr)
        results.append(result)
    known = _tools(args.tools)
    changes = access_diff.diff(results[0].compiled.workspaces, results[1].compiled.workspaces,
                               old_tools=known, new_tools=known)
    if args.format == "json":
        sys.stdout.write(json.dumps(changes.to_dict(), indent=2) + "\n")
    else:
        sys.stdout.write(render_text(changes, markdown=args.format == "markdown"))
    return 1 if args.exit_code and not changes.empty else 0
