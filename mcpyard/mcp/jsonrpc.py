"""JSON-RPC 2.0 as MCP uses it: JSON types, error codes, message builders. No I/O.

Messages are plain dicts (parsed with orjson); builders return dicts, the transports encode
them. What arrives from the wire is typed ``JSONObject`` until it is checked; the gateway's
answer to a request is a :data:`Response`, whose result may be encoded already. The codes are
the SDK's (``mcp_types``), plus the ones it does not name.
"""

from __future__ import annotations

from typing import Final, TypeAlias, TypeGuard

import mcp_types
import orjson

# The codes JSON-RPC defines, as the SDK names them (re-exported).
from mcp_types import INTERNAL_ERROR as INTERNAL_ERROR
from mcp_types import INVALID_PARAMS as INVALID_PARAMS
from mcp_types import INVALID_REQUEST as INVALID_REQUEST
from mcp_types import METHOD_NOT_FOUND as METHOD_NOT_FOUND
from mcp_types import PARSE_ERROR as PARSE_ERROR

# The JSON types, defined once below every layer (re-exported).
from mcpyard.jsontypes import JSONLike as JSONLike
from mcpyard.jsontypes import JSONObject as JSONObject
from mcpyard.jsontypes import JSONValue as JSONValue

Message: TypeAlias = JSONObject
"""A JSON-RPC message: as it arrived (checked where it is read) or as a builder made it."""
EncodedResponse: TypeAlias = "dict[str, JSONValue | orjson.Fragment]"
"""A response whose ``result`` is already encoded (an ``orjson.Fragment``, embedded as is when
the response is: the gateway encodes a result once, where it measures it)."""
Response: TypeAlias = "Message | EncodedResponse"
"""The gateway's answer to a request, for its transport to encode (a ``JSONLike``: orjson's
stub types a ``Fragment`` as a tuple)."""
Id: TypeAlias = str | int | None
"""A JSON-RPC id (null only in an error answering a message whose id could not be read)."""

UPSTREAM_UNAVAILABLE: Final[int] = mcp_types.CONNECTION_CLOSED
"""Implementation-defined server error (-32000): the server behind failed or is not serving."""
REQUEST_TIMEOUT: Final[int] = mcp_types.REQUEST_TIMEOUT
"""The server did not answer in time (the code the MCP SDKs use for timeouts)."""
REQUEST_CANCELLED: Final[int] = -32800
"""The client cancelled the request (the code the MCP SDKs use); it ignores the answer."""


def result(id_: Id, value: JSONValue) -> Message:
    return {"jsonrpc": "2.0", "id": id_, "result": value}


def error(id_: JSONValue, code: int, message: str, data: JSONValue = None) -> Message:
    """An error answer; ``id_`` is the request's as it came (the bridge echoes ids unchecked;
    the gateway checked them: :func:`valid_id`)."""
    err: JSONObject = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return {"jsonrpc": "2.0", "id": id_, "error": err}


def request(id_: Id, method: str, params: JSONValue = None) -> Message:
    msg: Message = {"jsonrpc": "2.0", "id": id_, "method": method}
    if params is not None:
        msg["params"] = params
    return msg


def notification(method: str, params: JSONValue = None) -> Message:
    msg: Message = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        msg["params"] = params
    return msg


def cancelled(id_: Id, reason: str) -> Message:
    """``notifications/cancelled`` for the request ``id_``."""
    return notification("notifications/cancelled", {"requestId": id_, "reason": reason})


def encode(message: object) -> bytes:
    return orjson.dumps(message)


def is_response(msg: object) -> bool:
    return (isinstance(msg, dict) and "method" not in msg and "id" in msg
            and ("result" in msg or "error" in msg))


def valid_id(value: object) -> TypeGuard[str | int]:
    # JSON-RPC allows strings and numbers; MCP forbids null ids for requests.
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def error_text(message: JSONObject) -> str | None:
    """The ``error.message`` of a response, if it has one."""
    err = message.get("error")
    text = err.get("message") if isinstance(err, dict) else None
    return text if isinstance(text, str) else None
