"""The streamable HTTP transport's rules, seen over plain HTTP."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import pytest
from gwtools import MCP_HEADERS, bearer, member, raw_initialize, run_gateway, server, workspace

from mcpyard.crypto import tokens

pytestmark = pytest.mark.anyio

PING = {"jsonrpc": "2.0", "id": 7, "method": "ping"}


@pytest.fixture
def token() -> str:
    return tokens.new()


@pytest.fixture
def config(beta: Any, token: str) -> Any:
    return workspace("eng", [server("beta", beta.url)], [member("alice", token)])


def h(token: str, sid: str | None = None, version: str | None = "2025-06-18",
      **extra: str) -> dict[str, str]:
    out = {**MCP_HEADERS, **bearer(token), **extra}
    if sid:
        out["Mcp-Session-Id"] = sid
    if version:
        out["MCP-Protocol-Version"] = version
    return out


async def test_health_endpoints(settings_for: Any, config: Any) -> None:
    async with run_gateway(settings_for([config])) as gw, httpx.AsyncClient() as http:
        await gw.wait_serving("eng", "beta")
        alive = await http.get(f"{gw.base_url}/healthz")
        ready = await http.get(f"{gw.base_url}/readyz")
    assert alive.status_code == 200
    assert ready.status_code == 200
    detail = ready.json()["workspaces"]["eng"]
    assert detail["status"] == "serving"
    assert detail["servers"]["beta"]["status"] == "healthy"
    assert detail["url"] == "/ws/eng/mcp"


async def test_nothing_serving_is_not_ready(settings_for: Any) -> None:
    async with run_gateway(settings_for([])) as gw, httpx.AsyncClient() as http:
        assert (await http.get(f"{gw.base_url}/readyz")).status_code == 503
        assert (await http.get(f"{gw.base_url}/healthz")).status_code == 200


async def test_initialize_negotiates_the_version(settings_for: Any, config: Any,
                                                 token: str) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}}
    async with run_gateway(settings_for([config])) as gw, httpx.AsyncClient() as http:
        got = {}
        for asked in ("2025-03-26", "2025-06-18", "2025-11-25", "1999-01-01"):
            body["params"]["protocolVersion"] = asked  # type: ignore[index]
            r = await http.post(gw.url("eng"), json=body, headers=h(token, version=None))
            assert r.status_code == 200
            assert len(r.headers["mcp-session-id"]) >= 32
            got[asked] = r.json()["result"]["protocolVersion"]
    assert got == {"2025-03-26": "2025-03-26", "2025-06-18": "2025-06-18",
                   "2025-11-25": "2025-11-25", "1999-01-01": "2025-11-25"}


async def test_session_rules(settings_for: Any, config: Any, token: str) -> None:
    async with run_gateway(settings_for([config])) as gw, httpx.AsyncClient() as http:
        url = gw.url("eng")
        sid = await raw_initialize(http, url, token)
        missing = await http.post(url, json=PING, headers=h(token))
        unknown = await http.post(url, json=PING, headers=h(token, "no-such-session"))
        ok = await http.post(url, json=PING, headers=h(token, sid))
        note = await http.post(url, json={"jsonrpc": "2.0", "method": "notifications/x"},
                               headers=h(token, sid))
        bad_version = await http.post(url, json=PING, headers=h(token, sid, "2099-01-01"))
        no_version = await http.post(url, json=PING, headers=h(token, sid, None))
        deleted = await http.delete(url, headers=h(token, sid))
        after = await http.post(url, json=PING, headers=h(token, sid))
        put = await http.put(url, json=PING, headers=h(token, sid))
        other_ws = await http.post(gw.url("nope"), json=PING, headers=h(token, sid))
    assert missing.status_code == 400
    assert unknown.status_code == 404
    assert ok.status_code == 200 and ok.json() == {"jsonrpc": "2.0", "id": 7, "result": {}}
    assert note.status_code == 202 and note.content == b""
    assert bad_version.status_code == 400
    assert no_version.status_code == 200  # absent means 2025-03-26, which is supported
    assert deleted.status_code == 200
    assert after.status_code == 404
    assert put.status_code == 405
    assert other_ws.status_code == 404


async def test_message_rules(settings_for: Any, config: Any, token: str) -> None:
    async with run_gateway(settings_for([config])) as gw, httpx.AsyncClient() as http:
        url = gw.url("eng")
        sid = await raw_initialize(http, url, token)
        parse = await http.post(url, content=b"{nope", headers=h(token, sid))
        invalid = await http.post(url, json={"id": 1, "method": "ping"}, headers=h(token, sid))
        unknown = await http.post(url, json={"jsonrpc": "2.0", "id": 3, "method": "x/y"},
                                  headers=h(token, sid))
        not_json = await http.post(url, content=b"{}", headers={
            **h(token, sid), "Content-Type": "text/plain"})
        wrong_accept = await http.post(url, json=PING, headers={
            **h(token, sid), "Accept": "text/html"})
    assert parse.status_code == 400 and parse.json()["error"]["code"] == -32700
    assert invalid.status_code == 400 and invalid.json()["error"]["code"] == -32600
    assert unknown.status_code == 200 and unknown.json()["error"]["code"] == -32601
    assert not_json.status_code == 415
    assert wrong_accept.status_code == 406


async def test_batches_only_in_2025_03_26(settings_for: Any, config: Any, token: str) -> None:
    batch = [PING, {"jsonrpc": "2.0", "method": "notifications/initialized"},
             {"jsonrpc": "2.0", "id": 8, "method": "tools/list"}]
    async with run_gateway(settings_for([config])) as gw, httpx.AsyncClient() as http:
        await gw.wait_serving("eng", "beta")
        url = gw.url("eng")
        old = await raw_initialize(http, url, token, "2025-03-26")
        new = await raw_initialize(http, url, token, "2025-06-18")
        ok = await http.post(url, json=batch, headers=h(token, old, None))
        refused = await http.post(url, json=batch, headers=h(token, new))
    assert ok.status_code == 200
    replies = {r["id"]: r for r in ok.json()}
    assert replies[7]["result"] == {}
    assert [t["name"] for t in replies[8]["result"]["tools"]] == ["beta__echo", "beta__hello"]
    assert refused.status_code == 400


async def test_origin_is_validated(settings_for: Any, config: Any, token: str) -> None:
    settings = settings_for([config], allowed_origins=("https://app.example.com",))
    async with run_gateway(settings) as gw, httpx.AsyncClient() as http:
        url = gw.url("eng")
        results = {}
        for origin in ("https://evil.example.com", "http://localhost:3000",
                       "http://127.0.0.1:6274", "https://app.example.com", "null"):
            r = await http.post(url, json=PING, headers=h(token, Origin=origin))
            results[origin] = r.status_code
    assert results == {"https://evil.example.com": 403, "http://localhost:3000": 400,
                       "http://127.0.0.1:6274": 400, "https://app.example.com": 400,
                       "null": 403}  # 400: allowed through, then refused for no session


async def test_get_stream_delivers_list_changed(settings_for: Any, config: Any,
                                                token: str, alpha: Any) -> None:
    async with run_gateway(settings_for([config])) as gw, httpx.AsyncClient() as http:
        url = gw.url("eng")
        sid = await raw_initialize(http, url, token)
        no_accept = await http.get(url, headers={**bearer(token), "Mcp-Session-Id": sid,
                                                 "Accept": "application/json"})
        assert no_accept.status_code == 406
        async with http.stream("GET", url, headers={
                **bearer(token), "Mcp-Session-Id": sid,
                "Accept": "text/event-stream"}) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            second = await http.get(url, headers={**bearer(token), "Mcp-Session-Id": sid,
                                                  "Accept": "text/event-stream"})
            assert second.status_code == 409
            grown = config.model_copy(update={"servers": (*config.servers,
                                                          server("alpha", alpha.url,
                                                                 secret=True))})
            gw.runtime.apply({"eng": grown})
            with anyio.fail_after(20):
                async for line in stream.aiter_lines():
                    if line.startswith("data:") and "notifications/tools/list_changed" in line:
                        break


async def test_an_idle_session_expires(settings_for: Any, config: Any, token: str) -> None:
    async with run_gateway(settings_for([config], session_idle_seconds=60)) as gw, \
            httpx.AsyncClient() as http:
        url = gw.url("eng")
        sid = await raw_initialize(http, url, token)
        session = gw.runtime.sessions.get(sid)
        assert session is not None
        session.last_seen -= 61  # as if a minute had passed without a request
        expired = await http.post(url, json=PING, headers=h(token, sid))
        assert expired.status_code == 404
        assert await gw.runtime.sessions.sweep() == 1
        assert gw.runtime.sessions.get(sid) is None
