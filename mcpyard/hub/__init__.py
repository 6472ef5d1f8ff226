"""The hub: a catalog of MCP servers that an MCPServer can install by name.

Each entry is a data file, ``catalog/<name>.yaml``, in the format of
:class:`mcpyard.api.hub.HubEntry`: how the server runs (a pinned ``uvx``/``npx`` command, an
image, or a remote URL), its licence, which secrets it takes and a JSON Schema of the plain
settings it reads (``spec.hub.env``). :func:`catalog` loads them once from the installed
package; :func:`get` and :func:`search` look entries up; ``_markdown`` renders ``docs/hub.md``.
Nothing here starts a server or touches the network; the compiler expands ``spec.hub``
through these entries.
"""

from __future__ import annotations

from mcpyard.api.hub import HubConfig, HubEntry, HubSecret, HubSetting, Launch, launch
from mcpyard.hub._catalog import catalog, get, search

__all__ = [
    "HubConfig",
    "HubEntry",
    "HubSecret",
    "HubSetting",
    "Launch",
    "catalog",
    "get",
    "launch",
    "search",
]
