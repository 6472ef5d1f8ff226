"""What the servers of a folder of manifests report, for ``mcpyard docs`` and ``mcpyard pin``.

Either the servers are started exactly as ``mcpyard serve`` starts them (the gateway's own
runtime, in process, without a listener; secrets decrypted with the same age key) and asked
for their lists, or their lists are read from a tools file: JSON, ``{"NAMESPACE/NAME":
{"tools": [...], "prompts": [...], "resources": [...], "resourceTemplates": [...]}}`` keyed by
MCPServer, as ``--save-tools`` writes it. Both give :class:`Found`: the live snapshots of
every workspace, whose handles carry the lists, ready for the gateway's own manifest builder.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from mcpyard import errors
from mcpyard.cli import _common
from mcpyard.gateway import Settings, build_app
from mcpyard.gateway._runtime import Live, Runtime
from mcpyard.gateway._upstreams import Handle
from mcpyard.jsontypes import JSONObject

LIST_KEYS = ("prompts", "resources", "resourceTemplates")


@dataclass
class Found:
    lives: dict[str, Live]
    """Workspace name -> its snapshot (handles with the lists their servers gave)."""
    down: dict[str, str] = field(default_factory=dict)
    """``workspace/slug`` -> why its lists are unknown."""

    def tools_file(self) -> JSONObject:
        """What a tools file holds for these servers."""
        out: JSONObject = {}
        for live in self.lives.values():
            for handle in live.handles.values():
                if handle.tools is None:
                    continue
                entry: JSONObject = {"tools": list(handle.tools)}
                entry.update({k: list(v) for k, v in handle.lists.items()})
                out[f"{handle.server.namespace}/{handle.server.name}"] = entry
        return dict(sorted(out.items()))


def from_tools_file(folder: Path, tools_file: Path) -> Found:
    """The folder's compiled workspaces with the lists a tools file gives."""
    try:
        data = json.loads(tools_file.read_text())
    except (OSError, ValueError) as exc:
        raise errors.MCPyardError(f"{tools_file}: {exc}") from None
    if not isinstance(data, dict):
        raise errors.MCPyardError(f"{tools_file}: expected an object keyed by NAMESPACE/NAME")
    result = _common.compile_paths([folder], target="local")
    if result.failed:
        _common.print_problems(result)
        raise errors.MCPyardError(f"{folder}: the manifests have problems")
    found = Found(lives={})
    for name, config in sorted(result.compiled.workspaces.items()):
        handles: dict[str, Handle] = {}
        for server in config.servers:
            handle = Handle(name, server, digest="", blocked=None)
            entry = data.get(f"{server.namespace}/{server.name}")
            if isinstance(entry, dict) and isinstance(entry.get("tools"), list):
                handle.tools = tuple(t for t in entry["tools"] if isinstance(t, dict))
                handle.lists = {k: tuple(entry[k]) for k in LIST_KEYS
                                if isinstance(entry.get(k), list)}
            else:
                found.down[f"{name}/{server.slug}"] = f"not in {tools_file}"
            handles[server.slug] = handle
        found.lives[name] = Live(config, handles)
    return found


async def _started(folder: Path, *, age_key_file: Path | None, timeout: float) -> Found:
    with tempfile.TemporaryDirectory(prefix="mcpyard-discover-") as state:
        settings = Settings(
            manifests=folder, state_dir=Path(state), watch=False, records=False,
            age_key_file=age_key_file,
            age_key=None if age_key_file else os.environ.get("SOPS_AGE_KEY") or None)
        app = build_app(settings)
        runtime: Runtime = app.state.runtime
        async with app.router.lifespan_context(app):
            try:
                async with asyncio.timeout(timeout):
                    while not _settled(runtime):
                        await runtime.changed.wait()
            except TimeoutError:
                pass  # the servers still starting are reported as down
            found = Found(lives=dict(runtime.live))
            for name, live in runtime.live.items():
                for slug, handle in live.handles.items():
                    if handle.tools is None:
                        found.down[f"{name}/{slug}"] = handle.why_down
            return found


def _settled(runtime: Runtime) -> bool:
    return runtime.loaded and all(
        h.tools is not None or h.status()["status"] != "starting"
        for live in runtime.live.values() for h in live.handles.values())


def discover(folder: Path, *, tools_file: Path | None, age_key_file: Path | None,
             timeout: float) -> Found:
    if not folder.is_dir():
        raise errors.MCPyardError(f"{folder}: not a folder")
    if tools_file is not None:
        return from_tools_file(folder, tools_file)
    return asyncio.run(_started(folder, age_key_file=age_key_file, timeout=timeout))


def add_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder", type=Path, metavar="DIR", help="folder of manifests")
    p.add_argument("--tools", type=Path, metavar="FILE", dest="tools_file",
                   help="read the servers' lists from FILE (JSON keyed by NAMESPACE/NAME) "
                        "instead of starting the servers")
    p.add_argument("--save-tools", type=Path, metavar="FILE",
                   help="also write the lists found to FILE (for a later --tools)")
    p.add_argument("--age-key-file", type=Path,
                   default=os.environ.get("MCPYARD_AGE_KEY_FILE")
                   or os.environ.get("SOPS_AGE_KEY_FILE"),
                   help="age identity for EncryptedSecrets (as for serve)")
    p.add_argument("--timeout", type=float, default=60.0,
                   help="seconds to wait for the servers to list their tools (default 60)")


def run_discovery(args: argparse.Namespace, command: str) -> Found | None:
    """What the folder's servers report (warning on stderr for each one whose lists are
    unknown), or None after saying why nothing could be found."""
    try:
        found = discover(args.folder, tools_file=args.tools_file,
                         age_key_file=args.age_key_file, timeout=args.timeout)
    except errors.MCPyardError as exc:
        print(f"mcpyard {command}: {exc}", file=sys.stderr)
        return None
    if args.save_tools is not None:
        args.save_tools.write_text(json.dumps(found.tools_file(), indent=2) + "\n")
    for where, why in sorted(found.down.items()):
        print(f"warning: {where}: no tools known: {why}", file=sys.stderr)
    return found
