"""The legacy HTTP+SSE client against real SDK servers (``sse_app``)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import anyio
import pytest
from uphelpers import (
    ECHO_SERVER,
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
from mcpyard.gateway.upstream import Owner

pytestmark = pytest.mark.anyio

ALICE = Owner("team/alice", "down-1")
BOB = Owner("team/bob", "down-2")


@pytest.fixture(scope="module")
def legacy() -> Iterator[HttpServer]:
    with running("--transport", "sse") as server:
        yield server


async def test_bench_echo_server_list_and_call_for_two_owners() -> None:
    with running("--transport", "sse", "--app-from", ECHO_SERVER) as server:
        async with opened(config("sse", url=server.sse_url)) as (up, _):
            with anyio.fail_after(20):
                listed = await up.request("tools/list", None, owner=ALICE)
                a = await up.request(
                    "tools/call", {"name": "echo", "arguments": {"text": "for alice"}}, owner=ALICE
                )
                b = await up.request(
                    "tools/call", {"name": "add", "arguments": {"a": 2, "b": 3}}, owner=BOB
                )
            assert {t["name"] for t in listed["tools"]} == {"echo", "add"}
            assert text_of(a) == "for alice"
            assert structured(b) == 5
            assert set(up._streams) == {None, ALICE, BOB}


async def test_owners_get_their_own_stream(legacy: HttpServer) -> None:
    async with opened(config("sse", url=legacy.sse_url)) as (up, _):
        with anyio.fail_after(20):
            listed = await up.request("tools/list", None, owner=ALICE)
            await up.request("tools/list", None, owner=BOB)
        assert "whoami" in {t["name"] for t in listed["tools"]}
        endpoints = {endpoint for _, endpoint in up._streams.values()}
        assert len(endpoints) == 3, "gateway, alice and bob each have their own session"


async def test_concurrent_calls_are_matched_by_id(legacy: HttpServer) -> None:
    async with opened(config("sse", url=legacy.sse_url)) as (up, _):
        with anyio.fail_after(30):
            results = await asyncio.gather(
                *(
                    up.request(
                        "tools/call", {"name": "echo", "arguments": {"text": str(i)}}, owner=ALICE
                    )
                    for i in range(30)
                )
            )
    assert [text_of(r) for r in results] == [str(i) for i in range(30)]


async def test_secrets_on_get_and_post() -> None:
    with running("--transport", "sse", "--token", "sesame") as server:
        cfg = config(
            "sse",
            url=server.sse_url,
            injections=(inject("bearer", "t", "Authorization"), inject("header", "k", "X-Key")),
        )
        vault = Vault({"team/t/value": "sesame", "team/k/value": "kv"})
        async with opened(cfg, secrets=vault) as (up, _):
            assert up.last_error is None, up.last_error  # the GET passed the guard
            with anyio.fail_after(20):
                seen = await up.request(
                    "tools/call", {"name": "header_sha", "arguments": {"name": "X-Key"}}, owner=None
                )
            assert structured(seen) == sha("kv")


async def test_refused_credentials_on_the_stream() -> None:
    with running("--transport", "sse", "--token", "sesame") as server:
        cfg = config(
            "sse", url=server.sse_url, injections=(inject("bearer", "t", "Authorization"),)
        )
        async with opened(cfg, secrets=Vault({"team/t/value": "not-sesame"})) as (up, _):
            assert up.last_error is not None
            assert "refused the gateway's credentials (HTTP 401)" in (up.last_error or "")
            assert "not-sesame" not in (up.last_error or "")


async def test_dropped_stream_fails_pending_and_next_request_reconnects() -> None:
    server = HttpServer("--transport", "sse").start()
    try:
        async with opened(config("sse", url=server.sse_url)) as (up, _):
            with anyio.fail_after(30):
                pending = asyncio.ensure_future(
                    up.request(
                        "tools/call", {"name": "slow", "arguments": {"seconds": 60}}, owner=ALICE
                    )
                )
                while not up._streams.get(ALICE) or not up._streams[ALICE][0].pending:
                    await asyncio.sleep(0.01)
                await anyio.to_thread.run_sync(server.restart)
                with pytest.raises(errors.UpstreamError, match="event stream"):
                    await pending
                result = await up.request(
                    "tools/call", {"name": "echo", "arguments": {"text": "again"}}, owner=ALICE
                )
            assert text_of(result) == "again"
    finally:
        server.stop()
