"""Each hub entry that runs without outside network, started once as the catalog says, lists
its tools. The packages are the pinned ones that tools/setup/30-hub.sh installed.

The servers start a few at a time (most of a start is the interpreter loading its modules);
each entry still has its own test and its own failure message.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from tests.hub import servers

AT_ONCE = 4
DEADLINE_SECONDS = 180


@contextlib.asynccontextmanager
async def _docker_api(tmp: Path) -> AsyncIterator[None]:
    """A Docker Engine API on {tmp}/docker.sock: Podman's, with its own storage under tmp."""
    podman = shutil.which("podman")
    assert podman, "podman is missing: run tools/setup/31-podman.sh"
    socket = tmp / "docker.sock"
    process = await anyio.open_process([
        podman, "--root", str(tmp / "podman"), "--runroot", str(tmp / "podman-run"),
        "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend", "file",
        "system", "service", "--time=0", f"unix://{socket}",
    ])
    try:
        while not socket.is_socket():  # polled under the caller's deadline
            assert process.returncode is None, f"podman exited with {process.returncode}"
            await anyio.sleep(0.1)
        yield
    finally:
        process.terminate()
        await process.wait()


async def _list_tools(name: str, tmp: Path) -> dict[str, dict[str, object]]:
    entry = servers.entry(name)
    offline = servers.OFFLINE[name]
    command = servers.executable(entry)
    args = offline.args if offline.args is not None else entry.launch().args
    env = {**os.environ, **entry.env}
    env.update({k: v.format(tmp=tmp) for k, v in offline.env.items()})
    env["HOME"] = str(tmp)  # no user config, cache or credential of this machine leaks in
    params = StdioServerParameters(
        command=command[0],
        args=[*command[1:], *(a.format(tmp=tmp) for a in args)],
        env=env,
        cwd=tmp,
    )
    daemon = _docker_api(tmp) if offline.docker_api else contextlib.nullcontext()
    async with daemon, stdio_client(params) as (read, write), \
            ClientSession(read, write) as session:
        await session.initialize()
        return {t.name: t.input_schema for t in (await session.list_tools()).tools}


@pytest.fixture(scope="module")
def listed() -> dict[str, dict[str, dict[str, object]] | BaseException]:
    """Every OFFLINE entry's tools (name -> input schema), or why it did not list them."""
    out: dict[str, dict[str, dict[str, object]] | BaseException] = {}
    limit = anyio.CapacityLimiter(AT_ONCE)

    async def one(name: str, root: Path) -> None:
        async with limit:
            tmp = root / name
            tmp.mkdir()
            try:
                with anyio.fail_after(DEADLINE_SECONDS):
                    out[name] = await _list_tools(name, tmp)
            except Exception as exc:  # reported by the entry's own test
                out[name] = exc

    async def main() -> None:
        with tempfile.TemporaryDirectory() as root:
            async with anyio.create_task_group() as group:
                for name in sorted(servers.OFFLINE):
                    group.start_soon(one, name, Path(root))

    anyio.run(main)
    return out


@pytest.mark.parametrize("name", sorted(servers.OFFLINE))
def test_the_entry_starts_and_lists_its_tools(
    name: str, listed: dict[str, dict[str, dict[str, object]] | BaseException]
) -> None:
    tools = listed[name]
    if isinstance(tools, BaseException):
        raise AssertionError(f"{name} did not list its tools: {tools!r}") from tools
    assert servers.OFFLINE[name].tool in tools, f"{name} lists {sorted(tools)}"
    assert all(schema.get("type") == "object" for schema in tools.values())


def test_the_npm_lock_installs_exactly_the_pinned_entries() -> None:
    declared = json.loads(servers.PACKAGE_JSON.read_text())["dependencies"]
    assert declared == servers.npm_entries()
    lock = json.loads((servers.PACKAGE_JSON.parent / "package-lock.json").read_text())
    for package, version in declared.items():
        assert lock["packages"][f"node_modules/{package}"]["version"] == version


def test_every_offline_name_is_a_catalog_entry_that_runs_a_command() -> None:
    for name in servers.OFFLINE:
        assert servers.entry(name).command is not None, name
