"""An official SDK 2.x server (both eras) with its client work written in both styles: the
2026-07-28 style, where a tool or prompt returns an ``InputRequiredResult`` and reads the answers
from the retried request (``greet``, the prompt ``briefing``; the SDK refuses to send such a
result in the handshake era), and the back-channel style (``sample``, which has a back-channel
only in the handshake era). ``runs`` says how many times ``sample`` started, so a test sees
what ran twice, and ``failed`` what its questions got instead of an answer.

``python mixed_app.py --port P``: streamable HTTP at /mcp.
"""

from __future__ import annotations

import argparse
import sys

import mcp_types as types
import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.prompts.base import UserMessage

NAME_SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}


def _elicit(message: str) -> types.ElicitRequest:
    return types.ElicitRequest(
        params=types.ElicitRequestFormParams(message=message, requested_schema=NAME_SCHEMA))


def _name(ctx: Context, key: str) -> str | None:
    answer = (ctx.input_responses or {}).get(key)
    if isinstance(answer, types.ElicitResult) and answer.action == "accept":
        name = (answer.content or {}).get("name")
        return name if isinstance(name, str) else None
    return None


def build() -> MCPServer:
    server = MCPServer("mixed", version="1.0.0", log_level="WARNING")
    started = {"sample": 0}
    failures: list[str] = []

    @server.tool()
    async def greet(ctx: Context) -> types.CallToolResult | types.InputRequiredResult:
        """Ask the user's name in an input-required result, with a requestState."""
        name = _name(ctx, "user_name")
        if name is None or ctx.request_state != "asked-name":
            return types.InputRequiredResult(
                input_requests={"user_name": _elicit("What is your name?")},
                request_state="asked-name")
        return types.CallToolResult(content=[types.TextContent(text=f"Hello, {name}!")])

    @server.tool()
    async def sample(prompt: str, ctx: Context) -> str:
        """Ask the client's model through the back-channel."""
        started["sample"] += 1
        try:
            result = await ctx.session.create_message(
                messages=[types.SamplingMessage(role="user",
                                                content=types.TextContent(text=prompt))],
                max_tokens=50, related_request_id=ctx.request_id)
        except Exception as exc:
            failures.append(str(exc))
            raise
        content = result.content
        return "sampled:" + (content.text if isinstance(content, types.TextContent) else "?")

    @server.tool()
    def runs() -> str:
        """How many times sample started."""
        return str(started["sample"])

    @server.tool()
    def failed() -> str:
        """What sample's questions got instead of an answer, one line each."""
        return "\n".join(failures)

    @server.prompt()
    async def briefing(ctx: Context) -> list[UserMessage] | types.InputRequiredResult:
        """A prompt that needs the user's name first (an input-required result)."""
        name = _name(ctx, "who")
        if name is None:
            return types.InputRequiredResult(input_requests={"who": _elicit("Who is it for?")})
        return [UserMessage(content=types.TextContent(text=f"Brief {name}."))]

    return server


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args()
    uvicorn.run(build().streamable_http_app(), host="127.0.0.1", port=args.port,
                log_level="warning", access_log=False)


if __name__ == "__main__":
    sys.exit(main())
