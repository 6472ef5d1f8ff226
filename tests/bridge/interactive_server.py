"""A stdio fixture server for the bridge tests: progress, logs, elicitation and a grandchild.

``python tests/bridge/interactive_server.py`` serves over stdio. Tools: ``steps(n)`` reports
progress n times and logs; ``ask(question)`` elicits an answer from the client; ``pid()`` is the
server's process id; ``spawn_grandchild()`` starts a long-running grandchild and returns its pid.
"""

from __future__ import annotations

import os
import subprocess
import sys

from mcp.server.mcpserver import Context, MCPServer
from pydantic import BaseModel


class Answer(BaseModel):
    answer: str


def build() -> MCPServer:
    server = MCPServer("interactive-fixture")

    @server.tool()
    async def steps(n: int, ctx: Context) -> str:
        for i in range(n):
            await ctx.report_progress(i + 1, n, f"step {i + 1}")
        await ctx.info(f"did {n} steps")
        return f"{n} steps"

    @server.tool()
    async def ask(question: str, ctx: Context) -> str:
        result = await ctx.elicit(question, Answer)
        if result.action == "accept":
            return f"answer: {result.data.answer}"
        return f"no answer: {result.action}"

    @server.tool()
    def pid() -> int:
        return os.getpid()

    @server.tool()
    def spawn_grandchild() -> int:
        child = subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(600)"], stdin=subprocess.DEVNULL
        )
        return child.pid

    return server


if __name__ == "__main__":
    build().run()
