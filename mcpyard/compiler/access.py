"""Who may see and call which tool: server filters and member access rules, deny wins.

The one place these rules live; the gateway and ``access diff`` call it.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Iterable

from mcpyard.compiler.config import MemberConfig, ToolFilter


@functools.lru_cache(maxsize=4096)
def _compile(globs: tuple[str, ...]) -> re.Pattern[str]:
    if not globs:
        return re.compile(r"(?!)")
    # Case-sensitive: tool names are case-sensitive, and fnmatch.fnmatch would fold on Windows.
    return re.compile("|".join(f"(?:{fnmatch.translate(g)})" for g in globs))


def matches(globs: Iterable[str], name: str) -> bool:
    return _compile(tuple(globs)).match(name) is not None


def server_exposes(tools: ToolFilter, tool: str) -> bool:
    """Whether a server's filter exposes its own tool ``tool``."""
    return matches(tools.include, tool) and not matches(tools.exclude, tool)


def member_may_use(member: MemberConfig, namespaced_name: str) -> bool:
    """Whether the member's access rules let it use the namespaced tool or prompt, or the
    workspace resource URI (``mcpyard://slug/...``); deny wins."""
    return matches(member.allow, namespaced_name) and not matches(member.deny, namespaced_name)
