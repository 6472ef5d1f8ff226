"""An MCP server written the way most Python servers are: official SDK 2.x ``MCPServer``, its
tools asking the client through the back-channel (``ctx.session.create_message(...,
related_request_id=ctx.request_id)``, ``ctx.session.elicit_form(...)``), whatever era the
client speaks. It serves both eras (the SDK's default); only the handshake era has a
back-channel, so a client that talks 2026-07-28 to it gets ``-32600 ... no back-channel``.

``python backchannel_app.py [--port P]``: streamable HTTP at /mcp with ``--port``, else stdio.

Tools: ``sample(prompt)``, ``elicit(question)`` (form), ``elicit_url(url)``, ``roots``,
``progress`` (3 steps), ``log`` (one message per level), ``slow`` (waits until cancelled),
``echo(text)``; a prompt ``ask(topic)`` and a resource ``memo://backchannel/a``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import mcp_types as types
from mcp.server.mcpserver import Context, MCPServer
from mcp.shared.message import ServerMessageMetadata

LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")


def build() -> MCPServer:
    server = MCPServer("backchannel", version="1.0.0", log_level="WARNING")

    @server.tool()
    def echo(text: str) -> str:
        """Echo the text."""
        return f"echo:{text}"

    @server.tool()
    async def sample(prompt: str, ctx: Context) -> str:
        """Ask the client's model through the back-channel."""
        result = await ctx.session.create_message(
            messages=[types.SamplingMessage(role="user", content=types.TextContent(text=prompt))],
            max_tokens=50, related_request_id=ctx.request_id)
        content = result.content
        return "sampled:" + (content.text if isinstance(content, types.TextContent) else "?")

    @server.tool()
    async def elicit(question: str, ctx: Context) -> str:
        """Ask the client's user (form elicitation) through the back-channel."""
        schema = {"type": "object", "properties": {"answer": {"type": "string"}},
                  "required": ["answer"]}
        result = await ctx.session.elicit_form(question, schema,  # type: ignore[arg-type]
                                               related_request_id=ctx.request_id)
        return f"elicited:{result.action}:{(result.content or {}).get('answer')}"

    @server.tool()
    async def elicit_url(url: str, ctx: Context) -> str:
        """Send the client's user to a URL (URL elicitation) through the back-channel."""
        result = await ctx.session.elicit_url("Please open the page", url, "e-1",
                                              related_request_id=ctx.request_id)
        return f"elicited-url:{result.action}"

    @server.tool()
    async def roots(ctx: Context) -> str:
        """List the client's roots through the back-channel."""
        result = await ctx.session.send_request(
            types.ListRootsRequest(), types.ListRootsResult,
            metadata=ServerMessageMetadata(related_request_id=ctx.request_id))
        return "roots:" + ",".join(str(r.uri) for r in result.roots)

    @server.tool()
    async def progress(ctx: Context) -> str:
        """Report progress three times."""
        for step in (1, 2, 3):
            await ctx.report_progress(step, 3, f"step {step}")
        return "progressed"

    @server.tool()
    async def log(ctx: Context) -> str:
        """Send one log message per level."""
        for level in LEVELS:
            await ctx.log(level, f"log:{level}")  # type: ignore[arg-type]
        return "logged"

    @server.tool()
    async def slow(ctx: Context) -> str:
        """Report that it started (progress 0), then wait until cancelled."""
        await ctx.report_progress(0, 1, "started")
        await asyncio.sleep(3600)
        return "finished"

    @server.prompt()
    def ask(topic: str) -> str:
        """A question about a topic."""
        return f"What about {topic}?"

    @server.resource("memo://backchannel/a", name="a", mime_type="text/plain")
    def memo() -> str:
        return "memo a"

    return server


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int)
    args = ap.parse_args()
    server = build()
    if args.port is None:
        server.run("stdio")
    else:
        import uvicorn

        uvicorn.run(server.streamable_http_app(), host="127.0.0.1", port=args.port,
                    log_level="warning", access_log=False)


if __name__ == "__main__":
    sys.exit(main())
