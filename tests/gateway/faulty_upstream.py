"""A real MCP server (official SDK) that misbehaves on request, for the fault-injection tests.

``python faulty_upstream.py --port P``: streamable HTTP at /mcp. Its tools:

- ``echo(text)``: answers ``faulty:TEXT`` (it still works between faults);
- ``hang()``: never answers;
- ``slow(seconds)``: answers after ``seconds``;
- ``flood(count)``: sends ``count`` log notifications, then answers;
- ``flood_list_changed(count)``: sends ``count`` tools/list_changed notifications, then answers;
- ``lists()``: how many tools/list requests it answered (what a flood of list_changed cost);
- ``garbage()`` and ``cut()``: a wrapper below answers these calls itself, with bytes that
  are not JSON, or with half an SSE event and a closed connection.
"""

from __future__ import annotations

import argparse
import json

import anyio
import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from mcp_types import ToolListChangedNotification

LISTS = [0]


def build() -> MCPServer:
    server = MCPServer("test-faulty", version="1.0.0", log_level="WARNING")

    @server.tool()
    def echo(text: str) -> str:
        """Echo the text."""
        return f"faulty:{text}"

    @server.tool()
    async def hang() -> str:
        """Never answer."""
        await anyio.sleep_forever()
        return "unreachable"

    @server.tool()
    async def slow(seconds: float) -> str:
        """Answer after a while."""
        await anyio.sleep(seconds)
        return f"slow:{seconds}"

    @server.tool()
    async def flood(count: int, ctx: Context) -> str:
        """Send many log notifications, then answer."""
        for i in range(count):
            await ctx.info(f"line {i}")
        return f"flooded:{count}"

    @server.tool()
    async def flood_list_changed(count: int, ctx: Context) -> str:
        """Send many tools/list_changed notifications, then answer."""
        # on the call's own stream: a server may send any notification there
        for _ in range(count):
            await ctx.session.send_notification(ToolListChangedNotification(),
                                                related_request_id=ctx.request_id)
        return f"changed:{count}"

    @server.tool()
    def lists() -> int:
        """How many tools/list requests this server has answered."""
        return LISTS[0]

    @server.tool()
    def garbage() -> str:
        """Answered by the wrapper with bytes that are not JSON."""
        return "not reached"

    @server.tool()
    def cut() -> str:
        """Answered by the wrapper with half an event, then a closed connection."""
        return "not reached"

    return server


class _Faults:
    """Answers tools/call of ``garbage`` and ``cut`` itself; passes everything else on."""

    def __init__(self, app: object) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)  # type: ignore[operator]
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        try:
            request = json.loads(body)
        except ValueError:
            request = None
        name = (request.get("params") or {}).get("name") if isinstance(request, dict) \
            and request.get("method") == "tools/call" else None
        if isinstance(request, dict) and request.get("method") == "tools/list":
            LISTS[0] += 1
        if name == "garbage":
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": b"\x00\xffnot json {{{"})
            return
        if name == "cut":
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"text/event-stream")]})
            await send({"type": "http.response.body", "more_body": True,
                        "body": b'event: message\ndata: {"jsonrpc": "2.0", "id": '})
            raise RuntimeError("connection cut on purpose")  # uvicorn drops the connection

        sent = False

        async def replay():  # type: ignore[no-untyped-def]
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)  # type: ignore[operator]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args()
    uvicorn.run(_Faults(build().streamable_http_app()),  # type: ignore[arg-type]
                host="127.0.0.1", port=args.port, log_level="critical", access_log=False)


if __name__ == "__main__":
    main()
