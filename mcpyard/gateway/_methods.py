"""The MCP methods beyond tools: prompts, resources, templates, completion, subscriptions,
logging level. Part of the router (the one place that knows both sides); the router dispatches
here by method name, so a plain tools/call never passes through this module.

Every method walks down once: member -> table (``_catalog``) -> access -> upstream under the
server's own name or URI -> result with its URIs mapped back to the workspace's.
Subscriptions are made once per upstream resource on the gateway's own upstream session (the
one whose notification stream the gateway keeps open) and fanned out to the downstream
sessions that subscribed (``_relay.Subscriptions``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import cast

from mcpyard import errors
from mcpyard.compiler import access, naming
from mcpyard.gateway import _catalog, _jsonrpc, _relay
from mcpyard.gateway._runtime import Live, Runtime
from mcpyard.gateway._upstreams import Handle
from mcpyard.gateway._upstreams import capabilities as capabilities_of
from mcpyard.gateway.downstream._auth import Member
from mcpyard.gateway.downstream._sessions import Session
from mcpyard.mcp import jsonrpc as rpc

log = logging.getLogger("mcpyard.gateway")

Handler = Callable[[Live, Member, Session, rpc.Id, rpc.JSONValue, "_relay.Reply | None"],
                   Awaitable[rpc.Message]]

LOG_LEVELS = _relay.LOG_LEVELS


def capabilities(live: Live) -> rpc.JSONObject:
    """What the workspace offers: tools always; the rest when an upstream offers it."""
    caps: rpc.JSONObject = {"tools": {"listChanged": True}}
    if live.serves("prompts"):
        caps["prompts"] = {"listChanged": True}
    if live.serves("resources") or live.serves("resourceTemplates"):
        # subscribe only where a server can honour it: a client that sees it subscribes
        caps["resources"] = {"listChanged": True,
                             "subscribe": any(offers_subscribe(h) for h in live.handles.values())}
    upstream = [c for c in (capabilities_of(h) for h in live.handles.values()) if c]
    if any("completions" in c for c in upstream):
        caps["completions"] = {}
    if any("logging" in c for c in upstream):
        caps["logging"] = {}
    return caps


def offers_subscribe(handle: Handle) -> bool:
    """Whether the server said it takes resources/subscribe (its capabilities once connected)."""
    resources = (capabilities_of(handle) or {}).get("resources")
    return isinstance(resources, dict) and resources.get("subscribe") is True


class Methods:
    def __init__(self, runtime: Runtime, page_size: int, relays: _relay.Relays) -> None:
        self.runtime = runtime
        self.page_size = page_size
        self.relays = relays
        self.subscriptions = relays.subscriptions
        self.handlers: dict[str, Handler] = {
            "prompts/list": self._lister(_catalog.PROMPTS),
            "resources/list": self._lister(_catalog.RESOURCES),
            "resources/templates/list": self._lister(_catalog.TEMPLATES),
            "prompts/get": self.prompts_get,
            "resources/read": self.resources_read,
            "completion/complete": self.complete,
            "resources/subscribe": self.subscribe,
            "resources/unsubscribe": self.unsubscribe,
            "logging/setLevel": self.set_level,
        }

    def server_of(self, live: Live, member: Member, method: str, params: rpc.JSONValue
                  ) -> str | None:
        """The server a prompts/get, resources/read or completion/complete went to, if any
        (for the call record)."""
        if not isinstance(params, dict):
            return None
        if method == "completion/complete":
            ref = params.get("ref")
            if not isinstance(ref, dict):
                return None
            params = ref
        uri = params.get("uri")
        if isinstance(uri, str):
            parts = naming.split_uri(uri)
            return parts[0] if parts is not None and parts[0] in live.handles else None
        entry = self._prompt(live, member, params.get("name"))
        return entry.slug if entry is not None else None

    # -- lists ---------------------------------------------------------------------------

    def _lister(self, kind: _catalog.Kind) -> Handler:
        async def handler(live: Live, member: Member, session: Session, id_: rpc.Id,
                          params: rpc.JSONValue, reply: _relay.Reply | None) -> rpc.Message:
            cursor = params.get("cursor") if isinstance(params, dict) else None
            try:
                page = _catalog.page(kind, live.catalog_view(kind, member.config), cursor,
                                     self.page_size)
            except errors.InvalidCursor:
                return rpc.error(id_, rpc.INVALID_PARAMS, "Invalid params: unknown cursor")
            return rpc.result(id_, page)

        return handler

    # -- prompts -------------------------------------------------------------------------

    def _prompt(self, live: Live, member: Member, name: rpc.JSONValue) -> _catalog.Entry | None:
        if not isinstance(name, str):
            return None
        view = live.catalog_view(_catalog.PROMPTS, member.config)
        return live.catalog(_catalog.PROMPTS).by_key.get(name) if name in view.allowed else None

    async def prompts_get(self, live: Live, member: Member, session: Session, id_: rpc.Id,
                          params: rpc.JSONValue, reply: _relay.Reply | None) -> rpc.Message:
        if not isinstance(params, dict) or not isinstance(params.get("name"), str):
            return rpc.error(id_, rpc.INVALID_PARAMS, "Invalid params: prompts/get needs a name")
        entry = self._prompt(live, member, params["name"])
        if entry is None:
            return rpc.error(id_, rpc.INVALID_PARAMS, f"Unknown prompt: {params['name']}")
        outcome = await self.forward(live, member, session, id_, entry.slug, "prompts/get",
                                     {**params, "name": entry.original}, reply)
        result = outcome.get("result")
        if isinstance(result, dict):
            _catalog.prompt_result(entry.slug, result)
        return outcome

    # -- resources -----------------------------------------------------------------------

    def _resource(self, live: Live, member: Member, uri: rpc.JSONValue) -> tuple[str, str] | None:
        """``(slug, original URI)`` of a URI the member may read, else None."""
        if not isinstance(uri, str):
            return None
        parts = naming.split_uri(uri)
        if parts is None or parts[0] not in live.handles:
            return None
        if not access.member_may_use(member.config, uri):
            return None
        return parts

    @staticmethod
    def _no_resource(id_: rpc.Id, uri: rpc.JSONValue) -> rpc.Message:
        # The words and code of the SDK servers, so a hidden resource reads like a missing one.
        return rpc.error(id_, rpc.INVALID_PARAMS, f"Unknown resource: {uri}", {"uri": uri})

    async def resources_read(self, live: Live, member: Member, session: Session, id_: rpc.Id,
                             params: rpc.JSONValue, reply: _relay.Reply | None) -> rpc.Message:
        uri = params.get("uri") if isinstance(params, dict) else None
        if not isinstance(params, dict) or not isinstance(uri, str):
            return rpc.error(id_, rpc.INVALID_PARAMS, "Invalid params: resources/read needs a uri")
        parts = self._resource(live, member, uri)
        if parts is None:
            return self._no_resource(id_, uri)
        slug, original = parts
        outcome = await self.forward(live, member, session, id_, slug, "resources/read",
                                     {**params, "uri": original}, reply)
        result = outcome.get("result")
        if isinstance(result, dict):
            _catalog.read_result(slug, result)
        else:
            _error_uri(outcome, slug, original, uri)
        return outcome

    async def subscribe(self, live: Live, member: Member, session: Session, id_: rpc.Id,
                        params: rpc.JSONValue, reply: _relay.Reply | None) -> rpc.Message:
        uri = params.get("uri") if isinstance(params, dict) else None
        parts = self._resource(live, member, uri)
        if parts is None:
            return self._no_resource(id_, uri)
        handle = live.handles[parts[0]]
        if not offers_subscribe(handle):
            # what the server itself answers, with the reason: another server made the
            # workspace advertise subscribe
            return rpc.error(id_, rpc.METHOD_NOT_FOUND,
                             f"Method not found: server {handle.slug} does not offer "
                             f"resources/subscribe, so {uri} cannot be subscribed to",
                             {"uri": uri})
        try:
            await self.subscriptions.add(handle, parts[1], session)
        except errors.UpstreamRPCError as exc:
            return rpc.error(id_, exc.code, exc.rpc_message, exc.data)
        except (errors.MCPyardError, TimeoutError, OSError) as exc:
            return _failure(id_, exc, handle.slug)
        return rpc.result(id_, {})

    async def unsubscribe(self, live: Live, member: Member, session: Session, id_: rpc.Id,
                          params: rpc.JSONValue, reply: _relay.Reply | None) -> rpc.Message:
        uri = params.get("uri") if isinstance(params, dict) else None
        parts = self._resource(live, member, uri)
        if parts is None:
            return self._no_resource(id_, uri)
        await self.subscriptions.remove(live.handles[parts[0]], parts[1], session)
        return rpc.result(id_, {})

    # -- completion ----------------------------------------------------------------------

    async def complete(self, live: Live, member: Member, session: Session, id_: rpc.Id,
                       params: rpc.JSONValue, reply: _relay.Reply | None) -> rpc.Message:
        ref = params.get("ref") if isinstance(params, dict) else None
        if not isinstance(params, dict) or not isinstance(ref, dict):
            return rpc.error(id_, rpc.INVALID_PARAMS, "Invalid params: completion needs a ref")
        if ref.get("type") == "ref/prompt":
            entry = self._prompt(live, member, ref.get("name"))
            if entry is None:
                return rpc.error(id_, rpc.INVALID_PARAMS, f"Unknown prompt: {ref.get('name')}")
            slug, forwarded = entry.slug, {**ref, "name": entry.original}
        elif ref.get("type") == "ref/resource":
            parts = self._resource(live, member, ref.get("uri"))
            if parts is None:
                return self._no_resource(id_, ref.get("uri"))
            slug, forwarded = parts[0], {**ref, "uri": parts[1]}
        else:
            return rpc.error(id_, rpc.INVALID_PARAMS, "Invalid params: unknown reference type")
        return await self.forward(live, member, session, id_, slug, "completion/complete",
                                  {**params, "ref": forwarded}, reply)

    # -- logging -------------------------------------------------------------------------

    async def set_level(self, live: Live, member: Member, session: Session, id_: rpc.Id,
                        params: rpc.JSONValue, reply: _relay.Reply | None) -> rpc.Message:
        level = params.get("level") if isinstance(params, dict) else None
        if not isinstance(level, str) or level not in LOG_LEVELS:
            return rpc.error(id_, rpc.INVALID_PARAMS, f"Invalid params: unknown level {level!r}")
        session.log_level = LOG_LEVELS.index(level)
        # The gateway filters what reaches this session; an upstream hears the level only on
        # this session's own upstream session, where it changes nothing for anyone else.
        used = [h for h in session.used if h.upstream is not None
                and "logging" in (capabilities_of(h) or {})]
        if used:
            # An object: a level was read from it.
            asked = cast(rpc.JSONObject, params)
            await asyncio.gather(*(self._set_upstream_level(h, session, asked) for h in used))
        return rpc.result(id_, {})

    async def _set_upstream_level(self, handle: Handle, session: Session,
                                  params: rpc.JSONObject) -> None:
        try:
            await handle.request("logging/setLevel", params, session.owner,
                                 handle.server.timeout_seconds)
        except (errors.MCPyardError, TimeoutError, OSError) as exc:
            log.debug("server %s: logging/setLevel: %s", handle.slug, exc)

    # -- the upstream hop ----------------------------------------------------------------

    async def forward(self, live: Live, member: Member, session: Session, id_: rpc.Id,
                      slug: str, method: str, params: rpc.JSONObject,
                      reply: _relay.Reply | None) -> rpc.Message:
        handle = live.handles[slug]
        session.used.add(handle)
        try:
            result = await self.relays.call(handle, method, params, session, reply)
        except errors.UpstreamRPCError as exc:
            return rpc.error(id_, exc.code, exc.rpc_message, exc.data)
        except (errors.MCPyardError, TimeoutError, OSError) as exc:
            log.warning("member %s: %s on %s failed: %s", member.key, method, slug, exc)
            return _failure(id_, exc, slug)
        return rpc.result(id_, result)


def _failure(id_: rpc.Id, exc: errors.MCPyardError | OSError | TimeoutError,
             slug: str) -> rpc.Message:
    return _jsonrpc.error_from(id_, exc, slug=slug)


def _error_uri(outcome: rpc.Message, slug: str, original: str, uri: str) -> None:
    """An upstream's "resource not found" names the URI the client asked for, not its own."""
    err = outcome.get("error")
    if not isinstance(err, dict):
        return
    data = err.get("data")
    if isinstance(data, dict) and data.get("uri") == original:
        err["data"] = {**data, "uri": uri}
