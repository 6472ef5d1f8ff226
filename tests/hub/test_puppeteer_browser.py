"""The puppeteer entry drives a real browser: Debian's Chromium (tools/setup/40-chromium.sh),
named by PUPPETEER_EXECUTABLE_PATH as its docs say, opens a page and runs a script in it.
Offline: the page is a data: URL."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import anyio
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from tests.hub import servers

PAGE = "data:text/html,<title>hub</title><p id=x>mcpyard</p>"


def test_puppeteer_opens_a_page_in_debian_chromium(tmp_path: Path) -> None:
    chromium = shutil.which("chromium")
    assert chromium, "chromium is missing: run tools/setup/40-chromium.sh"
    entry = servers.entry("puppeteer")
    command = servers.executable(entry)
    env = {**os.environ, **entry.env, "HOME": str(tmp_path),
           "PUPPETEER_EXECUTABLE_PATH": chromium,
           # the tests run as root, where Chromium refuses its sandbox (as in a container)
           "DOCKER_CONTAINER": "true"}
    params = StdioServerParameters(command=command[0], args=command[1:], env=env, cwd=tmp_path)

    async def main() -> tuple[str, str]:
        with anyio.fail_after(180):
            async with stdio_client(params) as (read, write), \
                    ClientSession(read, write) as session:
                await session.initialize()
                opened = await session.call_tool("puppeteer_navigate", {"url": PAGE})
                assert not opened.is_error, opened
                ran = await session.call_tool(
                    "puppeteer_evaluate", {"script": "document.getElementById('x').textContent"})
                assert not ran.is_error, ran
                return (opened.content[0].text,  # type: ignore[union-attr]
                        ran.content[0].text)  # type: ignore[union-attr]

    opened, ran = anyio.run(main)
    assert opened == f"Navigated to {PAGE}"
    assert '"mcpyard"' in ran
