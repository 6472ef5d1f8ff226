"""Each hub entry that runs without outside network, started once as the catalog says, lists
its tools. The packages are the pinned ones that tools/setup/30-hub.sh installed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import anyio
import pytest
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from tests.hub import servers


@pytest.mark.parametrize("name", sorted(servers.OFFLINE))
@pytest.mark.anyio
async def test_the_entry_starts_and_lists_its_tools(name: str, tmp_path: Path) -> None:
    entry = servers.entry(name)
    offline = servers.OFFLINE[name]
    command = servers.executable(entry)
    args = offline.args if offline.args is not None else entry.launch().args
    env = {**os.environ, **entry.env}
    env.update({k: v.format(tmp=tmp_path) for k, v in offline.env.items()})
    # a fresh HOME: no user config, cache or credentials of this machine leak in
    env["HOME"] = str(tmp_path)
    params = StdioServerParameters(
        command=command[0],
        args=[*command[1:], *(a.format(tmp=tmp_path) for a in args)],
        env=env,
        cwd=tmp_path,
    )
    with anyio.fail_after(120):
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            tools = {t.name: t for t in (await session.list_tools()).tools}
    assert offline.tool in tools, f"{name} lists {sorted(tools)}"
    assert all(t.input_schema.get("type") == "object" for t in tools.values())


def test_the_npm_lock_installs_exactly_the_pinned_entries() -> None:
    declared = json.loads(servers.PACKAGE_JSON.read_text())["dependencies"]
    assert declared == servers.npm_entries()
    lock = json.loads((servers.PACKAGE_JSON.parent / "package-lock.json").read_text())
    for package, version in declared.items():
        assert lock["packages"][f"node_modules/{package}"]["version"] == version


def test_every_offline_name_is_a_catalog_entry_that_runs_a_command() -> None:
    for name in servers.OFFLINE:
        assert servers.entry(name).command is not None, name
