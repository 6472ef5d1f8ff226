"""MCP protocol constants and the rules every server here follows (the gateway and the bridge).

Constants: versions, method names, ``_meta`` keys, protocol error codes. Rules: which era a
request speaks, version negotiation, the modern era's request checks and result fields.

Taken from the SDK's types (``mcp_types``) where it defines them, so a version or method the
SDK adds or renames shows here first; what it does not define is written here, once. No I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

import mcp_types
from mcp.shared import inbound
from mcp_types import methods as _methods
from mcp_types import version as _versions
from pydantic import BaseModel

from mcpyard.jsontypes import JSONObject


def _method(model: type[BaseModel]) -> str:
    """The method name an SDK request or notification model carries."""
    name = model.model_fields["method"].default
    assert isinstance(name, str), model
    return name


# -- versions ------------------------------------------------------------------------------

HANDSHAKE_VERSIONS: Final[tuple[str, ...]] = _versions.HANDSHAKE_PROTOCOL_VERSIONS
"""Versions of the handshake era (``initialize``), oldest first."""
LEGACY_VERSION: Final[str] = _versions.OLDEST_SUPPORTED_VERSION
"""The legacy HTTP+SSE transport's version (2024-11-05): what old servers expect."""
STREAMABLE_VERSIONS: Final[tuple[str, ...]] = tuple(
    v for v in HANDSHAKE_VERSIONS if v != LEGACY_VERSION
)
"""Handshake-era versions of streamable HTTP (and stdio), oldest first."""
SSE_VERSIONS: Final[tuple[str, ...]] = HANDSHAKE_VERSIONS
"""Versions served on the legacy HTTP+SSE transport."""
LATEST_HANDSHAKE: Final[str] = _versions.LATEST_HANDSHAKE_VERSION
"""What a client of the handshake era asks for in ``initialize``."""
DEFAULT_HEADER_VERSION: Final[str] = mcp_types.DEFAULT_NEGOTIATED_VERSION
"""What a request without MCP-Protocol-Version speaks (the spec's backwards-compatible rule)."""
BATCH_VERSIONS: Final[frozenset[str]] = frozenset({"2025-03-26"})
"""Only 2025-03-26 has JSON-RPC batches; later versions removed them."""
MODERN_VERSIONS: Final[tuple[str, ...]] = _versions.MODERN_PROTOCOL_VERSIONS
"""Versions of the sessionless era (no ``initialize``; an envelope in ``params._meta``)."""
MODERN_VERSION: Final[str] = _versions.LATEST_MODERN_VERSION

# -- the 2026-07-28 envelope and stamps in ``_meta`` ----------------------------------------

VERSION_KEY: Final[str] = mcp_types.PROTOCOL_VERSION_META_KEY
CAPABILITIES_KEY: Final[str] = mcp_types.CLIENT_CAPABILITIES_META_KEY
CLIENT_INFO_KEY: Final[str] = mcp_types.CLIENT_INFO_META_KEY
LOG_LEVEL_KEY: Final[str] = mcp_types.LOG_LEVEL_META_KEY
SERVER_INFO_KEY: Final[str] = mcp_types.SERVER_INFO_META_KEY
SUBSCRIPTION_KEY: Final[str] = "io.modelcontextprotocol/subscriptionId"
"""Stamped on what a ``subscriptions/listen`` stream carries (the SDK names no constant)."""
META_PREFIX: Final[str] = "io.modelcontextprotocol/"
ENVELOPE_KEYS: Final[frozenset[str]] = frozenset(
    {VERSION_KEY, CAPABILITIES_KEY, CLIENT_INFO_KEY, LOG_LEVEL_KEY}
)
"""The envelope a 2026-07-28 client puts in ``params._meta``; never forwarded as is."""

# -- protocol error codes (beyond JSON-RPC's own, see ``jsonrpc``) ---------------------------

HEADER_MISMATCH: Final[int] = mcp_types.HEADER_MISMATCH
UNSUPPORTED_VERSION: Final[int] = mcp_types.UNSUPPORTED_PROTOCOL_VERSION

# -- methods -------------------------------------------------------------------------------

INITIALIZE: Final[str] = _method(mcp_types.InitializeRequest)
INITIALIZED: Final[str] = _method(mcp_types.InitializedNotification)
PING: Final[str] = _method(mcp_types.PingRequest)
CANCELLED: Final[str] = _method(mcp_types.CancelledNotification)
PROGRESS: Final[str] = _method(mcp_types.ProgressNotification)
LOG_MESSAGE: Final[str] = _method(mcp_types.LoggingMessageNotification)
DISCOVER: Final[str] = _method(mcp_types.DiscoverRequest)
LISTEN: Final[str] = _method(mcp_types.SubscriptionsListenRequest)
ACKNOWLEDGED: Final[str] = _method(mcp_types.SubscriptionsAcknowledgedNotification)
SUBSCRIBE: Final[str] = _method(mcp_types.SubscribeRequest)
UNSUBSCRIBE: Final[str] = _method(mcp_types.UnsubscribeRequest)

CACHEABLE: Final[frozenset[str]] = _methods.CACHEABLE_METHODS
"""Modern-era methods whose results carry ``ttlMs`` and ``cacheScope``."""
LISTS: Final[frozenset[str]] = frozenset(m for m in CACHEABLE if m.endswith("/list"))
"""tools/list, prompts/list, resources/list, resources/templates/list."""
REMOVED: Final[frozenset[str]] = frozenset(
    {m for m, v in _methods.CLIENT_REQUESTS if v == LATEST_HANDSHAKE}
    - {m for m, v in _methods.CLIENT_REQUESTS if v == MODERN_VERSION}
)
"""Handshake-era client requests the modern era does not have (initialize, ping, ...)."""
SUBSCRIPTION_METHODS: Final[frozenset[str]] = frozenset({SUBSCRIBE, UNSUBSCRIBE})

CAPABILITY_OF: Final[dict[str, str]] = {
    _method(mcp_types.CreateMessageRequest): "sampling",
    _method(mcp_types.ElicitRequest): "elicitation",
    _method(mcp_types.ListRootsRequest): "roots",
}
"""Server-to-client request -> the client capability that lets a server send it."""
SERVER_REQUESTS: Final[frozenset[str]] = frozenset(CAPABILITY_OF)
"""Requests a server may send its client (besides ``ping``): sampling, elicitation, roots."""

LIST_CHANGED: Final[dict[str, str]] = {
    _method(mcp_types.ToolListChangedNotification): "toolsListChanged",
    _method(mcp_types.PromptListChangedNotification): "promptsListChanged",
    _method(mcp_types.ResourceListChangedNotification): "resourcesListChanged",
}
"""list_changed notification -> its name in a ``subscriptions/listen`` filter."""

TARGET_FIELD: Final[dict[str, str]] = {"tools/call": "name", "prompts/get": "name",
                                       "resources/read": "uri"}
"""The param naming what a request is about (its tool, prompt or resource)."""


def can_answer(capabilities: object, method: str) -> bool:
    """Whether a client that declared ``capabilities`` answers the server request ``method``."""
    name = CAPABILITY_OF.get(method)
    return name is not None and isinstance(capabilities, dict) and name in capabilities


# -- rules both servers follow (the gateway downstream, the bridge) ---------------------------

HTTP_STATUS: Final[dict[int, int]] = dict(inbound.ERROR_CODE_HTTP_STATUS)
"""A modern-era error code -> the HTTP status the specification gives its response."""


def is_modern(version: str | None, message: object, has_session: bool) -> bool:
    """Whether a POST speaks 2026-07-28, by the rule the official SDK server follows.

    An ``MCP-Protocol-Version`` header (``version``) naming no handshake-era version (a
    modern one, or one nobody knows: the modern checks refuse it with the supported list) is
    the modern era, whatever the body. Otherwise ``initialize`` or a session is the handshake
    era, and ``server/discover`` or a body whose ``params._meta`` carries the protocol version
    is the modern era. Anything else is the handshake era (which answers a request without a
    session with 400).
    """
    if version is not None and version not in HANDSHAKE_VERSIONS:
        return True
    if has_session or not isinstance(message, dict) or message.get("method") == INITIALIZE:
        return False
    if message.get("method") == DISCOVER:
        return True
    params = message.get("params")
    meta = params.get("_meta") if isinstance(params, dict) else None
    return isinstance(meta, dict) and VERSION_KEY in meta


def check_modern(message: JSONObject, headers: Iterable[tuple[bytes, bytes]]
                 ) -> inbound.InboundModernRoute | inbound.InboundLadderRejection:
    """The official SDK's checks of a modern request: its ``_meta`` envelope, the
    ``MCP-Protocol-Version`` / ``Mcp-Method`` / ``Mcp-Name`` headers against the body (names
    case-insensitive, values trimmed of the whitespace around them, RFC 9110 5.5), and its
    version (-32022 with ``data.supported`` and ``data.requested`` when unsupported)."""
    folded: dict[str, str] = {}
    for key, value in headers:
        name = key.decode("latin-1").lower()
        if name in ("mcp-protocol-version", "mcp-method", "mcp-name"):
            if name in folded:
                return inbound.InboundLadderRejection(HEADER_MISMATCH,
                                                      f"{name} header appears more than once")
            folded[name] = value.decode("latin-1").strip(" \t")
    return inbound.classify_inbound_request(message, headers=folded,
                                            supported_modern_versions=MODERN_VERSIONS)


def negotiate(requested: object, supported: Sequence[str]) -> str:
    """The handshake's version: the client's when supported, else the latest supported one
    (which the client accepts or not)."""
    return requested if isinstance(requested, str) and requested in supported else supported[-1]


def complete(result: JSONObject, method: object, ttl_ms: int = 0) -> JSONObject:
    """A modern-era result as the client reads it (changed in place, and returned):
    ``resultType`` is ``complete`` unless it says otherwise, and a complete result of a
    cacheable method (lists, reads, discover) gets ``ttlMs`` (unless set) and ``cacheScope:
    private`` (what is served here may be filtered per caller: never shared)."""
    if "resultType" not in result:
        result["resultType"] = "complete"
    if method in CACHEABLE and result["resultType"] == "complete":
        result.setdefault("ttlMs", ttl_ms)
        result["cacheScope"] = "private"
    return result
