"""JSON value types, one definition for every layer (pure: imports nothing of mcpyard).

What arrives (the wire, a YAML document, a Kubernetes object) is typed ``JSONValue`` or
``JSONObject`` until it is checked and narrowed where it is read; what is sent or only encoded
is ``JSONLike``. :mod:`mcpyard.mcp.jsonrpc` re-exports them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeAlias

JSONValue: TypeAlias = (
    "dict[str, JSONValue] | list[JSONValue] | str | int | float | bool | None"
)
"""Any JSON value, as orjson (or a YAML loader) parses it."""
JSONObject: TypeAlias = "dict[str, JSONValue]"
"""A JSON object: a JSON-RPC message, its params or its result; a resource; a manifest."""
JSONLike: TypeAlias = (
    "Mapping[str, JSONLike] | Sequence[JSONLike] | str | int | float | bool | None"
)
"""A JSON value to send: read-only containers, so that a ``dict[str, str]`` or a pydantic dump
fits where the parsed ``JSONValue`` (invariant ``dict``/``list``) would not."""
