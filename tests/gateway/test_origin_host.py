"""Origin and Host validation against DNS rebinding, driven as a browser page would.

Look-alike origins (``http://127.0.0.1.evil.example``) once passed a prefix test on the host;
now the origin is parsed and its host compared exactly. Bound to loopback, the ``Host`` header
must be a loopback name too: a rebound page sends its own name there.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from gwtools import MCP_HEADERS, bearer, member, run_gateway, workspace

from mcpyard.crypto import tokens
from mcpyard.gateway.downstream import _origin

pytestmark = pytest.mark.anyio

TOKEN = tokens.new()
PING = {"jsonrpc": "2.0", "id": 1, "method": "ping"}

ORIGINS = [
    # (origin, served)
    ("http://127.0.0.1.evil.example", False),
    ("https://127.0.0.1.nip.io.attacker.net", False),
    ("http://localhost.evil.example", False),
    ("http://evil.example/127.0.0.1", False),
    ("http://user@127.0.0.1", False),
    ("http://127.0.0.1:99999", False),
    ("ftp://127.0.0.1", False),
    ("null", False),
    ("http://[::1].evil.example", False),
    ("https://app.example.com.evil.example", False),
    ("http://app.example.com", False),  # allowed only over https
    ("https://app.example.com:8443", False),  # another port
    ("http://127.0.0.1", True),
    ("http://127.0.0.1:6274", True),
    ("http://127.5.6.7:3000", True),
    ("http://localhost:3000", True),
    ("http://LOCALHOST", True),
    ("http://app.localhost:5173", True),
    ("http://[::1]:8080", True),
    ("https://app.example.com", True),
    ("https://app.example.com:443", True),
    ("https://APP.example.com/", True),
]

HOSTS = [
    # (Host header, served when bound to loopback)
    ("127.0.0.1.evil.example", False),
    ("evil.example", False),
    ("rebind.attacker.net:8080", False),
    ("localhost.evil.example:80", False),
    ("127.0.0.1:notaport", False),
    ("[::1", False),
    ("127.0.0.1", True),
    ("127.0.0.1:8080", True),
    ("localhost:8080", True),
    ("mcp.localhost", True),
    ("[::1]:8080", True),
    ("gateway.internal:8080", True),  # --allow-host gateway.internal
]


async def _status(http: httpx.AsyncClient, url: str, **headers: str) -> int:
    r = await http.post(url, json=PING, headers={**MCP_HEADERS, **bearer(TOKEN), **headers})
    return r.status_code


async def test_origins_and_hosts(settings_for: Any) -> None:
    ws = workspace("eng", [], [member("alice", TOKEN)])
    settings = settings_for([ws], allowed_origins=("https://app.example.com",),
                            allowed_hosts=("gateway.internal",))
    async with run_gateway(settings) as gw, httpx.AsyncClient() as http:
        url = gw.url("eng")
        # An allowed request reaches the endpoint (400: a ping needs a session), a refused
        # one is 403 before it: on /mcp (the short way in) and on every other route.
        origins = {o: await _status(http, url, Origin=o) for o, _ in ORIGINS}
        hosts = {h: await _status(http, url, Host=h) for h, _ in HOSTS}
        ready = {o: (await http.get(f"{gw.base_url}/readyz", headers={"Origin": o})
                     ).status_code for o, _ in ORIGINS}
        sse = (await http.get(gw.url("eng", "sse"), headers={
            **bearer(TOKEN), "Host": "evil.example"})).status_code
    assert {o: s != 403 for o, s in origins.items()} == dict(ORIGINS)
    assert {o: s != 403 for o, s in ready.items()} == dict(ORIGINS)
    assert {h: s != 403 for h, s in hosts.items()} == dict(HOSTS)
    assert sse == 403


async def test_host_is_not_checked_off_loopback(settings_for: Any) -> None:
    # In a cluster the gateway listens on 0.0.0.0 behind a Service: any Host reaches it,
    # Origin is still checked.
    ws = workspace("eng", [], [member("alice", TOKEN)])
    async with run_gateway(settings_for([ws], host="0.0.0.0")) as gw, \
            httpx.AsyncClient() as http:
        url = gw.url("eng")
        assert await _status(http, url, Host="mcp.example.com") == 400
        assert await _status(http, url, Origin="http://127.0.0.1.evil.example") == 403


@pytest.mark.parametrize(("origin", "served"), ORIGINS)
def test_origin_table(origin: str, served: bool) -> None:
    mw = _origin.OriginMiddleware(None, ("https://app.example.com",))  # type: ignore[arg-type]
    assert mw._ok(origin.encode(), None) is served
