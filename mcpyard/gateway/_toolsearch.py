"""The workspace's own tools when ``toolSearch`` is on: ``find_tools`` and ``call_tool``.

``find_tools(query, limit)`` ranks the member's tools (those it may call, on servers serving
now) with the workspace's search index and answers with their definitions (input schemas
included), as a JSON text block. ``call_tool(name, arguments)`` is unwrapped here into the
plain ``tools/call`` it stands for; the router then answers it exactly like a direct call
(same access check, same limits, same call record, under the real tool's name).
"""

from __future__ import annotations

import asyncio

import orjson

from mcpyard.gateway import _catalog
from mcpyard.gateway._runtime import Live
from mcpyard.mcp import jsonrpc as rpc

_ANSWERED = ("name", "title", "description", "inputSchema", "outputSchema", "annotations")


def handles(live: Live, name: str) -> bool:
    """Whether ``name`` is one of the gateway's own search tools in this workspace."""
    return bool(live.config.tool_search) and name in (_catalog.FIND_TOOLS_NAME,
                                                      _catalog.CALL_TOOL_NAME)


def _tool_error(id_: rpc.Id, message: str) -> rpc.Message:
    # Bad arguments are the model's to fix: a tool result with isError, as the spec asks.
    return rpc.result(id_, {"content": [{"type": "text", "text": message}], "isError": True})


async def find(live: Live, view: _catalog.View, id_: rpc.Id, arguments: rpc.JSONValue
               ) -> rpc.Message:
    """The answer to ``find_tools``. The table's index is built on first use, in a thread:
    a workspace of a thousand tools takes a few hundred ms to index, which must not stall
    every other request of the gateway."""
    args = arguments if isinstance(arguments, dict) else {}
    query = args.get("query")
    if not isinstance(query, str) or not query.strip():
        return _tool_error(id_, "find_tools needs a query: what you want to do, in words")
    limit = args.get("limit", 5)
    if type(limit) is not int or not 1 <= limit <= _catalog.SEARCH_LIMIT:
        return _tool_error(id_, f"limit must be an integer from 1 to {_catalog.SEARCH_LIMIT}")
    index = live.table.built_index()
    if index is None:
        index = await asyncio.to_thread(live.table.index)
    hits = index.search(query, limit=limit, admit=view.listed.__contains__)
    found = []
    for hit in hits:
        item = live.table.by_key[hit.key].item
        found.append({k: item[k] for k in _ANSWERED if k in item})
    text = orjson.dumps({"tools": found}).decode() if found else (
        "No tool matches; try other words.")
    return rpc.result(id_, {"content": [{"type": "text", "text": text}]})


def unwrap(id_: rpc.Id, params: rpc.JSONObject) -> rpc.Message:
    """The ``tools/call`` params a ``call_tool`` stands for, or (under ``"error"`` /
    ``"result"``) the reply to send instead when its arguments are unusable."""
    args = params.get("arguments")
    args = args if isinstance(args, dict) else {}
    name = args.get("name")
    inner = args.get("arguments", {})
    if not isinstance(name, str) or not name:
        return _tool_error(id_, "call_tool needs the name of a tool (from find_tools)")
    if not isinstance(inner, dict):
        return _tool_error(id_, "call_tool: arguments must be an object")
    if name in (_catalog.FIND_TOOLS_NAME, _catalog.CALL_TOOL_NAME):
        return _tool_error(id_, f"call_tool cannot call {name}; call it directly")
    out = {k: v for k, v in params.items() if k != "arguments"}
    out["name"] = name
    out["arguments"] = inner
    return {"params": out}
