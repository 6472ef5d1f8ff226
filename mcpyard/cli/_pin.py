"""``mcpyard pin DIR``: write each server's current tool hashes into its MCPServer manifest.

The servers are started as ``serve`` starts them (or their lists read from ``--tools``); each
MCPServer's ``spec.tools.pin`` becomes the map of its tools' definition hashes
(:func:`mcpyard.discovery.pins.pin_map`). Only that key changes: the files are edited with a
round-trip YAML parser, so comments, order and the other documents stay as they were, and
the change is a reviewable diff. ``--check`` writes nothing and exits 1 when a pin differs.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

from ruamel.yaml import YAML

from mcpyard import manifests
from mcpyard.cli import _discover
from mcpyard.discovery import pins


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "pin", help="write the servers' current tool hashes into spec.tools.pin",
        description="Start each server of DIR as `serve` would (or read --tools FILE) and "
                    "write the hash of each tool's definition into its MCPServer's "
                    "spec.tools.pin; a pinned tool whose definition changes is withheld "
                    "until the pin is updated.")
    _discover.add_options(p)
    p.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 when a pin would change")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    found = _discover.run_discovery(args, "pin")
    if found is None:
        return 2
    wanted: dict[tuple[str, str], dict[str, str]] = {}
    for live in found.lives.values():
        for handle in live.handles.values():
            if handle.tools is not None:
                wanted[(handle.server.namespace, handle.server.name)] = pins.pin_map(
                    handle.tools)
    changed = 0
    for path in manifests._files(args.folder):
        changed += _pin_file(path, wanted, write=not args.check)
    verb = "differ" if args.check else "updated"
    print(f"{changed} MCPServer pins {verb}")
    return 1 if args.check and changed else 0


def _yaml() -> YAML:
    y = YAML()
    y.preserve_quotes = True
    y.width = 4096
    y.indent(mapping=2, sequence=4, offset=2)
    return y


def _pin_file(path: Path, wanted: dict[tuple[str, str], dict[str, str]], *,
              write: bool) -> int:
    y = _yaml()
    text = path.read_text()
    docs = list(y.load_all(text))
    changed = 0
    for doc in docs:
        if not isinstance(doc, dict) or doc.get("kind") != "MCPServer":
            continue
        meta = doc.get("metadata") or {}
        key = (str(meta.get("namespace") or "default"), str(meta.get("name")))
        if key not in wanted:
            continue
        spec = doc.setdefault("spec", {})
        tools = spec.get("tools")
        if tools is None:
            spec["tools"] = tools = {}
        if dict(tools.get("pin") or {}) == wanted[key]:
            continue
        tools["pin"] = dict(wanted[key])
        changed += 1
        print(f"{path}: {key[0]}/MCPServer/{key[1]}: pinned {len(wanted[key])} tools")
    if changed and write:
        out = io.StringIO()
        y.dump_all(docs, out)
        path.write_text(out.getvalue())
    return changed
