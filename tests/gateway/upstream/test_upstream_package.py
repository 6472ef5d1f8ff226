"""create() picks the client by transport; the package exports what it says; results."""

from __future__ import annotations

import pytest
from uphelpers import Vault, config

from mcpyard import errors
from mcpyard.gateway import upstream
from mcpyard.gateway.upstream import _http, _sse, _stdio, _wire

pytestmark = pytest.mark.anyio


async def nothing(slug: str, message: dict[str, object]) -> None:
    return None


def test_exports_are_sorted_and_real() -> None:
    assert upstream.__all__ == sorted(upstream.__all__)
    assert set(upstream.__all__) == {
        "Owner",
        "SecretSource",
        "Upstream",
        "UpstreamRPCError",
        "create",
    }
    for name in upstream.__all__:
        assert getattr(upstream, name) is not None


@pytest.mark.parametrize(
    ("fields", "kind"),
    [
        pytest.param({"transport": "stdio", "command": ("x",)}, _stdio.StdioUpstream, id="stdio"),
        pytest.param({"transport": "sse", "url": "http://h/sse"}, _sse.LegacySSEUpstream, id="sse"),
        pytest.param(
            {"transport": "streamable-http", "url": "http://h/mcp"},
            _http.StreamableHTTPUpstream,
            id="http",
        ),
        pytest.param(
            {"transport": "streamable-http", "url": "http://127.0.0.1:9/mcp", "command": ("x",)},
            _http.StreamableHTTPUpstream,
            id="hosted-http",
        ),
    ],
)
async def test_create_picks_the_client(fields: dict[str, object], kind: type) -> None:
    transport = str(fields.pop("transport"))
    client = upstream.create(config(transport, **fields), secrets=Vault(), on_notification=nothing)
    assert isinstance(client, kind)
    assert client.last_error is not None and client.last_error == "not started"
    await client.close()
    assert client.last_error == "up: closed"


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"transport": "stdio"}, id="stdio-without-command"),
        pytest.param({"transport": "sse"}, id="sse-without-url"),
        pytest.param({"transport": "streamable-http"}, id="http-without-url"),
    ],
)
def test_create_refuses_an_incomplete_config(fields: dict[str, object]) -> None:
    transport = str(fields.pop("transport"))
    with pytest.raises(ValueError, match=r"^up: "):
        upstream.create(config(transport, **fields), secrets=Vault(), on_notification=nothing)


def test_result_and_errors() -> None:
    assert _wire.result_of({"jsonrpc": "2.0", "id": 1, "result": {"a": 1}}, "s") == {"a": 1}
    with pytest.raises(upstream.UpstreamRPCError) as caught:
        _wire.result_of({"id": 1, "error": {"code": -32602, "message": "bad", "data": [1]}}, "s")
    assert (caught.value.code, caught.value.rpc_message, caught.value.data) == (-32602, "bad", [1])
    with pytest.raises(
        errors.UpstreamError, match=r"^s: the upstream sent a malformed JSON-RPC response$"
    ):
        _wire.result_of({"id": 1}, "s")
