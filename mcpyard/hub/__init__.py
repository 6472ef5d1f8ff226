"""The hub: a catalog of community MCP servers that an MCPServer can install by name.

Each entry is a data file, ``catalog/<name>.yaml``, in the format of
:class:`mcpyard.api.hub.HubEntry`: how the server runs (a pinned ``uvx``/``npx`` command, an
image, or a remote URL) and which secrets it takes. :func:`catalog` loads them once from the
installed package; :func:`get` and :func:`search` look entries up. Nothing here starts a
server or touches the network; the compiler expands ``spec.hub`` through these entries.
"""

from __future__ import annotations

from mcpyard.api.hub import HubEntry, HubSecret
from mcpyard.hub._catalog import catalog, get, search

__all__ = ["HubEntry", "HubSecret", "catalog", "get", "search"]
