"""The interop matrix: every (client, upstream) pair, each feature tried directly and through
the gateway, results compared with the names (``slug__``, ``mcpyard://slug/``) and the side's
own folder taken out.

A cell is ``pass`` (worked, and through the gateway gave what the direct run gave), ``fail``
(with why) or ``-`` (not offered: the server has no such feature, or the client cannot take
part in it). The rule the test enforces: every cell that passes directly passes through the
gateway.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp_types as types
from mcp import Client, StdioServerParameters
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from servers import FEATURES, NODE, NPM, Upstream

CLIENTS = ("sdk-auto", "sdk-2026-07-28", "sdk-legacy", "sdk-sse", "inspector-cli")
"""The matrix's columns: the official SDK 2.x ``Client`` in its three modes, the SDK's legacy
HTTP+SSE client (its direct run talks to the server's own transport), the Inspector CLI."""
MODES = {"sdk-auto": "auto", "sdk-2026-07-28": "2026-07-28", "sdk-legacy": "legacy",
         "sdk-sse": "legacy"}
NOT_OFFERED = "-"
CALL_TIMEOUT = 60


@dataclass
class Outcome:
    ok: bool | None
    """None: not offered."""
    detail: Any = None
    """What a pass produced (compared across sides), or why it failed."""


@dataclass
class Side:
    """Where one side of a cell connects: a URL (gateway, HTTP server) or a stdio command."""

    url: str | None = None
    token: str | None = None
    command: list[str] | None = None
    env: dict[str, str] = field(default_factory=dict)
    folder: Path | None = None
    slug: str | None = None
    """The server's slug when the side is the gateway (names carry it)."""
    sse_url: str | None = None


_HINTS = ("cacheScope", "ttlMs")
"""Cache hints of 2026-07-28 results: the gateway sets its own (every list it serves is
filtered per member: private), as the spec asks of whoever serves the result."""
SERVER_INFO = "io.modelcontextprotocol/serverInfo"


def _plain(value: Any) -> Any:
    """Without what names the answering server (the gateway stamps its own serverInfo) and
    without cache hints."""
    if isinstance(value, dict):
        out = {k: _plain(v) for k, v in value.items() if k not in _HINTS}
        meta = out.get("_meta")
        if isinstance(meta, dict):
            meta = {k: v for k, v in meta.items() if k != SERVER_INFO}
            if meta:
                out["_meta"] = meta
            else:
                del out["_meta"]
        return out
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def mask(value: Any, side: Side) -> Any:
    """A result as comparable across sides: names without the gateway's prefixes, the side's
    folder as ``<root>``, commit hashes as ``<sha>``, numbers as 0 (times, ids, sizes)."""
    return _mask(_plain(value), side)


def _mask(value: Any, side: Side) -> Any:
    if isinstance(value, dict):
        return {k: _mask(v, side) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [_mask(v, side) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return 0
    text = str(value)
    if side.slug is not None:
        text = text.replace(f"mcpyard://{side.slug}/", "").replace(f"{side.slug}__", "")
    if side.folder is not None:
        text = text.replace(str(side.folder), "<root>")
    text = re.sub(r"\b(?=[0-9]*[a-f])[0-9a-f]{7,40}\b", "<sha>", text)
    return re.sub(r"\d+", "0", text)


def schema_args(schema: dict[str, Any]) -> dict[str, Any]:
    """Valid arguments from a tool's input schema: its required properties, each the simplest
    value of its type (first enum value, minimum, one item)."""
    props = schema.get("properties") or {}
    return {k: _value(props.get(k) or {}) for k in schema.get("required") or ()}


def _value(schema: dict[str, Any]) -> Any:
    if "enum" in schema:
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind in ("number", "integer"):
        return schema.get("minimum", 1)
    if kind == "boolean":
        return False
    if kind == "array":
        return [_value(schema.get("items") or {})]
    if kind == "object":
        return schema_args(schema)
    if "anyOf" in schema:
        return _value(next(s for s in schema["anyOf"] if s.get("type") != "null"))
    return "x"


# -- what the clients answer when a server asks ----------------------------------------------

class Asked:
    """The client's side of server-to-client requests (each records that it was asked)."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def sampling(self, context: Any, params: types.CreateMessageRequestParams
                       ) -> types.CreateMessageResult:
        self.seen.append("sampling")
        return types.CreateMessageResult(role="assistant", model="m",
                                         content=types.TextContent(text="sampled"))

    async def elicitation(self, context: Any, params: types.ElicitRequestParams
                          ) -> types.ElicitResult:
        if isinstance(params, types.ElicitRequestURLParams):
            self.seen.append("elicitation-url")
            return types.ElicitResult(action="accept")
        self.seen.append("elicitation")
        schema = params.requested_schema or {}
        content = {k: _value(v) for k, v in (schema.get("properties") or {}).items()}
        return types.ElicitResult(action="accept", content=content)

    async def roots(self, context: Any) -> types.ListRootsResult:
        self.seen.append("roots")
        return types.ListRootsResult(roots=[types.Root(uri="file:///interop", name="interop")])

    async def log(self, params: types.LoggingMessageNotificationParams) -> None:
        self.seen.append("logging")


# -- the SDK clients -------------------------------------------------------------------------

@contextlib.asynccontextmanager
async def sdk(client: str, side: Side, asked: Asked) -> AsyncIterator[Client]:
    mode = MODES[client]
    kw: dict[str, Any] = dict(mode=mode, cache=None, sampling_callback=asked.sampling,
                              elicitation_callback=asked.elicitation,
                              list_roots_callback=asked.roots, logging_callback=asked.log,
                              read_timeout_seconds=CALL_TIMEOUT)
    if mode != "legacy":
        kw["log_level"] = "debug"
    headers = {"Authorization": f"Bearer {side.token}"} if side.token else {}
    if side.command is not None:
        params = StdioServerParameters(command=side.command[0], args=side.command[1:],
                                       env={"PATH": "/usr/bin:/bin", **side.env})
        async with Client(params, **kw) as c:
            yield c
        return
    if client == "sdk-sse" and side.sse_url is not None:
        async with Client(sse_client(side.sse_url, headers=headers), **kw) as c:
            yield c
        return
    assert side.url is not None
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=300)) as http, \
            Client(streamable_http_client(side.url, http_client=http), **kw) as c:
        yield c


def _dump(result: Any) -> Any:
    return result.model_dump(mode="json", exclude_none=True, by_alias=True)


def _own(side: Side, name: str) -> Any:
    """A listed name as the server calls it; None for another server's (the gateway lists the
    whole workspace)."""
    if side.slug is None:
        return name
    prefix = f"{side.slug}__"
    return name[len(prefix):] if name.startswith(prefix) else None


def _mine(side: Side, uri: str) -> bool:
    return side.slug is None or uri.startswith(f"mcpyard://{side.slug}/")


def _bare(side: Side, uri: Any) -> str:
    text = str(uri)
    return text[len(f"mcpyard://{side.slug}/"):] if side.slug else text


def _named(side: Side, name: str) -> str:
    return f"{side.slug}__{name}" if side.slug else name


def _uri(side: Side, uri: str) -> str:
    return f"mcpyard://{side.slug}/{uri}" if side.slug else uri


async def run_sdk(client: str, upstream: Upstream, side: Side) -> dict[str, Outcome]:
    """Every feature of one (client, upstream) pair on one side, with one connection."""
    asked = Asked()
    out: dict[str, Outcome] = {}
    try:
        async with sdk(client, side, asked) as c:
            out["connect"] = Outcome(True, None)
            await _features(c, client, upstream, side, asked, out)
    except Exception as exc:
        if "connect" not in out:
            return {"connect": Outcome(False, _why(exc))}
        # Closing failed after the features ran: what they found stands.
    return out


async def _features(c: Client, client: str, upstream: Upstream, side: Side, asked: Asked,
                    out: dict[str, Outcome]) -> None:
    caps = c.server_capabilities
    tools = await _step(out, "tools/list", lambda: c.list_tools())
    own = {_own(side, t.name): t for t in (tools.tools if tools is not None else [])
           if _own(side, t.name) is not None}
    if tools is not None:
        out["tools/list"] = Outcome(True, sorted(own))
    calls: dict[str, Any] = {}
    for name in sorted(own):
        if name in upstream.online or name in upstream.skip:
            continue
        given = upstream.args.get(name)
        args = {**schema_args(own[name].input_schema),
                **(given(side.folder or Path(".")) if given else {})}
        try:
            with anyio.fail_after(CALL_TIMEOUT):
                result = await c.call_tool(_named(side, name), args)
            data = _dump(result)
            if name in upstream.volatile:
                data = {"isError": data.get("isError", False),
                        "types": [b.get("type") for b in data.get("content", [])]}
            calls[name] = mask(data, side)
        except Exception as exc:
            calls[name] = {"error": _why(exc)}
    out["tools/call"] = Outcome(all("error" not in v for v in calls.values())
                                if calls else None, calls)
    out["prompts"] = await _prompts(c, caps, side)
    out["resources"], out["subscribe"] = await _resources(c, caps, side, client)
    for feature, (tool, given_args) in upstream.features.items():
        args = {**schema_args(own[tool].input_schema), **given_args} if tool in own else {}
        if tool not in own:
            out[feature] = Outcome(None, f"{tool} is not listed")
        elif feature == "cancellation":
            out[feature] = await _cancel(c, side, tool, args)
        elif feature == "progress":
            out[feature] = await _progress(c, side, tool, args)
        elif feature == "logging":
            out[feature] = await _logging(c, side, tool, args, asked)
        else:
            out[feature] = await _asks(c, side, tool, args, asked, feature)


async def _step(out: dict[str, Outcome], feature: str, call: Callable[[], Awaitable[Any]]
                ) -> Any:
    try:
        with anyio.fail_after(CALL_TIMEOUT):
            return await call()
    except Exception as exc:
        out[feature] = Outcome(False, _why(exc))
        return None


async def _prompts(c: Client, caps: Any, side: Side) -> Outcome:
    """List, then get each prompt with a value for each required argument (a prompt that
    refuses such a value fails alike on both sides; the cell needs one that answers)."""
    if caps.prompts is None:
        return Outcome(None)
    try:
        with anyio.fail_after(CALL_TIMEOUT):
            listed = sorted((p for p in (await c.list_prompts()).prompts
                             if _own(side, p.name) is not None), key=lambda p: p.name)
        got: dict[str, Any] = {}
        for prompt in listed:
            args = {a.name: "x" for a in prompt.arguments or () if a.required}
            try:
                with anyio.fail_after(CALL_TIMEOUT):
                    got[_own(side, prompt.name)] = _dump(await c.get_prompt(prompt.name, args))
            except Exception as exc:
                got[_own(side, prompt.name)] = {"error": type(exc).__name__}
    except Exception as exc:
        return Outcome(False, _why(exc))
    ok = not listed or any("error" not in v for v in got.values())
    return Outcome(ok, mask(got, side))


async def _resources(c: Client, caps: Any, side: Side, client: str
                     ) -> tuple[Outcome, Outcome]:
    if caps.resources is None:
        return Outcome(None), Outcome(None)
    try:
        with anyio.fail_after(CALL_TIMEOUT):
            listed = sorted((r for r in (await c.list_resources()).resources
                             if _mine(side, str(r.uri))), key=lambda r: _bare(side, r.uri))
            got = [_dump(await c.read_resource(r.uri)) for r in listed[:2]]
        resources = Outcome(True, mask([[r.uri for r in listed], got], side))
    except Exception as exc:
        return Outcome(False, _why(exc)), Outcome(None)
    if not caps.resources.subscribe or not listed or MODES.get(client) != "legacy":
        # 2026-07-28 subscribes with subscriptions/listen (a stream, not a request).
        return resources, Outcome(None)
    try:
        # subscribe/unsubscribe/setLevel warn (MCPDeprecationWarning): the test ignores that
        # warning class as a whole, since filters changed per task would race.
        with anyio.fail_after(CALL_TIMEOUT):
            await c.subscribe_resource(listed[0].uri)
            await c.unsubscribe_resource(listed[0].uri)
        return resources, Outcome(True, None)
    except MCPError as exc:
        if exc.error.code == types.METHOD_NOT_FOUND:
            # The gateway advertises subscribe when any of its servers offers it, and refuses
            # it for a server that does not, as that server itself does: not offered.
            return resources, Outcome(None)
        return resources, Outcome(False, _why(exc))
    except Exception as exc:
        return resources, Outcome(False, _why(exc))


async def _asks(c: Client, side: Side, tool: str, args: dict[str, Any], asked: Asked,
                feature: str) -> Outcome:
    try:
        with anyio.fail_after(CALL_TIMEOUT):
            result = await c.call_tool(_named(side, tool), args)
        if result.is_error:
            return Outcome(False, _text(result))
        if feature not in asked.seen:
            return Outcome(False, f"{tool} answered without asking for {feature}")
        return Outcome(True, mask(_dump(result), side))
    except Exception as exc:
        return Outcome(False, _why(exc))


async def _progress(c: Client, side: Side, tool: str, args: dict[str, Any]) -> Outcome:
    seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    try:
        with anyio.fail_after(CALL_TIMEOUT):
            result = await c.call_tool(_named(side, tool), args, progress_callback=on_progress)
        if result.is_error or not seen:
            return Outcome(False, _text(result) if result.is_error else "no progress")
        return Outcome(True, seen)
    except Exception as exc:
        return Outcome(False, _why(exc))


async def _logging(c: Client, side: Side, tool: str, args: dict[str, Any], asked: Asked
                   ) -> Outcome:
    try:
        with anyio.fail_after(CALL_TIMEOUT):
            if c.protocol_version < "2026" and c.server_capabilities.logging is not None:
                await c.set_logging_level("debug")
            before = asked.seen.count("logging")
            result = await c.call_tool(_named(side, tool), args)
            # Log messages travel beside the answer: give them a moment to land, bounded.
            with anyio.move_on_after(5):
                while asked.seen.count("logging") - before < 8:
                    await anyio.sleep(0.05)
        count = asked.seen.count("logging") - before
        if result.is_error or count == 0:
            return Outcome(False, _text(result) if result.is_error else "no log message")
        return Outcome(True, count)
    except Exception as exc:
        return Outcome(False, _why(exc))


async def _cancel(c: Client, side: Side, tool: str, args: dict[str, Any]) -> Outcome:
    """Cancel a call that would run for a minute; the connection must serve on."""
    try:
        with anyio.move_on_after(2):
            await c.call_tool(_named(side, tool), args)
            return Outcome(False, "the call finished before it was cancelled")
        with anyio.fail_after(CALL_TIMEOUT):
            await c.list_tools()
        return Outcome(True, None)
    except Exception as exc:
        return Outcome(False, _why(exc))


def _text(result: Any) -> str:
    return "".join(getattr(b, "text", "") for b in result.content)[:200]


def _why(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {str(exc)[:200]}"


# -- the Inspector CLI -----------------------------------------------------------------------

INSPECTOR = NPM / "inspector" / "clients" / "cli" / "build" / "index.js"


async def inspector(side: Side, *args: str) -> Any:
    """One Inspector CLI invocation (``--cli``); its JSON answer. Its options come first, the
    server after ``--`` (a stdio command's own options are not the Inspector's)."""
    options = [*args, "--connect-timeout", str(CALL_TIMEOUT * 1000)]
    if side.command is not None:
        options += ["--transport", "stdio"]
        for k, v in side.env.items():
            options += ["-e", f"{k}={v}"]
        target = side.command
    else:
        assert side.url is not None
        options += ["--transport", "http"]
        if side.token:
            options += ["--header", f"Authorization: Bearer {side.token}"]
        target = [side.url]
    with anyio.fail_after(CALL_TIMEOUT * 2):
        done = await anyio.run_process([str(NODE), str(INSPECTOR), *options, "--", *target],
                                       check=False)
    if done.returncode != 0:
        raise RuntimeError(f"inspector exit {done.returncode}: "
                           f"{done.stdout.decode(errors='replace')[-300:]}"
                           f"{done.stderr.decode(errors='replace')[-300:]}")
    return json.loads(done.stdout)


async def run_inspector(upstream: Upstream, side: Side) -> dict[str, Outcome]:
    out: dict[str, Outcome] = {}
    try:
        listed = (await inspector(side, "--method", "tools/list"))["tools"]
    except Exception as exc:
        return {"connect": Outcome(False, _why(exc))}
    out["connect"] = Outcome(True, None)
    own = {_own(side, t["name"]): t for t in listed if _own(side, t["name"]) is not None}
    out["tools/list"] = Outcome(True, sorted(own))
    # One call per server (each Inspector call is a new process, and a stdio server with it):
    # the first tool that needs no network, with arguments from its schema.
    calls: dict[str, Any] = {}
    for name in sorted(own):
        if name in upstream.online or name in upstream.skip or name in upstream.volatile:
            continue
        given = upstream.args.get(name)
        args = {**schema_args(own[name].get("inputSchema") or {}),
                **(given(side.folder or Path(".")) if given else {})}
        pairs = [f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in args.items()]
        try:
            result = await inspector(side, "--method", "tools/call", "--tool-name",
                                     _named(side, name), *(["--tool-arg", *pairs] if pairs
                                                           else []))
            calls[name] = mask(result, side)
        except Exception as exc:
            calls[name] = {"error": _why(exc)}
        break
    out["tools/call"] = Outcome(all("error" not in v for v in calls.values()) if calls
                                else None, calls)
    for feature, method, key in (("prompts", "prompts/list", "prompts"),
                                 ("resources", "resources/list", "resources")):
        try:
            got = await inspector(side, "--method", method)
            field = "name" if key == "prompts" else "uri"
            names = [str(i.get(field)) for i in got[key]]
            names = [n for n in names if (_own(side, n) if key == "prompts" else _mine(side, n))]
            out[feature] = Outcome(True, mask(sorted(names), side))
        except Exception as exc:
            text = _why(exc)
            out[feature] = Outcome(None if "not found" in text.lower() or "-32601" in text
                                   else False, text)
    return out


async def run(client: str, upstream: Upstream, side: Side) -> dict[str, Outcome]:
    if client == "inspector-cli":
        return await run_inspector(upstream, side)
    return await run_sdk(client, upstream, side)


# -- the table -------------------------------------------------------------------------------

def cell(direct: Outcome | None, gateway: Outcome | None) -> str:
    def one(o: Outcome | None) -> str:
        return NOT_OFFERED if o is None or o.ok is None else ("pass" if o.ok else "fail")

    return f"{one(direct)} / {one(gateway)}"


def table(results: dict[tuple[str, str], tuple[dict[str, Outcome], dict[str, Outcome]]],
          servers: list[str]) -> str:
    """Markdown: one section per upstream, features down, clients across, ``direct /
    gateway`` in each cell."""
    lines: list[str] = []
    for server in servers:
        lines += [f"### {server}", "", "| feature | " + " | ".join(CLIENTS) + " |",
                  "|---" * (len(CLIENTS) + 1) + "|"]
        for feature in FEATURES:
            row = [cell(*(side.get(feature) for side in results[(client, server)]))
                   if (client, server) in results else "?" for client in CLIENTS]
            lines.append(f"| {feature} | " + " | ".join(row) + " |")
        lines.append("")
    return "\n".join(lines)
