"""The 2026-07-28 era on the same ``/ws/<workspace>/mcp``: no handshake, no session,
``server/discover``, the per-request envelope and routing headers checked against the body,
the spec's errors and HTTP statuses, cache hints, ``subscriptions/listen``, and the era chosen
per request (the SDK client's probe and fallback both work)."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import anyio
import httpx
import pytest
from prototools import ALICE, CAROL, client, protocol_gateway, upstreams

__all__ = ["upstreams"]

pytestmark = pytest.mark.anyio

V = "2026-07-28"
META = {"io.modelcontextprotocol/protocolVersion": V,
        "io.modelcontextprotocol/clientCapabilities": {}}


def body(method: str, params: dict[str, Any] | None = None, id_: Any = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": id_, "method": method,
            "params": {**(params or {}), "_meta": META}}


def headers(method: str, name: str | None = None, **extra: str) -> dict[str, str]:
    out = {"Authorization": f"Bearer {ALICE}", "Accept": "application/json, text/event-stream",
           "Content-Type": "application/json", "MCP-Protocol-Version": V, "Mcp-Method": method}
    if name is not None:
        out["Mcp-Name"] = name
    out.update(extra)
    return out


async def test_discover_and_sessionless_requests(settings_for: Any,
                                                 upstreams: dict[str, str]) -> None:
    async with protocol_gateway(settings_for, upstreams) as gw, httpx.AsyncClient() as http:
        # Each upstream is spoken to in the era its protocolEra says, whatever the client's.
        expected = "modern" if upstreams["era"] == "both" else "handshake"
        for handle in gw.runtime.live["p"].handles.values():
            assert getattr(handle.upstream, "era", None) == expected
        url = gw.url("p")
        r = await http.post(url, json=body("server/discover"), headers=headers("server/discover"))
        assert r.status_code == 200 and "mcp-session-id" not in r.headers
        result = r.json()["result"]
        assert V in result["supportedVersions"] and "tools" in result["capabilities"]
        assert result["resultType"] == "complete"
        assert result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "mcpyard"
        r = await http.post(url, json=body("tools/call", {"name": "one__progress"}),
                            headers=headers("tools/call", "one__progress"))
        assert r.status_code == 200, r.text
        assert r.json()["result"]["content"][0]["text"] == "one:done"
        assert r.json()["result"]["resultType"] == "complete"
        for method in ("tools/list", "prompts/list", "resources/list",
                       "resources/templates/list"):
            r = await http.post(url, json=body(method), headers=headers(method))
            result = r.json()["result"]
            # Every list is filtered per member: never a public cache entry.
            assert result["cacheScope"] == "private" and isinstance(result["ttlMs"], int)
        uri = "mcpyard://one/note://one/a"
        r = await http.post(url, json=body("resources/read", {"uri": uri}),
                            headers=headers("resources/read", uri))
        assert r.json()["result"]["cacheScope"] == "private"


@pytest.mark.parametrize(("payload", "hdrs", "status", "code"), [
    pytest.param({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}},
                 {}, 400, -32602, id="missing-meta"),
    pytest.param(body("tools/list"), {"Mcp-Method": "prompts/list"}, 400, -32020,
                 id="method-mismatch"),
    pytest.param(body("tools/call", {"name": "one__progress"}),
                 {"Mcp-Method": "tools/call", "Mcp-Name": "one__chatty"}, 400, -32020,
                 id="name-mismatch"),
    pytest.param(body("tools/call", {"name": "one__progress"}),
                 {"Mcp-Method": "tools/call", "Mcp-Name": "ONE__PROGRESS"}, 400, -32020,
                 id="values-are-case-sensitive"),
    pytest.param(body("tools/list"), {"Mcp-Method": None}, 400, -32020, id="method-absent"),
    pytest.param(body("tools/list"), {"MCP-Protocol-Version": "2026-07-29"}, 400, -32020,
                 id="version-header-mismatch"),
    pytest.param(body("ping"), {"Mcp-Method": "ping"}, 404, -32601, id="ping-removed"),
    pytest.param(body("initialize", id_="init-7"), {"Mcp-Method": "initialize"}, 404, -32601,
                 id="initialize-removed-with-modern-meta"),
    pytest.param(body("logging/setLevel", {"level": "debug"}),
                 {"Mcp-Method": "logging/setLevel"}, 404, -32601, id="setlevel-removed"),
    pytest.param(body("unknown/method"), {"Mcp-Method": "unknown/method"}, 404, -32601,
                 id="unknown-method"),
])
async def test_envelope_and_headers_are_checked(
        settings_for: Any, upstreams: dict[str, str], payload: dict[str, Any],
        hdrs: dict[str, str | None], status: int, code: int) -> None:
    sent = headers(str(payload["method"]))
    for key, value in hdrs.items():
        sent.pop(key, None)
        if value is not None:
            sent[key] = value
    async with protocol_gateway(settings_for, upstreams) as gw, httpx.AsyncClient() as http:
        r = await http.post(gw.url("p"), json=payload, headers=sent)
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), r.text
        assert r.json()["id"] == payload["id"]


async def test_unsupported_versions_get_the_supported_list(settings_for: Any,
                                                           upstreams: dict[str, str]) -> None:
    meta = {**META, "io.modelcontextprotocol/protocolVersion": "v999.0.0"}
    payload = {"jsonrpc": "2.0", "id": 3, "method": "server/discover",
               "params": {"_meta": meta}}
    async with protocol_gateway(settings_for, upstreams) as gw, httpx.AsyncClient() as http:
        r = await http.post(gw.url("p"), json=payload,
                            headers=headers("server/discover", **{"MCP-Protocol-Version":
                                                                  "v999.0.0"}))
        assert r.status_code == 400
        error = r.json()["error"]
        assert error["code"] == -32022
        assert error["data"] == {"supported": [V], "requested": "v999.0.0"}


async def test_routing_headers_reach_the_upstream_as_it_names_the_tool(
        settings_for: Any, upstreams: dict[str, str]) -> None:
    """The upstream hop re-emits Mcp-Name with the upstream's own tool name and passes the
    client's Mcp-Param-* headers untouched: a 2026-07-28 upstream checks both against the body
    it reads, so a stale name or a lost header would fail the call."""
    async with protocol_gateway(settings_for, upstreams) as gw:
        async with client(gw.url("p"), ALICE, V) as c:
            await c.list_tools()  # the client mirrors x-mcp-header arguments of listed tools
            for value in ("eu-west-1", "Zürich Süd"):  # the second travels base64-encoded
                result = await c.call_tool("one__region", {"region": value})
                assert result.content[0].text == f"one:region={value}"  # type: ignore[union-attr]
        async with httpx.AsyncClient() as http:
            r = await http.post(gw.url("p"), json=body("tools/call", {
                "name": "one__region", "arguments": {"region": "eu-west-1"}}),
                headers=headers("tools/call", "one__region", **{"Mcp-Param-Region": "us"}))
            assert (r.status_code, r.json()["error"]["code"]) == (400, -32020)


async def test_header_names_fold_and_whitespace_is_trimmed(settings_for: Any,
                                                           upstreams: dict[str, str]) -> None:
    # Written on the socket: HTTP clients refuse to send whitespace around a value, which
    # RFC 9110 5.5 allows on the wire (and says is not part of the value).
    async with protocol_gateway(settings_for, upstreams) as gw:
        content = json.dumps(body("tools/call", {"name": "one__progress"})).encode()
        head = (f"POST /ws/p/mcp HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n"
                f"authorization: Bearer {ALICE}\r\naccept: application/json\r\n"
                f"content-type: application/json\r\ncontent-length: {len(content)}\r\n"
                f"mcp-protocol-version: {V}\t\r\nMCP-METHOD:tools/call\r\n"
                f"mCp-NaMe:  one__progress \r\n\r\n").encode()
        host, port = gw.base_url.removeprefix("http://").split(":")
        with anyio.fail_after(30):
            async with await anyio.connect_tcp(host, int(port)) as sock:
                await sock.send(head + content)
                raw = b""
                with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError):
                    while True:
                        raw += await sock.receive()
        status, _, rest = raw.partition(b"\r\n")
        assert status.split()[1] == b"200", raw
        answer = json.loads(rest.partition(b"\r\n\r\n")[2])
        assert answer["result"]["content"][0]["text"] == "one:done"


async def test_a_handshake_request_without_session_still_needs_one(
        settings_for: Any, upstreams: dict[str, str]) -> None:
    async with protocol_gateway(settings_for, upstreams) as gw, httpx.AsyncClient() as http:
        r = await http.post(gw.url("p"), json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                            headers={"Authorization": f"Bearer {ALICE}",
                                     "Accept": "application/json, text/event-stream",
                                     "MCP-Protocol-Version": "2025-06-18"})
        assert r.status_code == 400


async def test_the_sdk_probe_picks_the_modern_era(settings_for: Any,
                                                  upstreams: dict[str, str]) -> None:
    async with protocol_gateway(settings_for, upstreams) as gw:
        async with client(gw.url("p"), ALICE, "auto") as c:
            assert c.protocol_version == V
            assert "one__progress" in [t.name for t in (await c.list_tools()).tools]
        async with client(gw.url("p"), ALICE, "legacy") as c:
            assert c.protocol_version == "2025-11-25"


async def test_listen_fans_in_list_changed(settings_for: Any, upstreams: dict[str, str],
                                           tmp_path: Any) -> None:
    async with protocol_gateway(settings_for, upstreams) as gw, \
            client(gw.url("p"), ALICE, V) as c, \
            c.listen(tools_list_changed=True, prompts_list_changed=True) as sub:
        assert sub.honored.tools_list_changed and sub.honored.prompts_list_changed
        # A configuration change (server two removed) changes every list.
        live = gw.runtime.live["p"]
        gw.runtime.apply({"p": live.config.model_copy(
            update={"servers": live.config.servers[:1]})})
        kinds = set()
        with anyio.fail_after(10):
            async for event in sub:
                kinds.add(type(event).__name__)
                if len(kinds) == 2:
                    break
        assert kinds == {"ToolsListChanged", "PromptsListChanged"}


async def test_listen_carries_resource_updates_of_its_subscriptions(
        settings_for: Any, upstreams: dict[str, str]) -> None:
    """A listen stream's resourceSubscriptions name workspace URIs; the gateway subscribes
    upstream (resources/subscribe, or a 2026-07-28 upstream's own listen filter) and sends the
    update back under the workspace URI, only to the streams that named it."""
    uri = "mcpyard://one/note://one/a"
    async with protocol_gateway(settings_for, upstreams) as gw, \
            client(gw.url("p"), ALICE, V) as c, client(gw.url("p"), CAROL, V) as other, \
            c.listen(resource_subscriptions=[uri]) as sub, \
            other.listen(tools_list_changed=True) as quiet:
        assert list(sub.honored.resource_subscriptions or ()) == [uri]
        result = await c.call_tool("one__touch", {})
        assert result.content[0].text == "one:touched:True"  # type: ignore[union-attr]
        with anyio.fail_after(10):
            event = await anext(aiter(sub))
        assert type(event).__name__ == "ResourceUpdated" and event.uri == uri  # type: ignore[union-attr]
        # The other stream's first event is a later list change, not that update.
        live = gw.runtime.live["p"]
        gw.runtime.apply({"p": live.config.model_copy(
            update={"servers": live.config.servers[:1]})})
        with anyio.fail_after(10):
            event = await anext(aiter(quiet))
        assert type(event).__name__ == "ToolsListChanged"
