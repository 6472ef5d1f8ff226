"""The upstream the MCP conformance suite is run against, directly or through the gateway.

Every tool, resource, resource template and prompt below is one that a server scenario of
`@modelcontextprotocol/conformance` (0.1.16 and 0.2.0-alpha.12) calls, with the exact
names, arguments and results the scenario checks; `tools/conformance/SCENARIOS.md` maps
each scenario to what it uses here. Written with the official Python SDK, so that every
failure seen through the gateway is the gateway's, not the fixture's.

    python tests/conformance/fixture_server.py --port 3001 [--stateless] [--json-response]

serves streamable HTTP at `/mcp`, stateful by default, both protocol eras (the SDK picks
the era per request: `initialize` handshakes up to 2025-11-25, per-request `_meta` for
2026-07-28).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import json
from typing import Annotated, Any

import mcp_types as types
import uvicorn
from mcp.server.caching import CacheHint
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.prompts.base import UserMessage
from mcp.server.streamable_http import EventCallback, EventMessage, EventStore
from mcp.shared.exceptions import MCPError
from pydantic import Field

# 1x1 red PNG and a minimal WAV, as the suite's own reference server uses.
IMAGE_B64 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJg"
    "gg=="
)
AUDIO_B64 = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA="

# First revision whose server-to-client questions travel inside an InputRequiredResult.
MODERN = "2026-07-28"

# SEP-1613 / SEP-2106: tools/list must hand this schema out untouched.
JSON_SCHEMA_2020_12 = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {
        "address": {
            "$anchor": "addressDef",
            "type": "object",
            "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
        }
    },
    "properties": {
        "name": {"type": "string"},
        "address": {"$ref": "#/$defs/address"},
        "contactMethod": {"type": "string", "enum": ["phone", "email"]},
        "phone": {"type": "string"},
        "email": {"type": "string"},
    },
    "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
    "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
    "then": {"required": ["phone"]},
    "else": {"required": ["email"]},
    "additionalProperties": False,
}

SEP1034_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "description": "User name", "default": "John Doe"},
        "age": {"type": "integer", "description": "User age", "default": 30},
        "score": {"type": "number", "description": "User score", "default": 95.5},
        "status": {
            "type": "string",
            "description": "User status",
            "enum": ["active", "inactive", "pending"],
            "default": "active",
        },
        "verified": {"type": "boolean", "description": "Verification status", "default": True},
    },
    "required": [],
}

SEP1330_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "untitledSingle": {
            "type": "string",
            "description": "Select one option",
            "enum": ["option1", "option2", "option3"],
        },
        "titledSingle": {
            "type": "string",
            "description": "Select one option with titles",
            "oneOf": [
                {"const": "value1", "title": "First Option"},
                {"const": "value2", "title": "Second Option"},
                {"const": "value3", "title": "Third Option"},
            ],
        },
        "legacyEnum": {
            "type": "string",
            "description": "Select one option (legacy)",
            "enum": ["opt1", "opt2", "opt3"],
            "enumNames": ["Option One", "Option Two", "Option Three"],
        },
        "untitledMulti": {
            "type": "array",
            "description": "Select multiple options",
            "minItems": 1,
            "maxItems": 3,
            "items": {"type": "string", "enum": ["option1", "option2", "option3"]},
        },
        "titledMulti": {
            "type": "array",
            "description": "Select multiple options with titles",
            "minItems": 1,
            "maxItems": 3,
            "items": {
                "anyOf": [
                    {"const": "value1", "title": "First Choice"},
                    {"const": "value2", "title": "Second Choice"},
                    {"const": "value3", "title": "Third Choice"},
                ]
            },
        },
    },
    "required": [],
}


class MemoryEventStore(EventStore):
    """Keeps every SSE event so a client that reconnects with Last-Event-ID gets the rest."""

    def __init__(self) -> None:
        self._events: list[tuple[str, str, types.JSONRPCMessage | None]] = []
        self._ids = itertools.count(1)

    async def store_event(self, stream_id: str, message: types.JSONRPCMessage | None) -> str:
        event_id = str(next(self._ids))
        self._events.append((stream_id, event_id, message))
        return event_id

    async def replay_events_after(
        self, last_event_id: str, send_callback: EventCallback
    ) -> str | None:
        stream = next((s for s, e, _ in self._events if e == last_event_id), None)
        if stream is None:
            return None
        for s, e, message in self._events:
            if s == stream and int(e) > int(last_event_id) and message is not None:
                await send_callback(EventMessage(message, e))
        return stream


# ---- helpers for the two eras ---------------------------------------------------------


def _modern(ctx: Context) -> bool:
    return (ctx.protocol_version or "") >= MODERN


def _elicit(message: str, schema: dict[str, Any]) -> types.ElicitRequest:
    return types.ElicitRequest(
        params=types.ElicitRequestFormParams(message=message, requested_schema=schema)
    )


def _sample(text: str, max_tokens: int) -> types.CreateMessageRequest:
    return types.CreateMessageRequest(
        params=types.CreateMessageRequestParams(
            messages=[types.SamplingMessage(role="user", content=types.TextContent(text=text))],
            max_tokens=max_tokens,
        )
    )


def _roots() -> types.ListRootsRequest:
    return types.ListRootsRequest()


def _ask(requests: dict[str, Any], state: str | None = None) -> types.InputRequiredResult:
    return types.InputRequiredResult(input_requests=requests, request_state=state)


def _answers(ctx: Context) -> dict[str, Any]:
    return dict(ctx.input_responses or {})


def _accepted(answer: Any) -> dict[str, Any] | None:
    if isinstance(answer, types.ElicitResult) and answer.action == "accept":
        return dict(answer.content or {})
    return None


def _text(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=text)])


ToolResult = types.CallToolResult | types.InputRequiredResult


def build_server() -> MCPServer:
    server = MCPServer(
        name="mcpyard-conformance-fixture",
        version="1.0.0",
        # SEP-2549 asks every cacheable result for ttlMs and cacheScope.
        cache_hints={
            method: CacheHint(ttl_ms=0, scope="private")
            for method in (
                "tools/list",
                "prompts/list",
                "resources/list",
                "resources/templates/list",
                "resources/read",
            )
        },
    )
    subscribed: set[str] = set()

    # ---- content tools (tools-call-*) -----------------------------------------------

    @server.tool(description="Tests simple text content response")
    def test_simple_text() -> str:
        return "This is a simple text response for testing."

    @server.tool(description="Tests image content response")
    def test_image_content() -> list[types.ImageContent]:
        return [types.ImageContent(data=IMAGE_B64, mime_type="image/png")]

    @server.tool(description="Tests audio content response")
    def test_audio_content() -> list[types.AudioContent]:
        return [types.AudioContent(data=AUDIO_B64, mime_type="audio/wav")]

    @server.tool(description="Tests embedded resource content response")
    def test_embedded_resource() -> list[types.EmbeddedResource]:
        return [
            types.EmbeddedResource(
                resource=types.TextResourceContents(
                    uri="test://embedded-resource",
                    mime_type="text/plain",
                    text="This is an embedded resource content.",
                )
            )
        ]

    @server.tool(description="Tests response with multiple content types (text, image, resource)")
    def test_multiple_content_types() -> list[
        types.TextContent | types.ImageContent | types.EmbeddedResource
    ]:
        return [
            types.TextContent(text="Multiple content types test:"),
            types.ImageContent(data=IMAGE_B64, mime_type="image/png"),
            types.EmbeddedResource(
                resource=types.TextResourceContents(
                    uri="test://mixed-content-resource",
                    mime_type="application/json",
                    text=json.dumps({"test": "data", "value": 123}),
                )
            ),
        ]

    @server.tool(description="Tests tool that emits log messages during execution")
    async def test_tool_with_logging(ctx: Context) -> str:
        await ctx.info("Tool execution started")
        await asyncio.sleep(0.05)
        await ctx.info("Tool processing data")
        await asyncio.sleep(0.05)
        await ctx.info("Tool execution completed")
        return "Tool with logging executed successfully"

    @server.tool(
        description="Emits a log message; with 2026-07-28 only when _meta asks for a level"
    )
    async def test_logging_tool(ctx: Context) -> str:
        await ctx.info("test_logging_tool ran")
        return "logged"

    @server.tool(description="Tests tool that reports progress notifications")
    async def test_tool_with_progress(ctx: Context) -> str:
        for step in (0, 50, 100):
            await ctx.report_progress(
                progress=step, total=100, message=f"Completed step {step} of 100"
            )
            if step < 100:
                await asyncio.sleep(0.05)
        meta = ctx.request_context.meta
        token = (
            meta.get("progressToken")
            if isinstance(meta, dict)
            else getattr(meta, "progress_token", None)
        )
        return str(token if token is not None else 0)

    @server.tool(description="Tests error response handling")
    def test_error_handling() -> str:
        raise RuntimeError("This tool intentionally returns an error for testing")

    @server.tool(
        description="Closes the SSE stream mid-call; the result follows the reconnect (SEP-1699)"
    )
    async def test_reconnection(ctx: Context) -> str:
        await ctx.info("Before disconnect")
        await ctx.close_sse_stream()
        await asyncio.sleep(0.2)
        await ctx.info("After reconnect")
        return "Reconnection test completed"

    # ---- server-to-client requests (handshake-era scenarios) --------------------------
    # The suite asks these in the handshake era; in 2026-07-28 (a client of that era, or a
    # gateway speaking it) the question travels in an InputRequiredResult and the answer
    # comes with the retry, as an SDK 2.x server serving both eras writes it. The
    # input-required tools further down are of 2026-07-28 only (the SDK refuses to send
    # their result in the handshake era), so a gateway reaches them in that era: under
    # `protocolEra: auto` mcpyard sends a 2026-07-28 client's calls of a server of both eras
    # in 2026-07-28.

    @server.tool(description="Tests server-initiated sampling (LLM completion request)")
    async def test_sampling(
        prompt: Annotated[str, Field(description="The prompt to send to the LLM")], ctx: Context
    ) -> str | types.InputRequiredResult:
        if _modern(ctx):
            answer = _answers(ctx).get("llm")
            if not isinstance(answer, types.CreateMessageResult):
                return _ask({"llm": _sample(prompt, 100)})
            result = answer
        else:
            result = await ctx.session.create_message(
                messages=[
                    types.SamplingMessage(role="user", content=types.TextContent(text=prompt))
                ],
                max_tokens=100,
                related_request_id=ctx.request_id,
            )
        content = result.content
        text = content.text if isinstance(content, types.TextContent) else "No response"
        return f"LLM response: {text}"

    async def _elicit_now(
        ctx: Context, message: str, schema: dict[str, Any], label: str
    ) -> str | types.InputRequiredResult:
        if _modern(ctx):
            answer = _answers(ctx).get("user")
            if not isinstance(answer, types.ElicitResult):
                return _ask({"user": _elicit(message, schema)})
            result = answer
        else:
            result = await ctx.session.elicit_form(
                message, schema, related_request_id=ctx.request_id
            )
        return f"{label}: action={result.action}, content={json.dumps(result.content or {})}"

    @server.tool(description="Tests server-initiated elicitation (user input request)")
    async def test_elicitation(
        message: Annotated[str, Field(description="The message to show the user")], ctx: Context
    ) -> str | types.InputRequiredResult:
        schema = {
            "type": "object",
            "properties": {
                "username": {"type": "string", "description": "User's response"},
                "email": {"type": "string", "description": "User's email address"},
            },
            "required": ["username", "email"],
        }
        return await _elicit_now(ctx, message, schema, "User response")

    @server.tool(description="Tests elicitation with default values per SEP-1034")
    async def test_elicitation_sep1034_defaults(ctx: Context) -> str | types.InputRequiredResult:
        return await _elicit_now(
            ctx,
            "Please review and update the form fields with defaults",
            SEP1034_SCHEMA,
            "Elicitation completed",
        )

    @server.tool(description="Tests elicitation with enum schema improvements per SEP-1330")
    async def test_elicitation_sep1330_enums(ctx: Context) -> str | types.InputRequiredResult:
        return await _elicit_now(
            ctx,
            "Please select options from the enum fields",
            SEP1330_SCHEMA,
            "Elicitation completed",
        )

    # ---- modern era: stateless probes (server-stateless) -------------------------------

    @server.tool(
        description="Needs the client's sampling capability; rejects with -32021 without it"
    )
    async def test_missing_capability(ctx: Context) -> ToolResult:
        caps = ctx.client_capabilities
        if caps is None or caps.sampling is None:
            raise MCPError(
                types.MISSING_REQUIRED_CLIENT_CAPABILITY,
                "this tool needs the client's sampling capability",
                {"requiredCapabilities": {"sampling": {}}},
            )
        if _answers(ctx).get("probe") is not None:
            return _text("sampled")
        return _ask({"probe": _sample("probe", 10)})

    @server.tool(
        description="Asks on the request's own stream: an InputRequiredResult, never a request"
    )
    async def test_streaming_elicitation(ctx: Context) -> ToolResult:
        schema = {
            "type": "object",
            "properties": {"answer": {"type": "string"}},
            "required": ["answer"],
        }
        if not _modern(ctx):
            return _text(
                await _elicit_now(ctx, "Streaming question", schema, "Elicitation completed")
            )
        if (answer := _accepted(_answers(ctx).get("answer"))) is not None:
            return _text(f"answer={answer.get('answer')}")
        return _ask({"answer": _elicit("Streaming question", schema)})

    @server.tool(description="Changes the tool list (notifications/tools/list_changed)")
    async def test_trigger_tool_change(ctx: Context) -> str:
        await ctx.notify_tools_changed()
        return "tools changed"

    @server.tool(description="Changes the prompt list (notifications/prompts/list_changed)")
    async def test_trigger_prompt_change(ctx: Context) -> str:
        await ctx.notify_prompts_changed()
        return "prompts changed"

    # ---- modern era: input-required results (SEP-2322) --------------------------------

    name_schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}},
        "required": ["name"],
    }

    @server.tool(description="One elicitation carried in an InputRequiredResult")
    async def test_input_required_result_elicitation(ctx: Context) -> ToolResult:
        answer = _accepted(_answers(ctx).get("user_name"))
        if answer is not None and isinstance(answer.get("name"), str):
            return _text(f"Hello, {answer['name']}!")
        return _ask({"user_name": _elicit("What is your name?", name_schema)})

    @server.tool(description="One sampling request carried in an InputRequiredResult")
    async def test_input_required_result_sampling(ctx: Context) -> ToolResult:
        answer = _answers(ctx).get("capital_question")
        if isinstance(answer, types.CreateMessageResult | types.CreateMessageResultWithTools):
            content = answer.content
            text = content.text if isinstance(content, types.TextContent) else "(no text)"
            return _text(f"LLM response: {text}")
        return _ask({"capital_question": _sample("What is the capital of France?", 100)})

    @server.tool(description="One roots/list request carried in an InputRequiredResult")
    async def test_input_required_result_list_roots(ctx: Context) -> ToolResult:
        answer = _answers(ctx).get("client_roots")
        if isinstance(answer, types.ListRootsResult):
            return _text("Roots: " + ", ".join(str(root.uri) for root in answer.roots))
        return _ask({"client_roots": _roots()})

    @server.tool(description="requestState round-trip")
    async def test_input_required_result_request_state(ctx: Context) -> ToolResult:
        answer = _accepted(_answers(ctx).get("confirm"))
        if answer is not None and ctx.request_state == "awaiting-confirm":
            return _text(f"state-ok: confirmed={answer.get('ok')}")
        schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
        return _ask({"confirm": _elicit("Please confirm", schema)}, "awaiting-confirm")

    @server.tool(description="Elicitation, sampling and roots/list in one InputRequiredResult")
    async def test_input_required_result_multiple_inputs(ctx: Context) -> ToolResult:
        answers = _answers(ctx)
        wanted = {
            "user_name": _elicit("What is your name?", name_schema),
            "greeting": _sample("Generate a greeting", 50),
            "client_roots": _roots(),
        }
        missing = {key: request for key, request in wanted.items() if key not in answers}
        if not missing and ctx.request_state == "awaiting-three":
            return _text(f"all inputs received: {', '.join(sorted(wanted))}")
        return _ask(missing or wanted, "awaiting-three")

    @server.tool(description="Two rounds of elicitation with an evolving requestState")
    async def test_input_required_result_multi_round(ctx: Context) -> ToolResult:
        answers, state = _answers(ctx), ctx.request_state
        if state and state.startswith("round-2:") and (color := _accepted(answers.get("step2"))):
            return _text(f"{state.removeprefix('round-2:')} likes {color.get('color')}")
        if state == "round-1" and (name := _accepted(answers.get("step1"))):
            color_schema = {
                "type": "object",
                "properties": {"color": {"type": "string"}},
                "required": ["color"],
            }
            return _ask(
                {"step2": _elicit("Step 2: What is your favorite color?", color_schema)},
                f"round-2:{name.get('name')}",
            )
        return _ask({"step1": _elicit("Step 1: What is your name?", name_schema)}, "round-1")

    @server.tool(description="Its requestState is sealed by the SDK; a tampered one is rejected")
    async def test_input_required_result_tampered_state(ctx: Context) -> ToolResult:
        if (
            ctx.request_state == "untampered"
            and _accepted(_answers(ctx).get("confirm")) is not None
        ):
            return _text("state verified")
        schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
        return _ask({"confirm": _elicit("Please confirm", schema)}, "untampered")

    @server.tool(description="Asks only for what the client declared it can answer")
    async def test_input_required_result_capabilities(ctx: Context) -> ToolResult:
        caps = ctx.client_capabilities or types.ClientCapabilities()
        answers = _answers(ctx)
        wanted: dict[str, Any] = {}
        if caps.elicitation is not None and "user_name" not in answers:
            wanted["user_name"] = _elicit("What is your name?", name_schema)
        if caps.sampling is not None and "greeting" not in answers:
            wanted["greeting"] = _sample("Generate a greeting", 50)
        if caps.roots is not None and "client_roots" not in answers:
            wanted["client_roots"] = _roots()
        return _ask(wanted) if wanted else _text(f"answered: {', '.join(sorted(answers))}")

    # ---- JSON Schema 2020-12 and x-mcp-header ------------------------------------------

    @server.tool(
        description="Tool with JSON Schema 2020-12 features for conformance testing (SEP-1613)"
    )
    def json_schema_2020_12_tool(
        name: str | None = None,
        address: dict[str, Any] | None = None,
        contactMethod: str | None = None,
        phone: str | None = None,
        email: str | None = None,
    ) -> str:
        args = {
            "name": name,
            "address": address,
            "contactMethod": contactMethod,
            "phone": phone,
            "email": email,
        }
        return "JSON Schema 2020-12 tool called with: " + json.dumps(
            {k: v for k, v in args.items() if v is not None}
        )

    # The SDK derives inputSchema from the signature; the scenario needs the raw 2020-12
    # document verbatim, so the listed schema is replaced (arguments are still validated
    # by the signature's model).
    raw_schema_tool = server._tool_manager.get_tool("json_schema_2020_12_tool")
    assert raw_schema_tool is not None
    raw_schema_tool.parameters = JSON_SCHEMA_2020_12

    @server.tool(
        description="Echoes a value the client mirrors into the Mcp-Param-Region header (SEP-2243)"
    )
    def test_headers(
        region: Annotated[str, Field(json_schema_extra={"x-mcp-header": "Region"})],
    ) -> str:
        return f"region={region}"

    # ---- resources ---------------------------------------------------------------------

    @server.resource(
        "test://static-text",
        name="static-text",
        title="Static Text Resource",
        description="A static text resource for testing",
        mime_type="text/plain",
    )
    def static_text() -> str:
        return "This is the content of the static text resource."

    @server.resource(
        "test://static-binary",
        name="static-binary",
        title="Static Binary Resource",
        description="A static binary resource (image) for testing",
        mime_type="image/png",
    )
    def static_binary() -> bytes:
        return base64.b64decode(IMAGE_B64)

    @server.resource(
        "test://template/{id}/data",
        name="template",
        title="Resource Template",
        description="A resource template with parameter substitution",
        mime_type="application/json",
    )
    def template(id: str) -> str:
        return json.dumps({"id": id, "templateTest": True, "data": f"Data for ID: {id}"})

    @server.resource(
        "test://watched-resource",
        name="watched-resource",
        title="Watched Resource",
        description="A resource that can be subscribed to",
        mime_type="text/plain",
    )
    def watched() -> str:
        return "Watched resource content"

    lowlevel = server._lowlevel_server

    async def on_subscribe(ctx: Any, params: types.SubscribeRequestParams) -> types.EmptyResult:
        subscribed.add(str(params.uri))
        return types.EmptyResult()

    async def on_unsubscribe(ctx: Any, params: types.UnsubscribeRequestParams) -> types.EmptyResult:
        subscribed.discard(str(params.uri))
        return types.EmptyResult()

    async def on_set_level(ctx: Any, params: types.SetLevelRequestParams) -> types.EmptyResult:
        return types.EmptyResult()

    async def on_complete(ctx: Any, params: types.CompleteRequestParams) -> types.CompleteResult:
        return types.CompleteResult(completion=types.Completion(values=[], total=0, has_more=False))

    # MCPServer has no decorators for these four; the low-level server takes them as-is.
    lowlevel.add_request_handler("resources/subscribe", types.SubscribeRequestParams, on_subscribe)
    lowlevel.add_request_handler(
        "resources/unsubscribe", types.UnsubscribeRequestParams, on_unsubscribe
    )
    lowlevel.add_request_handler("logging/setLevel", types.SetLevelRequestParams, on_set_level)
    lowlevel.add_request_handler("completion/complete", types.CompleteRequestParams, on_complete)

    # ---- prompts -----------------------------------------------------------------------

    @server.prompt(title="Simple Test Prompt", description="A simple prompt without arguments")
    def test_simple_prompt() -> list[UserMessage]:
        return [UserMessage(content=types.TextContent(text="This is a simple prompt for testing."))]

    @server.prompt(title="Prompt With Arguments", description="A prompt with required arguments")
    def test_prompt_with_arguments(
        arg1: Annotated[str, Field(description="First test argument")],
        arg2: Annotated[str, Field(description="Second test argument")],
    ) -> list[UserMessage]:
        return [
            UserMessage(
                content=types.TextContent(
                    text=f"Prompt with arguments: arg1='{arg1}', arg2='{arg2}'"
                )
            )
        ]

    @server.prompt(
        title="Prompt With Embedded Resource",
        description="A prompt that includes an embedded resource",
    )
    def test_prompt_with_embedded_resource(
        resourceUri: Annotated[str, Field(description="URI of the resource to embed")],
    ) -> list[UserMessage]:
        return [
            UserMessage(
                content=types.EmbeddedResource(
                    resource=types.TextResourceContents(
                        uri=resourceUri,
                        mime_type="text/plain",
                        text="Embedded resource content for testing.",
                    )
                )
            ),
            UserMessage(
                content=types.TextContent(text="Please process the embedded resource above.")
            ),
        ]

    @server.prompt(title="Prompt With Image", description="A prompt that includes image content")
    def test_prompt_with_image() -> list[UserMessage]:
        return [
            UserMessage(content=types.ImageContent(data=IMAGE_B64, mime_type="image/png")),
            UserMessage(content=types.TextContent(text="Please analyze the image above.")),
        ]

    @server.prompt(description="A prompt that needs one elicited answer first (SEP-2322)")
    async def test_input_required_result_prompt(
        ctx: Context,
    ) -> list[UserMessage] | types.InputRequiredResult:
        answer = _accepted(_answers(ctx).get("user_context"))
        if answer is None:
            schema = {
                "type": "object",
                "properties": {"context": {"type": "string"}},
                "required": ["context"],
            }
            return _ask({"user_context": _elicit("What context should the prompt use?", schema)})
        return [
            UserMessage(
                content=types.TextContent(text=f"Use this context: {answer.get('context')}")
            )
        ]

    return server


class TrimHeaderWhitespace:
    """ASGI middleware: header values without their surrounding whitespace.

    RFC 9110 section 5.5: optional whitespace around a field value is not part of it.
    uvicorn passes it through and the SDK compares `Mcp-Name` verbatim, so without this the
    fixture fails `sep-2243-server-accepts-whitespace-header-value` - and any HTTP proxy in
    front of it (the adapter, aiohttp) trims, which would make "direct" and "through the
    adapter" differ for a reason that is the fixture's, not the path's.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope = dict(scope, headers=[(k, v.strip(b" \t")) for k, v in scope["headers"]])
        await self.app(scope, receive, send)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3001)
    parser.add_argument("--stateless", action="store_true", help="no Mcp-Session-Id")
    parser.add_argument("--json-response", action="store_true", help="JSON instead of SSE replies")
    args = parser.parse_args()
    app = build_server().streamable_http_app(
        stateless_http=args.stateless,
        json_response=args.json_response,
        event_store=None if args.stateless else MemoryEventStore(),
        retry_interval=100,  # ms; server-sse-polling waits for the client to come back
        host=args.host,
    )
    uvicorn.run(TrimHeaderWhitespace(app), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
