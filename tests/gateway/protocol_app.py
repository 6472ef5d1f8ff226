"""A real MCP server (official SDK) with the protocol beyond tools, for the protocol tests.

``python protocol_app.py --port P --name N [--era handshake|both]``: streamable HTTP at /mcp;
``both`` (the SDK's default) serves the handshake and the 2026-07-28 eras, ``handshake`` refuses
2026-07-28 requests as a 2025 server does. Everything it returns
names ``N``, so a test can tell two instances (two upstream servers) apart.

- prompts ``greet(name)`` and ``embedded(uri)`` (an embedded resource);
- resources ``note://N/a`` (subscribable) and the template ``item://N/{id}``;
- completion of ``greet``'s ``name`` and of the template's ``id``;
- tools ``progress`` (3 steps), ``chatty`` (a log message per level), ``sample`` (sampling),
  ``elicit`` (elicitation), ``roots`` (roots/list), ``linked`` (a resource link and an embedded
  resource), ``region`` (an ``x-mcp-header`` argument), ``touch`` (sends resources/updated for
  ``note://N/a`` to the handshake sessions and the listen streams subscribed to it), ``slow``
  (waits until cancelled; ``cancelled`` then reports it), ``roots_changed`` (counts
  notifications/roots/list_changed).
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Annotated, Any

import mcp_types as types
import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.prompts.base import UserMessage
from mcp.server.subscriptions import ListenHandler
from mcp.shared.message import ServerMessageMetadata
from pydantic import Field


def _modern(ctx: Context) -> bool:
    return (ctx.protocol_version or "") >= "2026-07-28"


LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")


def build(name: str) -> MCPServer:
    server = MCPServer(f"protocol-{name}", version="1.0.0", log_level="WARNING")
    state: dict[str, Any] = {"cancelled": 0, "subscribed": set(), "sessions": {},
                             "listening": {}, "roots_changed": 0}

    @server.tool()
    async def progress(ctx: Context) -> str:
        """Report progress three times."""
        for step in (1, 2, 3):
            await ctx.report_progress(step, 3, f"step {step}")
        return f"{name}:done"

    @server.tool()
    async def chatty(ctx: Context) -> str:
        """Send one log message per level."""
        for level in LEVELS:
            await ctx.log(level, f"{name}:{level}")  # type: ignore[arg-type]
        return f"{name}:logged"

    # The three tools that need the client: in the handshake era they send it a request
    # mid-call; in 2026-07-28 they answer with an input-required result and read the answers
    # from the retry (with a requestState they check).

    @server.tool()
    async def sample(prompt: str, ctx: Context) -> str | types.InputRequiredResult:
        """Ask the client's model."""
        request = types.CreateMessageRequest(params=types.CreateMessageRequestParams(
            messages=[types.SamplingMessage(role="user", content=types.TextContent(text=prompt))],
            max_tokens=50))
        if _modern(ctx):
            answer = (ctx.input_responses or {}).get("llm")
            if ctx.request_state != "s1" or not isinstance(answer, types.CreateMessageResult):
                return types.InputRequiredResult(input_requests={"llm": request},
                                                 request_state="s1")
            result = answer
        else:
            result = await ctx.session.create_message(
                messages=request.params.messages, max_tokens=50,
                related_request_id=ctx.request_id)
        content = result.content
        text = content.text if isinstance(content, types.TextContent) else "?"
        return f"{name}:sampled:{text}"

    @server.tool()
    async def elicit(question: str, ctx: Context) -> str | types.InputRequiredResult:
        """Ask the client's user."""
        schema = {"type": "object", "properties": {"answer": {"type": "string"}},
                  "required": ["answer"]}
        if _modern(ctx):
            answer = (ctx.input_responses or {}).get("user")
            if not isinstance(answer, types.ElicitResult):
                return types.InputRequiredResult(input_requests={"user": types.ElicitRequest(
                    params=types.ElicitRequestFormParams(message=question,
                                                         requested_schema=schema))})
            result = answer
        else:
            result = await ctx.session.elicit_form(question, schema,
                                                   related_request_id=ctx.request_id)
        return f"{name}:elicited:{result.action}:{(result.content or {}).get('answer')}"

    @server.tool()
    async def roots(ctx: Context) -> str | types.InputRequiredResult:
        """List the client's roots."""
        if _modern(ctx):
            answer = (ctx.input_responses or {}).get("roots")
            if not isinstance(answer, types.ListRootsResult):
                return types.InputRequiredResult(input_requests={"roots": types.ListRootsRequest()})
            result = answer
        else:
            # ``list_roots()`` has no related_request_id (it goes on the standalone stream);
            # the SDK's send_request relates it to this call, as the other two do.
            result = await ctx.session.send_request(
                types.ListRootsRequest(), types.ListRootsResult,
                metadata=ServerMessageMetadata(related_request_id=ctx.request_id))
        return f"{name}:roots:" + ",".join(str(r.uri) for r in result.roots)

    @server.tool()
    def linked() -> list[types.ResourceLink | types.EmbeddedResource]:
        """A resource link and an embedded resource."""
        return [
            types.ResourceLink(uri=f"note://{name}/a", name="a"),
            types.EmbeddedResource(resource=types.TextResourceContents(
                uri=f"note://{name}/a", mime_type="text/plain", text=f"{name}:a")),
        ]

    @server.tool()
    async def touch(ctx: Context) -> str:
        """Announce that note a changed, to the sessions that subscribed to it (handshake
        era) and to the listen streams that name it (2026-07-28)."""
        uri = f"note://{name}/a"
        for session in list(state["sessions"].get(uri, ())):
            await session.send_resource_updated(uri)
        await ctx.notify_resource_updated(uri)
        subscribed = uri in state["subscribed"] or state["listening"].get(uri, 0) > 0
        return f"{name}:touched:{subscribed}"

    @server.tool()
    async def slow(ctx: Context) -> str:
        """Report that it started (progress 0), then wait until cancelled."""
        await ctx.report_progress(0, 1, "started")
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            state["cancelled"] += 1
            raise
        return "finished"

    @server.tool()
    def region(region: Annotated[str, Field(json_schema_extra={"x-mcp-header": "Region"})]
               ) -> str:
        """Echo an argument its clients mirror into the Mcp-Param-Region header (a 2026-07-28
        server checks that header, and Mcp-Name, against the body)."""
        return f"{name}:region={region}"

    @server.tool()
    def roots_changed() -> int:
        """How many notifications/roots/list_changed arrived (handshake era)."""
        return int(state["roots_changed"])

    @server.tool()
    def cancelled() -> int:
        """How many slow calls were cancelled."""
        return int(state["cancelled"])

    @server.prompt()
    def greet(who: str) -> str:
        """Greet someone."""
        return f"{name}: hello {who}"

    @server.prompt()
    def embedded(uri: str) -> list[UserMessage]:
        """A prompt carrying an embedded resource."""
        return [UserMessage(content=types.EmbeddedResource(resource=types.TextResourceContents(
            uri=uri, mime_type="text/plain", text="embedded")))]

    @server.resource(f"note://{name}/a", name="a", mime_type="text/plain")
    def note() -> str:
        return f"{name}:note a"

    @server.resource(f"item://{name}/{{id}}", name="item", mime_type="text/plain")
    def item(id: str) -> str:
        return f"{name}:item {id}"

    lowlevel = server._lowlevel_server

    async def on_subscribe(ctx: Any, params: types.SubscribeRequestParams) -> types.EmptyResult:
        state["subscribed"].add(str(params.uri))
        state["sessions"].setdefault(str(params.uri), []).append(ctx.session)
        return types.EmptyResult()

    async def on_unsubscribe(ctx: Any, params: types.UnsubscribeRequestParams
                             ) -> types.EmptyResult:
        state["subscribed"].discard(str(params.uri))
        state["sessions"].pop(str(params.uri), None)
        return types.EmptyResult()

    async def on_complete(ctx: Any, params: types.CompleteRequestParams) -> types.CompleteResult:
        ref = params.ref
        if isinstance(ref, types.PromptReference):
            values = [f"{name}:{ref.name}:{params.argument.value}"]
        else:
            values = [f"{name}:{ref.uri}:{params.argument.value}"]
        return types.CompleteResult(completion=types.Completion(values=values))

    listen = ListenHandler(server._subscriptions)

    async def on_listen(ctx: Any, params: types.SubscriptionsListenRequestParams) -> Any:
        """The SDK's own listen handler, counting the open streams that name each URI."""
        uris = list(params.notifications.resource_subscriptions or ())
        for uri in uris:
            state["listening"][uri] = state["listening"].get(uri, 0) + 1
        try:
            return await listen(ctx, params)
        finally:
            for uri in uris:
                state["listening"][uri] -= 1

    async def on_roots_changed(ctx: Any, params: types.NotificationParams) -> None:
        state["roots_changed"] += 1

    lowlevel.add_notification_handler("notifications/roots/list_changed",
                                      types.NotificationParams, on_roots_changed)
    lowlevel.add_request_handler("subscriptions/listen", types.SubscriptionsListenRequestParams,
                                 on_listen)
    lowlevel.add_request_handler("resources/subscribe", types.SubscribeRequestParams, on_subscribe)
    lowlevel.add_request_handler("resources/unsubscribe", types.UnsubscribeRequestParams,
                                 on_unsubscribe)
    lowlevel.add_request_handler("completion/complete", types.CompleteRequestParams, on_complete)
    return server


HANDSHAKE = {b"2024-11-05", b"2025-03-26", b"2025-06-18", b"2025-11-25"}


class HandshakeOnly:
    """What a server of the handshake era does with a 2026-07-28 request: a 400 (as the 2025
    SDKs answer an unsupported MCP-Protocol-Version), so a client falls back to initialize."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            version = dict(scope["headers"]).get(b"mcp-protocol-version")
            if version is not None and version not in HANDSHAKE:
                body = (b'{"jsonrpc":"2.0","id":null,"error":{"code":-32600,'
                        b'"message":"Bad Request: Unsupported protocol version"}}')
                await send({"type": "http.response.start", "status": 400,
                            "headers": [(b"content-type", b"application/json")]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--era", choices=["handshake", "both"], default="both",
                    help="handshake: refuse 2026-07-28 requests like a 2025 server")
    args = ap.parse_args()
    app: Any = build(args.name).streamable_http_app()
    if args.era == "handshake":
        app = HandshakeOnly(app)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
