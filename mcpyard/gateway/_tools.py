"""The tool table of a workspace: every server's tools under their namespaced names.

Built from the cached tool lists of the workspace's servers: a server's filter
(:func:`access.server_exposes`) decides what enters the table, the namespaced name comes from
:func:`naming.namespaced`, and each member sees the part its access rules allow
(:func:`access.member_may_use`). Tool objects pass through untouched except ``name``.
Lists are sorted by namespaced name, so the order never depends on which server answered first;
a cursor names the last tool of the previous page, so paging survives a reload.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import logging
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from mcpyard.compiler import access, naming
from mcpyard.compiler.config import MemberConfig, ServerConfig

log = logging.getLogger("mcpyard.gateway")


@dataclass(frozen=True, slots=True)
class Entry:
    name: str
    """The namespaced (possibly shortened) name clients see."""
    slug: str
    original: str
    """The tool's name on its server."""
    tool: dict[str, Any]
    """The tool object as the server sent it, with ``name`` replaced."""


@dataclass(frozen=True, slots=True)
class View:
    """What one member sees: the listable tools and every name it may call."""

    tools: list[dict[str, Any]]
    names: list[str]
    allowed: frozenset[str]


class ToolTable:
    __slots__ = ("by_name", "entries", "signature")

    def __init__(self, sources: Iterable[tuple[ServerConfig, Sequence[dict[str, Any]]]]) -> None:
        table: dict[str, Entry] = {}
        for server, tools in sources:
            for tool in tools:
                original = tool.get("name") if isinstance(tool, dict) else None
                if not isinstance(original, str) or not access.server_exposes(server.tools,
                                                                               original):
                    continue
                name = naming.namespaced(server.slug, original)
                if name in table:
                    log.warning("server %s: tool %s maps to %s, which %s/%s already has; "
                                "keeping the first", server.slug, original, name,
                                table[name].slug, table[name].original)
                    continue
                table[name] = Entry(name, server.slug, original, {**tool, "name": name})
        self.entries = tuple(table[n] for n in sorted(table))
        self.by_name = table
        self.signature = orjson.dumps([e.tool for e in self.entries])
        """Equal signatures mean equal lists, to decide whether clients need list_changed."""

    def view(self, member: MemberConfig, available: Collection[str]) -> View:
        allowed = [e for e in self.entries if access.member_may_use(member, e.name)]
        listed = [e for e in allowed if e.slug in available]
        return View([e.tool for e in listed], [e.name for e in listed],
                    frozenset(e.name for e in allowed))


class InvalidCursor(ValueError):
    pass


def page(view: View, cursor: Any, size: int) -> dict[str, Any]:
    """One page of a member's tools/list result."""
    start = 0
    if cursor is not None:
        start = bisect.bisect_right(view.names, _decode(cursor))
    end = start + size
    out: dict[str, Any] = {"tools": view.tools[start:end]}
    if end < len(view.tools):
        out["nextCursor"] = _encode(view.names[end - 1])
    return out


def _encode(after: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(["t1", after])).decode("ascii")


def _decode(cursor: Any) -> str:
    try:
        kind, after = orjson.loads(base64.urlsafe_b64decode(cursor.encode("ascii")))
    except (AttributeError, ValueError, TypeError, UnicodeError, binascii.Error,
            orjson.JSONDecodeError):
        raise InvalidCursor("invalid cursor") from None
    if kind != "t1" or not isinstance(after, str):
        raise InvalidCursor("invalid cursor")
    return after
