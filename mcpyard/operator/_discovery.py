"""Tool discovery: ask each serving MCP server for its tools, outside the gateway's hot path.

One loop per MCPServer (a kopf daemon): wait until the server can answer (a proxied or remote
server at once, a hosted one when its Deployment reports an available replica), call
``tools/list`` with the official MCP client, injecting the server's credentials as the
gateway would (bearer or header), retry with backoff while it starts, then refresh every
``discovery_interval`` seconds or when the server's configuration changes. What it finds goes
to ``Observed.tools`` and the server's ``status.tools`` through a reconcile of its workspace.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

import httpx2
from mcp.client.session import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from mcpyard import errors
from mcpyard.compiler.config import ServerConfig
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


async def list_tools(
    server: ServerConfig, rt: Runtime, timeout: float
) -> tuple[tuple[str, str | None], ...]:
    """(name, description) of every tool the server lists, following pagination."""
    if server.url is None:
        raise errors.UpstreamError(f"server {server.slug} has no URL to discover tools at")
    found: list[tuple[str, str | None]] = []
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
            await session.initialize()
            cursor: str | None = None
            for _ in range(100):  # a server that pages forever is cut off
                params = {"cursor": cursor} if cursor else None
                result = await session.list_tools(params=params)  # type: ignore[arg-type]
                found.extend((t.name, t.description) for t in result.tools)
                cursor = result.next_cursor
                if not cursor:
                    break
    return tuple(found)


def _changes(
    before: tuple[tuple[str, str | None], ...], after: tuple[tuple[str, str | None], ...]
) -> str | None:
    """What changed between two tool lists, in words; None when nothing did."""
    if before == after:
        return None
    old, new = dict(before), dict(after)
    added = sorted(set(new) - set(old))
    removed = sorted(set(old) - set(new))
    described = sorted(n for n in set(old) & set(new) if old[n] != new[n])
    parts = [
        f"added {', '.join(added)}" if added else "",
        f"removed {', '.join(removed)}" if removed else "",
        f"description changed: {', '.join(described)}" if described else "",
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
            tools = await list_tools(server, rt, rt.settings.discovery_timeout)
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
        changed = _changes(before.tools, tools) if before is not None else None
        now = datetime.now(UTC).replace(microsecond=0)
        rt.tools[key] = Tools(tools, now, changed, first=before is None)
        rt.health[key] = (True, f"{len(tools)} tools discovered")
        if changed is not None:
            logger.info(f"tools changed: {changed}")
        rt.request(("ws", workspace))
        await _pause(rt, key, rt.settings.discovery_interval, stopped)
