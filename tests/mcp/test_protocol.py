"""The protocol layer's constants: taken from the SDK, equal to what the adapters spoke."""

from __future__ import annotations

import mcp_types
from mcp.shared import inbound

from mcpyard.mcp import jsonrpc, protocol


def test_versions_by_era() -> None:
    assert protocol.STREAMABLE_VERSIONS == ("2025-03-26", "2025-06-18", "2025-11-25")
    assert ("2024-11-05", *protocol.STREAMABLE_VERSIONS) == protocol.SSE_VERSIONS
    assert protocol.LEGACY_VERSION == "2024-11-05"
    assert protocol.STREAMABLE_VERSIONS[-1] == protocol.LATEST_HANDSHAKE
    assert protocol.DEFAULT_HEADER_VERSION == "2025-03-26"
    assert protocol.MODERN_VERSIONS == ("2026-07-28",) == (protocol.MODERN_VERSION,)


def test_methods_the_modern_era_removed_and_caches() -> None:
    removed = {"initialize", "ping", "logging/setLevel", "resources/subscribe",
               "resources/unsubscribe"}
    lists = {"tools/list", "prompts/list", "resources/list", "resources/templates/list"}
    assert removed == protocol.REMOVED
    assert lists == protocol.LISTS
    assert lists | {"resources/read", "server/discover"} == protocol.CACHEABLE
    assert (protocol.INITIALIZE, protocol.INITIALIZED, protocol.DISCOVER, protocol.LISTEN) == (
        "initialize", "notifications/initialized", "server/discover", "subscriptions/listen")


def test_the_envelope_keys() -> None:
    names = {"protocolVersion", "clientCapabilities", "clientInfo", "logLevel"}
    assert {f"io.modelcontextprotocol/{n}" for n in names} == protocol.ENVELOPE_KEYS
    assert all(k.startswith(protocol.META_PREFIX) for k in protocol.ENVELOPE_KEYS)


def test_a_client_answers_the_server_requests_it_declared() -> None:
    assert protocol.can_answer({"sampling": {}}, "sampling/createMessage")
    assert not protocol.can_answer({"sampling": {}}, "elicitation/create")
    assert not protocol.can_answer(None, "roots/list")
    assert not protocol.can_answer({"ping": {}}, "ping")  # not a capability-gated request
    asked = {"sampling/createMessage", "elicitation/create", "roots/list"}
    assert asked == protocol.SERVER_REQUESTS


def test_codes_are_the_sdks() -> None:
    assert (jsonrpc.PARSE_ERROR, jsonrpc.INVALID_REQUEST, jsonrpc.METHOD_NOT_FOUND,
            jsonrpc.INVALID_PARAMS, jsonrpc.INTERNAL_ERROR) == (-32700, -32600, -32601,
                                                                -32602, -32603)
    assert jsonrpc.REQUEST_TIMEOUT == mcp_types.REQUEST_TIMEOUT == -32001
    assert (protocol.HEADER_MISMATCH, protocol.UNSUPPORTED_VERSION) == (-32020, -32022)


def test_builders() -> None:
    assert jsonrpc.request(1, "ping") == {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    assert jsonrpc.error(2, -32601, "no", {"x": 1}) == {
        "jsonrpc": "2.0", "id": 2, "error": {"code": -32601, "message": "no", "data": {"x": 1}}}
    assert jsonrpc.cancelled(3, "gone") == {
        "jsonrpc": "2.0", "method": "notifications/cancelled",
        "params": {"requestId": 3, "reason": "gone"}}
    assert jsonrpc.is_response({"id": 1, "result": {}})
    assert not jsonrpc.is_response({"id": 1, "method": "ping"})
    assert jsonrpc.valid_id("a") and jsonrpc.valid_id(0)
    assert not jsonrpc.valid_id(True) and not jsonrpc.valid_id(None)
    assert jsonrpc.error_text({"error": {"code": 1, "message": "why"}}) == "why"
    assert jsonrpc.error_text({"result": {}}) is None


# -- the rules the gateway and the bridge both follow -----------------------------------------

ENVELOPE = {"_meta": {protocol.VERSION_KEY: "2026-07-28", protocol.CAPABILITIES_KEY: {}}}


def test_which_era_a_post_speaks() -> None:
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    modern_call = {**call, "params": ENVELOPE}
    # The header decides, whatever the body; an unknown version is the modern era's to refuse.
    assert protocol.is_modern("2026-07-28", {"method": "initialize"}, False)
    assert protocol.is_modern("2099-01-01", call, True)
    assert not protocol.is_modern("2025-06-18", modern_call, True)
    # Without a header: a session or initialize is the handshake era; discover or an envelope
    # is the modern one; anything else the handshake era (its 400 names the missing session).
    assert not protocol.is_modern(None, modern_call, True)
    assert not protocol.is_modern(None, {"method": "initialize", "params": ENVELOPE}, False)
    assert protocol.is_modern(None, {"method": "server/discover"}, False)
    assert protocol.is_modern(None, modern_call, False)
    assert not protocol.is_modern(None, call, False)
    assert not protocol.is_modern(None, [call], False)


def test_the_modern_checks_name_what_is_wrong() -> None:
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    missing = protocol.check_modern(call, [])
    assert isinstance(missing, inbound.InboundLadderRejection)
    assert missing.code == jsonrpc.INVALID_PARAMS and protocol.HTTP_STATUS[missing.code] == 400
    twice = protocol.check_modern({**call, "params": ENVELOPE}, [
        (b"mcp-protocol-version", b"2026-07-28"), (b"mcp-protocol-version", b"2026-07-28")])
    assert isinstance(twice, inbound.InboundLadderRejection)
    assert twice.code == protocol.HEADER_MISMATCH
    old = {"_meta": {**ENVELOPE["_meta"], protocol.VERSION_KEY: "2099-01-01"}}
    unknown = protocol.check_modern({**call, "params": old},
                                    [(b"mcp-protocol-version", b"2099-01-01"),
                                     (b"mcp-method", b"tools/list")])
    assert isinstance(unknown, inbound.InboundLadderRejection)
    assert unknown.code == protocol.UNSUPPORTED_VERSION
    assert unknown.data == {"supported": ["2026-07-28"], "requested": "2099-01-01"}
    fine = protocol.check_modern({**call, "params": ENVELOPE}, [
        (b"mcp-protocol-version", b" 2026-07-28\t"), (b"mcp-method", b"tools/list")])
    assert isinstance(fine, inbound.InboundModernRoute)


def test_negotiation_takes_the_clients_version_when_offered() -> None:
    assert protocol.negotiate("2025-06-18", protocol.STREAMABLE_VERSIONS) == "2025-06-18"
    assert protocol.negotiate("2099-01-01", protocol.STREAMABLE_VERSIONS) == "2025-11-25"
    assert protocol.negotiate(None, ("2024-11-05",)) == "2024-11-05"


def test_a_modern_result_is_completed_and_never_shared() -> None:
    listed = protocol.complete({"tools": [], "cacheScope": "public"}, "tools/list")
    assert listed == {"tools": [], "resultType": "complete", "ttlMs": 0,
                      "cacheScope": "private"}
    assert protocol.complete({"ttlMs": 5000}, "resources/read", 0)["ttlMs"] == 5000
    assert protocol.complete({"content": []}, "tools/call") == {"content": [],
                                                               "resultType": "complete"}
    waiting = {"resultType": "input_required"}
    assert protocol.complete(dict(waiting), "tools/list") == waiting
