"""Tool discovery: ask each serving MCP server for its tools, outside the gateway's hot path.

One loop per MCPServer (a kopf daemon): wait until the server can answer (a proxied or remote
server at once, a hosted one when its Deployment reports an available replica), call
``tools/list`` with the official MCP client, injecting the server's credentials as the
gateway would (bearer or header), retry with backoff while it starts, then refresh every
``discovery_interval`` seconds or when the server's configuration changes. What it finds (each
tool's full definition, and the prompts and resources the server advertises) goes to
``Observed.tools``, the server's ``status.tools`` and its capability manifest ConfigMap through
a reconcile of its workspace.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx2
import mcp.types
from mcp.client.session import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from mcpyard import errors
from mcpyard.compiler.config import ServerConfig
from mcpyard.discovery import manifest, pins
from mcpyard.operator._runtime import NsName, Runtime, Tools

MAX_BACKOFF = 60.0
FAILURES_BEFORE_DEGRADED = 3
"""Failed attempts in a row before a starting server is reported not serving."""


def headers(server: ServerConfig, rt: Runtime) -> dict[str, str]:
    """The credentials the gateway would inject on the upstream hop."""
    out: dict[str, str] = {}
    for injection in server.injections:
        if injection.as_ == "env":
            continue
        value = rt.store.reveal(injection.ref.identity)
        if value is None:
            raise errors.DependencyNotReady(f"secret {injection.ref.identity} is not decrypted")
        out[injection.target] = f"Bearer {value}" if injection.as_ == "bearer" else value
    return out


def _dump(item: Any) -> dict[str, Any]:
    """An SDK list item as the server sent it (JSON names, absent fields left out)."""
    return dict(item.model_dump(mode="json", by_alias=True, exclude_none=True))


async def _pages(fetch: Any, attr: str) -> list[dict[str, Any]]:
    """Every item of a paginated list (a server that pages forever is cut off at 100)."""
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(100):
        result = await fetch(cursor)
        found.extend(_dump(item) for item in getattr(result, attr))
        cursor = result.next_cursor
        if not cursor:
            break
    return found


@dataclass(frozen=True)
class Protocol:
    """The era and version a discovery spoke to a server (``status.protocol``)."""

    era: str
    version: str

    def status(self) -> dict[str, str]:
        return {"era": self.era, "version": self.version}


async def list_tools(
    server: ServerConfig, rt: Runtime, timeout: float
) -> tuple[manifest.Reported, Protocol]:
    """What the server reports about itself: its tools (full definitions), and the prompts,
    resources and resource templates it advertises, following pagination; and the protocol
    spoken to it."""
    if server.url is None:
        raise errors.UpstreamError(f"server {server.slug} has no URL to discover tools at")
    tls = rt.discovery_tls()

    def client(
        headers: dict[str, str] | None = None,
        timeout: httpx2.Timeout | None = None,
        auth: httpx2.Auth | None = None,
    ) -> httpx2.AsyncClient:
        # The MCP SDK's client factory, with the one TLS context of the operator: each
        # context loads the CA bundle (~0.85 MiB), and hundreds of servers discover at once.
        return httpx2.AsyncClient(headers=headers, timeout=timeout, auth=auth, verify=tls)

    async with rt.discovery_slots, asyncio.timeout(timeout):
        http = client(headers=headers(server, rt), timeout=httpx2.Timeout(timeout))
        async with http, contextlib.AsyncExitStack() as stack:
            streams: Any
            if server.transport == "sse":
                streams = await stack.enter_async_context(
                    sse_client(
                        server.url,
                        headers=headers(server, rt),
                        timeout=timeout,
                        httpx_client_factory=client,
                    )
                )
            else:
                streams = await stack.enter_async_context(
                    streamable_http_client(server.url, http_client=http)
                )
            session = await stack.enter_async_context(ClientSession(streams[0], streams[1]))
            protocol = await negotiate(session, server)

            def paged(method: Any) -> Any:
                return lambda cursor: method(params={"cursor": cursor} if cursor else None)

            tools = await _pages(paged(session.list_tools), "tools")
            caps = session.server_capabilities or mcp.types.ServerCapabilities()
            prompts = await _pages(paged(session.list_prompts), "prompts") if caps.prompts else []
            resources: list[dict[str, Any]] = []
            templates: list[dict[str, Any]] = []
            if caps.resources:
                resources = await _pages(paged(session.list_resources), "resources")
                templates = await _pages(
                    paged(session.list_resource_templates), "resource_templates"
                )
    info = session.server_info
    return manifest.Reported(
        tools=tools,
        prompts=prompts,
        resources=resources,
        resource_templates=templates,
        server_info=_dump(info) if info is not None else {},
        instructions=session.instructions,
    ), protocol


async def negotiate(session: ClientSession, server: ServerConfig) -> Protocol:
    """Open the session in the era ``spec.protocolEra`` decides, as the gateway does
    (:mod:`mcpyard.gateway.upstream`): modern: ``server/discover``; handshake:
    ``initialize``; auto: ``initialize``, and ``server/discover`` when the server refuses it
    (a server of the 2026-07-28 era only)."""
    if server.protocol_era != "modern":
        try:
            await session.initialize()
        except MCPError:
            if server.protocol_era == "handshake" or server.transport != "streamable-http":
                raise
        else:
            return Protocol("handshake", str(session.protocol_version))
    await session.discover()
    return Protocol("modern", str(session.protocol_version))


def _changes(before: manifest.Reported, after: manifest.Reported) -> str | None:
    """What changed between two tool lists, in words; None when nothing did. A tool whose
    definition (description, schemas, annotations: what its pin covers) changed is named."""
    old = {str(t["name"]): pins.digest(t) for t in before.tools}
    new = {str(t["name"]): pins.digest(t) for t in after.tools}
    if list(old.items()) == list(new.items()):
        return None
    added = sorted(set(new) - set(old))
    removed = sorted(set(old) - set(new))
    redefined = sorted(n for n in set(old) & set(new) if old[n] != new[n])
    parts = [
        f"added {', '.join(added)}" if added else "",
        f"removed {', '.join(removed)}" if removed else "",
        f"definition changed: {', '.join(redefined)}" if redefined else "",
    ]
    return "; ".join(p for p in parts if p) or "order changed"


def _ready(rt: Runtime, key: NsName, server: ServerConfig) -> bool:
    if server.mode == "proxy" or (
        server.mode == "hub"
        and server.command is None
        and "svc.cluster.local" not in (server.url or "")
    ):
        return True
    available = rt.index("available", key)
    return bool(available and max(available) > 0)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, errors.MCPyardError):
        return str(exc)[:200]
    if isinstance(exc, httpx2.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    if isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        return _reason(exc.exceptions[0])
    return type(exc).__name__


async def _pause(rt: Runtime, key: NsName, seconds: float | None, stopped: Any) -> None:
    """Until woken (the server changed, its Deployment moved), stopped, or ``seconds`` pass."""
    wake = rt.wakers.setdefault(key, asyncio.Event())

    async def until_stopped() -> None:
        await stopped.wait()

    waiters = [asyncio.ensure_future(wake.wait()), asyncio.ensure_future(until_stopped())]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
    wake.clear()


async def loop(rt: Runtime, key: NsName, stopped: Any, logger: logging.Logger | Any) -> None:
    """Discover the tools of one server until the daemon is stopped."""
    failures = 0
    while not stopped:
        known = rt.servers.get(key)
        if known is None or not _ready(rt, key, known[1]):
            await _pause(rt, key, None, stopped)
            continue
        workspace, server = known
        try:
            reported, protocol = await list_tools(server, rt, rt.settings.discovery_timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any failure of the upstream: report it, retry later
            failures += 1
            reason = _reason(exc)
            logger.debug(f"tools/list failed (attempt {failures}): {reason}")
            if failures >= FAILURES_BEFORE_DEGRADED and rt.health.get(key) != (
                False,
                f"tools/list failed: {reason}",
            ):
                rt.health[key] = (False, f"tools/list failed: {reason}")
                rt.request(("ws", workspace))
            await _pause(rt, key, min(MAX_BACKOFF, 0.25 * 2**failures), stopped)
            continue
        failures = 0
        before = rt.tools.get(key)
        changed = _changes(before.reported, reported) if before is not None else None
        now = datetime.now(UTC).replace(microsecond=0)
        rt.tools[key] = Tools(
            reported, now, changed, first=before is None, protocol=protocol.status()
        )
        rt.health[key] = (True, f"{len(reported.tools)} tools discovered")
        if changed is not None:
            logger.info(f"tools changed: {changed}")
        rt.request(("ws", workspace))
        await _pause(rt, key, rt.settings.discovery_interval, stopped)
