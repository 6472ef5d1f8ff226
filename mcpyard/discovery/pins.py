"""Pinned tool definitions: a hash per reviewed tool definition, and what no longer matches.

A tool's definition is what a client (and the model behind it) reads to decide what the tool
does: its name, title, description, input and output schemas and annotations. Its hash is the
SHA-256 of that part in canonical JSON (keys sorted, no spaces, UTF-8), written
``sha256:HEX``. When an MCPServer pins its tools (``spec.tools.pin``), a tool whose hash
differs from its pin (``changed``) or that has no pin (``unpinned``: the server added it after
the review) is withheld until the pin is updated in git.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Literal, TypeVar

from mcpyard.compiler import access
from mcpyard.compiler.config import ServerConfig

DEFINITION_FIELDS = ("name", "title", "description", "inputSchema", "outputSchema",
                     "annotations")

Reason = Literal["changed", "unpinned"]
T = TypeVar("T", bound=Mapping[str, object])


def canonical(tool: Mapping[str, object]) -> bytes:
    """The canonical bytes of a tool's definition (what its hash covers)."""
    part = {k: tool[k] for k in DEFINITION_FIELDS if k in tool and tool[k] is not None}
    return json.dumps(part, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def digest(tool: Mapping[str, object]) -> str:
    return "sha256:" + hashlib.sha256(canonical(tool)).hexdigest()


def verdict(pin: Mapping[str, str] | None, tool: Mapping[str, object]) -> Reason | None:
    """Why a tool is withheld under ``pin``, or None when it may be served."""
    if pin is None:
        return None
    expected = pin.get(str(tool.get("name")))
    if expected is None:
        return "unpinned"
    return None if expected == digest(tool) else "changed"


def withheld(pin: Mapping[str, str] | None,
             tools: Iterable[Mapping[str, object]]) -> dict[str, Reason]:
    """The tools ``pin`` withholds, by the server's own name."""
    out: dict[str, Reason] = {}
    if pin is None:
        return out
    for tool in tools:
        reason = verdict(pin, tool)
        if reason is not None:
            out[str(tool.get("name"))] = reason
    return out


def pin_map(tools: Iterable[Mapping[str, object]]) -> dict[str, str]:
    """Name -> hash of each tool, sorted by name (what ``mcpyard pin`` writes)."""
    found = {str(t["name"]): digest(t) for t in tools if isinstance(t.get("name"), str)}
    return dict(sorted(found.items()))


def split(server: ServerConfig, tools: Iterable[T]) -> tuple[list[T], dict[str, Reason]]:
    """The tools the server's filter exposes, divided into those its pins admit (what members
    are served, in order) and those they withhold (by the server's own name): the one place
    both rules meet (the gateway's tool table, the operator's manifests and conditions)."""
    served: list[T] = []
    held: dict[str, Reason] = {}
    for tool in tools:
        name = tool.get("name")
        if not isinstance(name, str) or not access.server_exposes(server.tools, name):
            continue
        reason = verdict(server.tools.pin, tool)
        if reason is None:
            served.append(tool)
        else:
            held[name] = reason
    return served, held
