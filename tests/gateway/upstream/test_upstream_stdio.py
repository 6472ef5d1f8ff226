"""The stdio client and the process supervisor, with real stdio servers."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import anyio
import pytest
from uphelpers import (
    SERVER,
    Vault,
    config,
    group_members,
    inject,
    opened,
    process_gone,
    sha,
    structured,
    text_of,
)

from mcpyard import errors
from mcpyard.gateway.upstream import Owner

pytestmark = pytest.mark.anyio

ALICE = Owner("team/alice", "down-1")
BOB = Owner("team/bob", "down-2")
SDK_STDIO = (sys.executable, SERVER, "--transport", "stdio")


def call(tool: str, /, **arguments: object) -> dict[str, object]:
    return {"name": tool, "arguments": arguments}


async def test_mcp_server_time_found_beside_the_interpreter() -> None:
    # "mcp-server-time" is found through the interpreter's directory, prepended to PATH.
    cfg = config("stdio", slug="time", command=("mcp-server-time",))
    async with opened(cfg) as (up, _):
        assert up.last_error is None, up.last_error
        with anyio.fail_after(30):
            listed = await up.request("tools/list", None, owner=None)
            now = await up.request(
                "tools/call", call("get_current_time", timezone="UTC"), owner=ALICE
            )
    assert "get_current_time" in {t["name"] for t in listed["tools"]}
    assert '"timezone": "UTC"' in text_of(now)


async def test_every_owner_shares_the_one_process(tmp_path: Path) -> None:
    async with opened(config("stdio", command=SDK_STDIO), workdir=tmp_path) as (up, _):
        with anyio.fail_after(20):
            a = structured(await up.request("tools/call", call("whoami"), owner=ALICE))
            b = structured(await up.request("tools/call", call("whoami"), owner=BOB))
            where = structured(await up.request("tools/call", call("cwd"), owner=None))
        assert a["pid"] == b["pid"] == up.pid
        assert where == str(tmp_path)
        assert up.protocol_version == "2025-11-25"


async def test_environment_is_minimal_plus_config_and_env_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SOPS_AGE_KEY", "AGE-SECRET-KEY-1NOTFORCHILDREN")
    monkeypatch.setenv("LC_TESTING", "kept")
    cfg = config(
        "stdio",
        command=SDK_STDIO,
        env={"LOG_LEVEL": "info"},
        injections=(inject("env", "api", "API_KEY"), inject("bearer", "gh", "Authorization")),
    )
    vault = Vault({"team/api/value": "s3cr3t value", "team/gh/value": "unused here"})
    async with opened(cfg, secrets=vault) as (up, _):
        with anyio.fail_after(20):
            key = await up.request("tools/call", call("env_sha", name="API_KEY"), owner=None)
            names = await up.request("tools/call", call("env_names"), owner=None)
    assert structured(key) == sha("s3cr3t value")
    env = set(structured(names))
    assert {"API_KEY", "LOG_LEVEL", "PATH", "LC_TESTING"} <= env
    assert "SOPS_AGE_KEY" not in env
    assert "Authorization" not in env  # header injections are not for processes


async def test_crash_fails_the_pending_call_and_the_process_comes_back() -> None:
    async with opened(config("stdio", slug="crashy", command=SDK_STDIO)) as (up, _):
        first = up.pid
        with anyio.fail_after(30):
            with pytest.raises(errors.UpstreamError) as caught:
                await up.request("tools/call", call("crash", code=3), owner=ALICE)
            assert str(caught.value) == "crashy: server process exited with code 3"
            assert up.last_error is not None
            assert up.last_error == "crashy: server process exited with code 3"
            result = await up.request("tools/call", call("echo", text="back"), owner=ALICE)
        assert text_of(result) == "back"
        assert up.last_error is None and up.pid != first
        assert process_gone(first)


async def test_close_leaves_no_process_behind() -> None:
    async with opened(config("stdio", command=SDK_STDIO)) as (up, _):
        with anyio.fail_after(20):
            child = structured(await up.request("tools/call", call("spawn_child"), owner=None))
        leader = up.pid
        assert leader is not None and not process_gone(child)
        assert set(group_members(leader)) >= {leader, child}
    assert process_gone(leader)
    assert process_gone(child)
    assert group_members(leader) == []


async def test_fifty_concurrent_calls_get_their_own_answers() -> None:
    async with opened(config("stdio", command=SDK_STDIO)) as (up, _):
        with anyio.fail_after(30):
            results = await asyncio.gather(
                *(
                    up.request("tools/call", call("echo", text=f"n{i}"), owner=(ALICE, BOB)[i % 2])
                    for i in range(50)
                )
            )
    assert [text_of(r) for r in results] == [f"n{i}" for i in range(50)]


async def test_large_messages_both_ways() -> None:
    payload = "y" * 300_000  # one line of ~300 KB, well above asyncio's 64 KiB default
    async with opened(config("stdio", command=SDK_STDIO)) as (up, _):
        with anyio.fail_after(30):
            echoed = await up.request("tools/call", call("echo", text=payload), owner=None)
            big = await up.request("tools/call", call("big", size=1_000_000), owner=None)
    assert text_of(echoed) == payload
    assert len(text_of(big)) == 1_000_000


async def test_server_requests_are_answered_and_notifications_passed_on() -> None:
    async with opened(config("stdio", slug="asker", command=SDK_STDIO)) as (up, notes):
        with anyio.fail_after(20):
            answers = structured(await up.request("tools/call", call("ask_client"), owner=None))
            await up.request("tools/call", call("list_changed"), owner=None)
            await notes.wait_for("notifications/tools/list_changed")
    assert answers["ping"] == "ok"
    assert "no client to relay this request to" in answers["roots"]
    assert {slug for slug, _ in notes.messages} == {"asker"}


async def test_timeout_names_the_server_and_the_process_stays() -> None:
    async with opened(config("stdio", slug="sleepy", command=SDK_STDIO)) as (up, _):
        pid = up.pid
        with anyio.fail_after(20):
            with pytest.raises(errors.UpstreamError) as caught:
                await up.request("tools/call", call("slow", seconds=30), owner=None, timeout=0.3)
            result = await up.request("tools/call", call("echo", text="ok"), owner=None)
        assert str(caught.value) == "sleepy: timed out after 0.3s"
        assert text_of(result) == "ok" and up.pid == pid


async def test_missing_command_is_unhealthy_and_fails_fast() -> None:
    cfg = config("stdio", slug="nope", command=("no-such-mcp-server-anywhere",))
    async with opened(cfg) as (up, _):
        assert up.last_error is not None
        assert (
            up.last_error == "nope: cannot start 'no-such-mcp-server-anywhere': command not found"
        )
        with anyio.fail_after(5), pytest.raises(errors.UpstreamError, match="command not found"):
            await up.request("tools/list", None, owner=None)


async def test_missing_env_secret_is_reported_without_starting() -> None:
    cfg = config("stdio", slug="nokey", command=SDK_STDIO, injections=(inject("env", "x", "X"),))
    async with opened(cfg, secrets=Vault()) as (up, _):
        assert up.last_error is not None
        assert up.last_error == "nokey: secret team/x/value is not available (KeyError)"
        assert up.pid is None


async def test_hosted_http_server_is_spawned_supervised_and_reached(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = (sys.executable, SERVER, "--transport", "streamable-http", "--port", str(port))
    cfg = config(
        "streamable-http", slug="hosted", command=command, url=f"http://127.0.0.1:{port}/mcp"
    )
    async with opened(cfg, workdir=tmp_path) as (up, _):
        assert up.last_error is None, up.last_error
        with anyio.fail_after(30):
            first = structured(await up.request("tools/call", call("whoami"), owner=ALICE))
            with pytest.raises(errors.UpstreamError):
                await up.request("tools/call", call("crash"), owner=ALICE)
            # Once the supervisor saw the exit, the next call waits for the restarted
            # process's port, then re-initializes the owner's session (it died too).
            while up.last_error != "hosted: server process exited with code 3":
                await up._supervisor.changed.wait()
            second = structured(await up.request("tools/call", call("whoami"), owner=ALICE))
        assert first["pid"] != second["pid"]
        leader = second["pid"]
    assert process_gone(leader) and process_gone(first["pid"])
    assert os.path.isdir(tmp_path)
