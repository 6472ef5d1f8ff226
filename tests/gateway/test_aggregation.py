"""tools/list is the union of every server's tools, namespaced, filtered, sorted; tools/call
routes by the table to the right server under the tool's own name."""

from __future__ import annotations

from typing import Any

import pytest
from gwtools import (
    mcp_client,
    member,
    names,
    run_gateway,
    server,
    text_of,
    workspace,
)
from mcp.shared.exceptions import MCPError
from mcp_types import PaginatedRequestParams

from mcpyard.crypto import tokens

pytestmark = pytest.mark.anyio


@pytest.fixture
def admin_token() -> str:
    return tokens.new()


@pytest.fixture
def bob_token() -> str:
    return tokens.new()


@pytest.fixture
def config(alpha: Any, beta: Any, admin_token: str, bob_token: str) -> Any:
    return workspace("eng", [
        # beta first, to show that the order of servers does not decide the order of tools
        server("beta", beta.url),
        server("alpha", alpha.url, secret=True, tools={"exclude": ["delete_*"]}),
    ], [
        member("admin", admin_token, role="admin"),
        member("bob", bob_token, allow=("alpha__*", "beta__hello"), deny=("alpha__add",)),
    ], display_name="Engineering")


async def test_union_is_namespaced_sorted_and_filtered(settings_for: Any, config: Any,
                                                       admin_token: str) -> None:
    async with run_gateway(settings_for([config])) as gw:
        await gw.wait_serving("eng", "alpha", "beta")
        async with mcp_client(gw.url("eng"), admin_token) as client:
            listed = await client.list_tools()
    assert names(listed) == ["alpha__add", "alpha__auth_header", "alpha__echo", "alpha__fail",
                             "beta__echo", "beta__hello"]
    # the tool object passes through untouched except its name
    echo = next(t for t in listed.tools if t.name == "beta__echo")
    assert echo.description == "Echo the text."
    assert echo.input_schema["properties"]["text"]["type"] == "string"


async def test_initialize_names_the_workspace(settings_for: Any, config: Any,
                                              admin_token: str) -> None:
    async with run_gateway(settings_for([config])) as gw, \
            mcp_client(gw.url("eng"), admin_token) as client:
        info = client.initialize_result
    assert info is not None
    assert info.server_info.name == "mcpyard"
    assert info.server_info.title == "Engineering"
    assert info.capabilities.tools is not None and info.capabilities.tools.list_changed


async def test_calls_reach_the_right_server(settings_for: Any, config: Any,
                                            admin_token: str) -> None:
    async with run_gateway(settings_for([config])) as gw:
        await gw.wait_serving("eng", "alpha", "beta")
        async with mcp_client(gw.url("eng"), admin_token) as client:
            a = await client.call_tool("alpha__echo", {"text": "x"})
            b = await client.call_tool("beta__echo", {"text": "y"})
            s = await client.call_tool("alpha__add", {"a": 2, "b": 40})
            failed = await client.call_tool("alpha__fail", {"message": "boom"})
    assert text_of(a) == "alpha:x"
    assert text_of(b) == "beta:y"
    assert text_of(s) == "42"
    # a tool's own failure stays a result
    assert failed.is_error and "boom" in text_of(failed)


async def test_member_sees_and_calls_only_what_access_allows(settings_for: Any, config: Any,
                                                             bob_token: str) -> None:
    async with run_gateway(settings_for([config])) as gw:
        await gw.wait_serving("eng", "alpha", "beta")
        async with mcp_client(gw.url("eng"), bob_token) as client:
            listed = names(await client.list_tools())
            errors = {}
            for name in ("alpha__add", "alpha__delete_everything", "beta__echo",
                         "nosuch__tool", "alpha__nosuch"):
                with pytest.raises(MCPError) as info:
                    await client.call_tool(name, {})
                errors[name] = (info.value.error.code, info.value.error.message)
            ok = await client.call_tool("beta__hello", {"name": "bob"})
    assert listed == ["alpha__auth_header", "alpha__echo", "alpha__fail", "beta__hello"]
    assert text_of(ok) == "hello bob"
    # denied, filtered out by the server, and nonexistent tools all answer alike
    for name, (code, message) in errors.items():
        assert (code, message) == (-32602, f"Unknown tool: {name}")


async def test_pages_with_opaque_cursors(settings_for: Any, config: Any,
                                         admin_token: str) -> None:
    async with run_gateway(settings_for([config], page_size=4)) as gw:
        await gw.wait_serving("eng", "alpha", "beta")
        async with mcp_client(gw.url("eng"), admin_token) as client:
            first = await client.list_tools()
            assert first.next_cursor and "alpha" not in first.next_cursor
            second = await client.list_tools(
                params=PaginatedRequestParams(cursor=first.next_cursor))
            with pytest.raises(MCPError) as bad:
                await client.list_tools(params=PaginatedRequestParams(cursor="not-a-cursor"))
    assert names(first) == ["alpha__add", "alpha__auth_header", "alpha__echo", "alpha__fail"]
    assert names(second) == ["beta__echo", "beta__hello"]
    assert second.next_cursor is None
    assert bad.value.error.code == -32602
