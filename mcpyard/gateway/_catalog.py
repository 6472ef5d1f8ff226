"""The tool, prompt, resource and resource-template tables of a workspace, and URI rewriting.

Built from the cached lists of the workspace's servers: tools (those the server's filter,
:func:`access.server_exposes`, lets in) and prompts under :func:`naming.namespaced` names
(``slug__name``), resources and templates under :func:`naming.resource_uri` URIs
(``mcpyard://slug/<original>``). Objects pass through untouched except that one field. Lists
are sorted by that key, so the order never depends on which server answered first, and paged
with opaque cursors naming the last key of the previous page, so paging survives a reload.

Pins: a server that pins its tools (``tools.pin``) serves only the tools whose definitions
match their pins (:func:`exposed`); the others are withheld from every member, listed or
called, until the pin is updated (:func:`withheld` says which and why).

Tool search: with the workspace's ``toolSearch``, the gateway's own tools :data:`FIND_TOOLS`
and :data:`CALL_TOOL` join the member's list (or, with ``"only"``, are the whole list while
every allowed tool stays callable through ``call_tool``); :meth:`Table.index` ranks the table.

Access: a member sees a tool or prompt when its access rules admit the namespaced name, and a
resource or template when they admit its workspace URI (the same globs, deny wins: ``*``
admits everything, ``mcpyard://github/*`` every resource of ``github``). A resource read by a
URI that no list names (a template's expansion) is checked the same way on the URI requested.
Anything a member may not see answers exactly like something that does not exist.

The rewriting helpers map the URIs inside results (embedded resources and resource links of a
tool or prompt result, the contents of a read) from an upstream's form to the workspace's.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import logging
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass

import orjson

from mcpyard import errors
from mcpyard.compiler import access, naming
from mcpyard.compiler.config import MemberConfig, ServerConfig
from mcpyard.discovery import pins, search
from mcpyard.mcp.jsonrpc import JSONObject, JSONValue

log = logging.getLogger("mcpyard.gateway")


@dataclass(frozen=True, slots=True)
class Kind:
    """One kind of listable item: its list method, result key, key field and naming rule."""

    method: str
    key: str
    """The result's list field (``prompts``)."""
    field: str
    """The item's identifying field (``name``, ``uri``, ``uriTemplate``)."""
    cursor: str
    """A cursor's tag, so a cursor of one list is refused by another."""
    rename: Callable[[str, str], str]
    notification: str
    """The list_changed notification clients get when the list changes."""


TOOLS = Kind("tools/list", "tools", "name", "t1", naming.namespaced,
             "notifications/tools/list_changed")
PROMPTS = Kind("prompts/list", "prompts", "name", "p1", naming.namespaced,
               "notifications/prompts/list_changed")
RESOURCES = Kind("resources/list", "resources", "uri", "r1", naming.resource_uri,
                 "notifications/resources/list_changed")
TEMPLATES = Kind("resources/templates/list", "resourceTemplates", "uriTemplate", "rt1",
                 naming.resource_uri, "notifications/resources/list_changed")
KINDS = (PROMPTS, RESOURCES, TEMPLATES)
"""The kinds beyond tools (which every server has, and the runtime lists on its own)."""


@dataclass(frozen=True, slots=True)
class Entry:
    key: str
    """The workspace name or URI clients see."""
    slug: str
    original: str
    """The name or URI on its server."""
    item: JSONObject
    """The object as the server sent it, with the identifying field replaced."""


FIND_TOOLS_NAME = "find_tools"
CALL_TOOL_NAME = "call_tool"
SEARCH_LIMIT = 50
FIND_TOOLS: JSONObject = {
    "name": FIND_TOOLS_NAME,
    "title": "Find tools",
    "description": "Search this workspace's tools by what they do. Give a short task "
                   "description; get the best matching tools with their input schemas, then "
                   "call one with call_tool.",
    "inputSchema": {"type": "object", "properties": {
        "query": {"type": "string", "description": "What you want to do, in plain words."},
        "limit": {"type": "integer", "minimum": 1, "maximum": SEARCH_LIMIT, "default": 5,
                  "description": "How many tools to return."}},
        "required": ["query"]},
    "annotations": {"readOnlyHint": True, "openWorldHint": False},
}
CALL_TOOL: JSONObject = {
    "name": CALL_TOOL_NAME,
    "title": "Call a tool",
    "description": "Call a tool of this workspace by the name find_tools gave, with "
                   "arguments that follow its input schema.",
    "inputSchema": {"type": "object", "properties": {
        "name": {"type": "string", "description": "The tool's name, as find_tools gave it."},
        "arguments": {"type": "object", "description": "The tool's arguments."}},
        "required": ["name"]},
}
SEARCH_TOOLS = (CALL_TOOL, FIND_TOOLS)
"""The gateway's own tools, sorted by name; neither name has ``__``, so none is a server's."""
_SEARCH_NAMES = (CALL_TOOL_NAME, FIND_TOOLS_NAME)


@dataclass(frozen=True, slots=True)
class View:
    """What one member sees: the listable items, their keys, and every key it may use
    (including those of servers that are down right now)."""

    items: list[JSONObject]
    keys: list[str]
    allowed: frozenset[str]
    listed: frozenset[str] = frozenset()
    """The server tools among ``keys`` (those of servers serving now), for tool search."""


class Table:
    """One kind's items of every server of a workspace."""

    __slots__ = ("_index", "by_key", "entries", "kind", "signature")

    def __init__(self, kind: Kind, sources: Iterable[tuple[str, Sequence[JSONObject]]]) -> None:
        table: dict[str, Entry] = {}
        for slug, items in sources:
            for item in items:
                original = item.get(kind.field) if isinstance(item, dict) else None
                if not isinstance(original, str):
                    continue
                key = kind.rename(slug, original)
                if key in table:
                    log.warning("server %s: %s %s maps to %s, which %s already has; keeping the "
                                "first", slug, kind.field, original, key, table[key].slug)
                    continue
                table[key] = Entry(key, slug, original, {**item, kind.field: key})
        self.kind = kind
        self.entries = tuple(table[k] for k in sorted(table))
        self.by_key = table
        self.signature = orjson.dumps([e.item for e in self.entries])
        """Equal signatures mean equal lists, to decide whether clients need list_changed."""
        self._index: search.Index | None = None

    def view(self, member: MemberConfig, available: Collection[str],
             tool_search: bool | str = False) -> View:
        allowed = [e for e in self.entries if access.member_may_use(member, e.key)]
        listed = [e for e in allowed if e.slug in available]
        keys = frozenset(e.key for e in listed)
        if tool_search == "only":
            return View([dict(t) for t in SEARCH_TOOLS], list(_SEARCH_NAMES),
                        frozenset(e.key for e in allowed), keys)
        pairs = [(e.key, e.item) for e in listed]
        if tool_search:
            pairs = sorted([*pairs, *((n, dict(t)) for n, t in zip(_SEARCH_NAMES, SEARCH_TOOLS,
                                                                  strict=True))])
        return View([item for _, item in pairs], [key for key, _ in pairs],
                    frozenset(e.key for e in allowed), keys)

    def built_index(self) -> search.Index | None:
        """The search index when already built."""
        return self._index

    def index(self) -> search.Index:
        """The search index over the table's items, built on first use."""
        if self._index is None:
            self._index = search.Index(search.tool_document(e.key, e.item, e.slug)
                                       for e in self.entries)
        return self._index


def tools(sources: Iterable[tuple[ServerConfig, Sequence[JSONObject]]]) -> Table:
    """The tool table: each server's tools that its filter exposes and its pins admit."""
    return Table(TOOLS, ((server.slug, exposed(server, items)) for server, items in sources))


def _dicts(items: Iterable[JSONValue]) -> list[JSONObject]:
    return [t for t in items if isinstance(t, dict)]


def exposed(server: ServerConfig, items: Iterable[JSONValue]) -> list[JSONObject]:
    """The server's tools the workspace serves: its filter exposes them and its pins admit
    them (:func:`mcpyard.discovery.pins.split`)."""
    return pins.split(server, _dicts(items))[0]


def withheld(server: ServerConfig, items: Iterable[JSONValue]) -> dict[str, pins.Reason]:
    """The tools the server's filter exposes but its pins withhold, by the server's own name
    (``changed`` or ``unpinned``)."""
    return pins.split(server, _dicts(items))[1]


def page(kind: Kind, view: View, cursor: object, size: int) -> JSONObject:
    """One page of a member's list result."""
    start = 0
    if cursor is not None:
        start = bisect.bisect_right(view.keys, _decode(kind, cursor))
    end = start + size
    out: JSONObject = {kind.key: list[JSONValue](view.items[start:end])}
    if end < len(view.items):
        out["nextCursor"] = base64.urlsafe_b64encode(
            orjson.dumps([kind.cursor, view.keys[end - 1]])).decode("ascii")
    return out


def _decode(kind: Kind, cursor: object) -> str:
    if not isinstance(cursor, str):
        raise errors.InvalidCursor("invalid cursor")
    try:
        tag, after = orjson.loads(base64.urlsafe_b64decode(cursor.encode("ascii")))
    except (AttributeError, ValueError, TypeError, UnicodeError, binascii.Error,
            orjson.JSONDecodeError):
        raise errors.InvalidCursor("invalid cursor") from None
    if tag != kind.cursor or not isinstance(after, str):
        raise errors.InvalidCursor("invalid cursor")
    return after


# -- URIs inside results ---------------------------------------------------------------------

def blocks(slug: str, content: JSONValue) -> None:
    """Map the URIs of embedded resources and resource links in a content list, in place."""
    if type(content) is not list:
        return
    for block in content:
        block_uri(slug, block)


def block_uri(slug: str, block: JSONValue) -> None:
    if type(block) is not dict:
        return
    kind = block.get("type")
    if kind == "resource":
        resource = block.get("resource")
        if type(resource) is dict and isinstance(uri := resource.get("uri"), str):
            block["resource"] = {**resource, "uri": naming.resource_uri(slug, uri)}
    elif kind == "resource_link" and isinstance(uri := block.get("uri"), str):
        block["uri"] = naming.resource_uri(slug, uri)


def tool_result(slug: str, result: JSONObject) -> JSONObject:
    """A tools/call result with its resource URIs mapped (the same object when it has none)."""
    content = result.get("content")
    if type(content) is list:
        for block in content:
            if type(block) is dict and block.get("type") in ("resource", "resource_link"):
                block_uri(slug, block)
    return result


def prompt_result(slug: str, result: JSONObject) -> JSONObject:
    messages = result.get("messages")
    if type(messages) is list:
        for message in messages:
            if type(message) is dict:
                content = message.get("content")
                if type(content) is list:
                    blocks(slug, content)
                else:
                    block_uri(slug, content)
    return result


def read_result(slug: str, result: JSONObject) -> JSONObject:
    contents = result.get("contents")
    if type(contents) is list:
        for item in contents:
            if type(item) is dict and isinstance(uri := item.get("uri"), str):
                item["uri"] = naming.resource_uri(slug, uri)
    return result
