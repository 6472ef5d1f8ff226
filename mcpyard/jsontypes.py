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


# -- readers: narrow what arrived where it is read ------------------------------------------
# A missing field and a field of the wrong type read alike (as absent): what validates a
# document says so by name; a reader only must not raise. What they return for an absent
# object or list is a new empty one, to read, never to write into.


def at(value: JSONValue, *path: str) -> JSONValue:
    """The value at ``path`` below ``value``; None where a step is missing or not an object."""
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def obj(value: JSONValue, *path: str) -> JSONObject:
    """The object at ``path`` below ``value`` (``value`` itself without one), else ``{}``."""
    found = at(value, *path)
    return found if isinstance(found, dict) else {}


def seq(value: JSONValue, *path: str) -> list[JSONValue]:
    """The list at ``path`` below ``value``, else ``[]``."""
    found = at(value, *path)
    return found if isinstance(found, list) else []


def objects(value: JSONValue, *path: str) -> list[JSONObject]:
    """The objects in the list at ``path`` below ``value`` (other items skipped)."""
    return [item for item in seq(value, *path) if isinstance(item, dict)]


def texts(value: JSONValue, *path: str) -> list[str]:
    """The strings in the list at ``path`` below ``value`` (other items skipped)."""
    return [item for item in seq(value, *path) if isinstance(item, str)]


def text(value: JSONValue, *path: str, default: str = "") -> str:
    """The string at ``path`` below ``value``, else ``default``."""
    found = at(value, *path)
    return found if isinstance(found, str) else default


def integer(value: JSONValue, *path: str, default: int = 0) -> int:
    """The integer at ``path`` below ``value`` (not a bool), else ``default``."""
    found = at(value, *path)
    return found if isinstance(found, int) and not isinstance(found, bool) else default
