"""The streamable HTTP client against real SDK servers (stateful/stateless, SSE/JSON)."""

from __future__ import annotations

import asyncio
import socket

import anyio
import pytest
from uphelpers import (
    HttpServer,
    Vault,
    config,
    inject,
    opened,
    running,
    sha,
    structured,
    text_of,
)

from mcpyard import errors
from mcpyard.gateway.upstream import Owner, UpstreamRPCError

pytestmark = pytest.mark.anyio

ALICE = Owner("team/alice", "down-1")
BOB = Owner("team/bob", "down-2")


@pytest.mark.parametrize(
    "mode",
    [
        pytest.param((), id="stateful-sse"),
        pytest.param(("--json",), id="stateful-json"),
        pytest.param(("--stateless",), id="stateless-sse"),
        pytest.param(("--stateless", "--json"), id="stateless-json"),
    ],
)
async def test_list_and_call_in_every_server_mode(mode: tuple[str, ...]) -> None:
    with running("--transport", "streamable-http", *mode) as server:
        async with opened(config(url=server.url)) as (up, _):
            assert up.last_error is None, up.last_error
            with anyio.fail_after(20):
                listed = await up.request("tools/list", None, owner=None)
                called = await up.request(
                    "tools/call", {"name": "echo", "arguments": {"text": "héllo"}}, owner=ALICE
                )
            assert "echo" in {t["name"] for t in listed["tools"]}
            assert text_of(called) == "héllo"


async def test_owners_get_their_own_session_and_keep_it(stateful: HttpServer) -> None:
    async with opened(config(url=stateful.url)) as (up, _):
        with anyio.fail_after(20):

            async def session_of(owner: Owner | None) -> str:
                result = await up.request(
                    "tools/call", {"name": "whoami", "arguments": {}}, owner=owner
                )
                return str(structured(result)["session"])

            a1, b1, a2, gw = (
                await session_of(ALICE),
                await session_of(BOB),
                await session_of(ALICE),
                await session_of(None),
            )
    assert a1 == a2, "an owner keeps its session"
    assert len({a1, b1, gw}) == 3, "owners and the gateway never share a session"


async def test_concurrent_first_requests_of_one_owner_initialize_once(
    stateful: HttpServer,
) -> None:
    async with opened(config(url=stateful.url)) as (up, _):
        call = {"name": "whoami", "arguments": {}}
        with anyio.fail_after(20):
            results = await asyncio.gather(
                *(up.request("tools/call", call, owner=ALICE) for _ in range(10))
            )
    assert len({structured(r)["session"] for r in results}) == 1


async def test_stateless_server_shares_one_initialization() -> None:
    with running("--transport", "streamable-http", "--stateless", "--json") as server:
        async with opened(config(url=server.url)) as (up, _):
            with anyio.fail_after(20):
                await up.request("tools/list", None, owner=ALICE)
                await up.request("tools/list", None, owner=BOB)
            # One handshake (at start, for the gateway) served both owners.
            assert up._shared is not None and not up._sessions


async def test_expired_session_is_reinitialized_transparently() -> None:
    server = HttpServer("--transport", "streamable-http", "--handshake-only").start()
    try:
        async with opened(config(url=server.url)) as (up, _):
            call = {"name": "whoami", "arguments": {}}
            with anyio.fail_after(30):
                before = structured(await up.request("tools/call", call, owner=ALICE))
                # The new process knows no session: 404 on the old id. (In a thread, so the
                # event loop sees the old connections close, as it would in production.)
                await anyio.to_thread.run_sync(server.restart)
                after = structured(await up.request("tools/call", call, owner=ALICE))
            assert after["pid"] != before["pid"]
            assert after["session"] != before["session"]
            assert up.last_error is None
    finally:
        server.stop()


async def test_release_ends_the_session_upstream(stateful: HttpServer) -> None:
    async with opened(config(url=stateful.url)) as (up, _):
        call = {"name": "whoami", "arguments": {}}
        with anyio.fail_after(20):
            first = structured(await up.request("tools/call", call, owner=ALICE))["session"]
            await up.release(ALICE)
            second = structured(await up.request("tools/call", call, owner=ALICE))["session"]
    assert first != second


async def test_secrets_reach_the_upstream_exactly_as_configured(stateful: HttpServer) -> None:
    token, key = "tok-Zq8!x y", "k3y/with+chars="
    vault = Vault({"team/gh/value": token, "team/api/value": key})
    server = config(
        url=stateful.url,
        injections=(inject("bearer", "gh", "Authorization"), inject("header", "api", "X-Api-Key")),
    )
    async with opened(server, secrets=vault) as (up, _):
        with anyio.fail_after(20):
            auth = await up.request(
                "tools/call",
                {"name": "header_sha", "arguments": {"name": "Authorization"}},
                owner=ALICE,
            )
            api = await up.request(
                "tools/call", {"name": "header_sha", "arguments": {"name": "X-Api-Key"}}, owner=BOB
            )
    assert structured(auth) == sha(f"Bearer {token}")
    assert structured(api) == sha(key)


async def test_refused_credentials_are_a_clear_error_without_the_secret() -> None:
    secret = "wrong-secret-value"
    with running("--transport", "streamable-http", "--token", "right") as server:
        cfg = config(
            url=server.url + "?apikey=query-secret",
            injections=(inject("bearer", "gh", "Authorization"),),
        )
        async with opened(cfg, secrets=Vault({"team/gh/value": secret})) as (up, _):
            assert up.last_error is not None
            assert "refused the gateway's credentials" in (up.last_error or "")
            with anyio.fail_after(20), pytest.raises(errors.UpstreamError) as caught:
                await up.request("tools/list", None, owner=ALICE)
            for text in (str(caught.value), up.last_error or ""):
                assert "HTTP 401" in text and "check the secret" in text
                assert secret not in text and "query-secret" not in text


async def test_right_credentials_pass_the_guard() -> None:
    with running("--transport", "streamable-http", "--token", "right") as server:
        cfg = config(url=server.url, injections=(inject("bearer", "gh", "Authorization"),))
        async with opened(cfg, secrets=Vault({"team/gh/value": "right"})) as (up, _):
            with anyio.fail_after(20):
                result = await up.request("tools/list", None, owner=ALICE)
            assert up.last_error is None and result["tools"]


async def test_unreachable_upstream_is_unhealthy_with_a_clear_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound but not listening: connection refused
        cfg = config(slug="gone", url=f"http://127.0.0.1:{port}/mcp?token=query-secret")
        async with opened(cfg) as (up, _):
            assert up.last_error is not None
            assert up.last_error == f"gone: cannot connect to 127.0.0.1:{port}: Connection refused"
            with anyio.fail_after(20), pytest.raises(errors.UpstreamError) as caught:
                await up.request("tools/list", None, owner=ALICE)
            assert f"127.0.0.1:{port}" in str(caught.value)
            assert "query-secret" not in str(caught.value)


async def test_timeout_names_the_server(stateful: HttpServer) -> None:
    async with opened(config(slug="slowpoke", url=stateful.url)) as (up, _):
        with anyio.fail_after(20), pytest.raises(errors.UpstreamError) as caught:
            await up.request(
                "tools/call",
                {"name": "slow", "arguments": {"seconds": 30}},
                owner=ALICE,
                timeout=0.5,
            )
        assert str(caught.value) == "slowpoke: timed out after 0.5s"
        # The session survives a timeout: the next call works.
        with anyio.fail_after(20):
            result = await up.request(
                "tools/call", {"name": "echo", "arguments": {"text": "still"}}, owner=ALICE
            )
        assert text_of(result) == "still"


async def test_jsonrpc_error_passes_through(stateful: HttpServer) -> None:
    async with opened(config(url=stateful.url)) as (up, _):
        with anyio.fail_after(20), pytest.raises(UpstreamRPCError) as caught:
            await up.request("no/such/method", {}, owner=ALICE)
    assert caught.value.code == -32601


async def test_list_changed_on_the_gateway_stream_reaches_on_notification(
    stateful: HttpServer,
) -> None:
    async with opened(config(slug="notifier", url=stateful.url)) as (up, notes):
        with anyio.fail_after(20):
            await up.listening.wait()
            await up.request("tools/call", {"name": "list_changed", "arguments": {}}, owner=None)
            message = await notes.wait_for("notifications/tools/list_changed")
    assert message["jsonrpc"] == "2.0"
    assert notes.messages[0][0] == "notifier"


async def test_notifications_inside_a_response_stream_are_passed_on(
    stateful: HttpServer,
) -> None:
    async with opened(config(url=stateful.url)) as (up, notes):
        with anyio.fail_after(20):
            result = await up.request(
                "tools/call", {"name": "progress", "arguments": {}}, owner=ALICE
            )
            await notes.wait_for("notifications/message")
    assert text_of(result) == "finished"


async def test_server_requests_are_answered(stateful: HttpServer) -> None:
    async with opened(config(url=stateful.url)) as (up, _):
        with anyio.fail_after(20):
            result = await up.request(
                "tools/call", {"name": "ask_client", "arguments": {}}, owner=ALICE
            )
    answers = structured(result)
    assert answers["ping"] == "ok"
    assert "no client to relay this request to" in answers["roots"]


async def test_large_response(stateful: HttpServer) -> None:
    async with opened(config(url=stateful.url)) as (up, _):
        with anyio.fail_after(20):
            result = await up.request(
                "tools/call", {"name": "big", "arguments": {"size": 3_000_000}}, owner=ALICE
            )
    assert len(text_of(result)) == 3_000_000


async def test_closed_client_refuses_requests(stateless_json: HttpServer) -> None:
    async with opened(config(url=stateless_json.url)) as (up, _):
        pass
    with pytest.raises(errors.UpstreamError, match="closed"):
        await up.request("tools/list", None, owner=ALICE)
    assert up.last_error is not None
