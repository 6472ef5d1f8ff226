"""The demo server, `python -m mcpyard.demo`, over stdio and streamable HTTP with the SDK."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import httpx
import httpx2
import pytest
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from mcpyard.demo import describe_authorization
from tests.proctools import free_port

pytestmark = pytest.mark.anyio

TOKEN = "demo-secret-0123456789abcdefghijklmnop"
TOOLS = {"echo", "add", "word_count", "fail", "whoami"}


@asynccontextmanager
async def _http_demo(*extra: str, env: dict[str, str] | None = None) -> AsyncIterator[str]:
    """Run the demo on a free loopback port; yield its MCP URL once it accepts connections."""
    port = free_port()
    process = await anyio.open_process(
        [sys.executable, "-m", "mcpyard.demo", "--transport", "streamable-http",
         "--port", str(port), *extra],
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        with anyio.fail_after(20):
            while True:
                assert process.returncode is None, "the demo server exited early"
                try:
                    stream = await anyio.connect_tcp("127.0.0.1", port)
                except OSError:
                    await anyio.sleep(0.05)  # poll until it listens, under the deadline
                    continue
                await stream.aclose()
                break
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        with anyio.move_on_after(10):
            await process.wait()
        if process.returncode is None:
            process.kill()
            await process.wait()


async def _exercise(session: ClientSession) -> str:
    """The checks both transports must pass; returns whoami's answer."""
    await session.initialize()
    tools = {t.name for t in (await session.list_tools()).tools}
    assert tools == TOOLS

    echoed = await session.call_tool("echo", {"text": "héllo gateway"})
    assert not echoed.is_error
    assert echoed.content[0].text == "héllo gateway"  # type: ignore[union-attr]

    added = await session.call_tool("add", {"a": 2, "b": 40})
    assert added.content[0].text == "42"  # type: ignore[union-attr]

    counted = await session.call_tool("word_count", {"text": " one two  three "})
    assert counted.content[0].text == "3"  # type: ignore[union-attr]

    failed = await session.call_tool("fail", {"message": "on purpose"})
    assert failed.is_error
    assert "on purpose" in failed.content[0].text  # type: ignore[union-attr]

    readme = await session.read_resource("demo://readme")
    assert "echo(text)" in readme.contents[0].text  # type: ignore[union-attr]
    prompt = await session.get_prompt("summarize", {"text": "abc"})
    assert "abc" in prompt.messages[0].content.text  # type: ignore[union-attr]

    who = await session.call_tool("whoami", {})
    assert not who.is_error
    text: str = who.content[0].text  # type: ignore[union-attr]
    return text


async def test_stdio() -> None:
    params = StdioServerParameters(command=sys.executable, args=["-m", "mcpyard.demo"])
    with anyio.fail_after(30):
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            assert await _exercise(session) == "none"


async def test_streamable_http_without_token() -> None:
    async with _http_demo() as url:
        with anyio.fail_after(30):
            async with (
                streamable_http_client(url) as (read, write),
                ClientSession(read, write) as session,
            ):
                assert await _exercise(session) == "none"


async def test_token_env_refuses_missing_and_wrong_bearer() -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    async with (
        _http_demo("--token-env", "DEMO_TOKEN", env={"DEMO_TOKEN": TOKEN}) as url,
        httpx.AsyncClient(timeout=10) as client,
    ):
        missing = await client.post(url, json=body)
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"].startswith("Bearer")
        wrong = await client.post(url, json=body, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
        basic = await client.post(url, json=body, headers={"Authorization": f"Basic {TOKEN}"})
        assert basic.status_code == 401


async def test_token_env_accepts_the_right_bearer_and_whoami_hides_it() -> None:
    async with _http_demo("--token-env", "DEMO_TOKEN", env={"DEMO_TOKEN": TOKEN}) as url:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with anyio.fail_after(30):
            async with (
                httpx2.AsyncClient(headers=headers, timeout=30) as http,
                streamable_http_client(url, http_client=http) as (read, write),
                ClientSession(read, write) as session,
            ):
                who = await _exercise(session)
    assert who == f"Bearer {TOKEN[:4]}… ({len(TOKEN)} characters)"
    assert TOKEN not in who


async def test_token_env_refuses_to_start_without_the_variable() -> None:
    env = {k: v for k, v in os.environ.items() if k != "MCPYARD_DEMO_UNSET"}
    with anyio.fail_after(20):
        result = await anyio.run_process(
            [sys.executable, "-m", "mcpyard.demo", "--transport", "streamable-http",
             "--port", str(free_port()), "--token-env", "MCPYARD_DEMO_UNSET"],
            env=env, check=False,
        )  # fmt: skip
    assert result.returncode == 2
    assert b"MCPYARD_DEMO_UNSET" in result.stderr


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param(None, "none", id="absent"),
        pytest.param("", "none", id="empty"),
        pytest.param("Bearer abcdefghij", "Bearer abcd… (10 characters)", id="bearer"),
        pytest.param("Bearer abc", "Bearer a… (3 characters)", id="short"),
        pytest.param("Bearer x", "Bearer … (1 character)", id="one-char"),
        pytest.param("sk-live-123456", "(no scheme) sk-l… (14 characters)", id="no-scheme"),
    ],
)
async def test_describe_authorization_never_shows_the_whole_credential(
    header: str | None, expected: str
) -> None:
    described = describe_authorization(header)
    assert described == expected
    if header:
        credential = header.split(" ", 1)[-1]
        assert credential not in described
