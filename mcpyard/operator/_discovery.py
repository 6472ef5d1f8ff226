"""Tool discovery: ask each serving MCP server for its tools, outside the gateway's hot path.

One :class:`Scheduler` for every MCPServer: wait until the server can answer (a proxied or remote
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
import heapq
import itertools
import logging
import math
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx2

from mcpyard import errors
from mcpyard.compiler.config import ServerConfig
from mcpyard.discovery import manifest, pins
from mcpyard.jsontypes import JSONObject
from mcpyard.operator._runtime import DISCOVERY_CONCURRENCY, NsName, Runtime, Tools

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from mcp.client.session import ClientSession
    from mcp.types import PaginatedResult
    from pydantic import BaseModel

log = logging.getLogger("mcpyard.operator")

MAX_BACKOFF = 600.0
"""The longest wait between two attempts at a server that does not answer (never longer than
``discovery_interval``): a cold start of thousands of unreachable servers retried every
minute kept the loop that serves revocations busy with failing connections."""
FAILURES_BEFORE_DEGRADED = 3
"""Failed attempts in a row before a starting server is reported not serving."""


def load_sdk() -> None:
    """Import the MCP SDK's client (about a second of CPU). The scheduler does it in a thread
    before its first discovery: the operator's start, which writes every configuration before
    any discovery, does not wait for it, and the loop serving revocations is not held by it."""
    import mcp.client.session
    import mcp.client.sse
    import mcp.client.streamable_http
    import mcp.shared.exceptions
    import mcp.types  # noqa: F401


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


def _dump(item: BaseModel) -> JSONObject:
    """An SDK list item as the server sent it (JSON names, absent fields left out)."""
    return dict(item.model_dump(mode="json", by_alias=True, exclude_none=True))


async def _pages(
    fetch: Callable[[str | None], Awaitable[PaginatedResult]], attr: str
) -> list[JSONObject]:
    """Every item of a paginated list (a server that pages forever is cut off at 100); each
    list has its own result type, ``attr`` names the field of its items."""
    found: list[JSONObject] = []
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
    import mcp.types
    from mcp.client.session import ClientSession
    from mcp.client.sse import sse_client
    from mcp.client.streamable_http import streamable_http_client

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
            streams: Any  # the SDK's two transports' stream tuples differ in arity and type
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

            def paged(method: Callable[..., Awaitable[PaginatedResult]]
                      ) -> Callable[[str | None], Awaitable[PaginatedResult]]:
                return lambda cursor: method(params={"cursor": cursor} if cursor else None)

            tools = await _pages(paged(session.list_tools), "tools")
            caps = session.server_capabilities or mcp.types.ServerCapabilities()
            prompts = await _pages(paged(session.list_prompts), "prompts") if caps.prompts else []
            resources: list[JSONObject] = []
            templates: list[JSONObject] = []
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
    from mcp.shared.exceptions import MCPError

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
    available = rt.indexes.available.get(key)
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


class Scheduler:
    """Every server's discovery, from one heap of due times served by a few workers.

    One kopf daemon per MCPServer made every server a task of its own and, since kopf guards
    its daemons with a finalizer, a PATCH per server at a cold start; here a server is an
    entry in a heap. :meth:`wake` makes a server due now (its configuration or Deployment
    changed); after a discovery the server is due again after ``discovery_interval``, after a
    failure with backoff, and never while it cannot be asked (no config yet, not available).
    """

    def __init__(self, rt: Runtime, workers: int = DISCOVERY_CONCURRENCY) -> None:
        self._rt = rt
        self._heap: list[tuple[float, int, NsName]] = []
        self._due: dict[NsName, float] = {}
        self._order = itertools.count()
        self._running: set[NsName] = set()
        self._again: set[NsName] = set()
        self._failures: dict[NsName, int] = {}
        self._ready = asyncio.Event()
        self._tasks = [
            asyncio.create_task(self._worker(), name=f"mcpyard-discovery-{i}")
            for i in range(workers)
        ]

    def wake(self, key: NsName) -> None:
        """Discover ``key`` as soon as a worker is free (again, if it is being discovered)."""
        if key in self._running:
            self._again.add(key)
        else:
            self._schedule(key, 0.0)

    def _schedule(self, key: NsName, delay: float) -> None:
        when = time.monotonic() + delay
        if self._due.get(key, math.inf) <= when:
            return
        self._due[key] = when
        heapq.heappush(self._heap, (when, next(self._order), key))
        self._ready.set()

    async def _next(self) -> NsName:
        while True:
            now = time.monotonic()
            while self._heap and self._due.get(self._heap[0][2]) != self._heap[0][0]:
                heapq.heappop(self._heap)  # superseded by an earlier due time, or done
            if self._heap and self._heap[0][0] <= now:
                _, _, key = heapq.heappop(self._heap)
                del self._due[key]
                return key
            self._ready.clear()
            timeout = self._heap[0][0] - now if self._heap else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), timeout)

    async def _worker(self) -> None:
        await asyncio.to_thread(load_sdk)
        while True:
            key = await self._next()
            self._running.add(key)
            try:
                if self._rt.reconciler is not None:
                    # Configurations first: discovery is routine work, it waits for them.
                    await self._rt.reconciler.calm.wait()
                delay = await self.once(key)
            except asyncio.CancelledError:
                raise
            except Exception:  # never kills the worker: try again at the longest backoff
                log.exception("discovery of %s/%s failed unexpectedly", *key)
                delay = MAX_BACKOFF
            finally:
                self._running.discard(key)
            if key in self._again:
                self._again.discard(key)
                delay = 0.0
            if delay is not None:
                self._schedule(key, delay)

    async def once(self, key: NsName) -> float | None:
        """Discover one server; seconds until the next discovery (None: until woken)."""
        rt = self._rt
        known = rt.servers.get(key)
        if known is None:
            self._failures.pop(key, None)
            return None
        workspace, server = known
        if not _ready(rt, key, server):
            return None
        try:
            reported, protocol = await list_tools(server, rt, rt.settings.discovery_timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any failure of the upstream: report it, retry later
            failures = self._failures[key] = self._failures.get(key, 0) + 1
            reason = _reason(exc)
            log.debug("MCPServer %s/%s: tools/list failed (attempt %d): %s", *key, failures, reason)
            health = (False, f"tools/list failed: {reason}")
            if failures >= FAILURES_BEFORE_DEGRADED and rt.health.get(key) != health:
                rt.health[key] = health
                rt.request(("ws", workspace))
            longest = min(MAX_BACKOFF, rt.settings.discovery_interval)
            # Spread (±20%): servers that failed together at a cold start retry apart.
            return min(longest, 0.25 * 2.0**failures) * random.uniform(0.8, 1.2)
        self._failures.pop(key, None)
        before = rt.tools.get(key)
        changed = _changes(before.reported, reported) if before is not None else None
        now = datetime.now(UTC).replace(microsecond=0)
        rt.tools[key] = Tools(
            reported, now, changed, first=before is None, protocol=protocol.status()
        )
        rt.health[key] = (True, f"{len(reported.tools)} tools discovered")
        if changed is not None:
            log.info("MCPServer %s/%s: tools changed: %s", *key, changed)
        rt.request(("ws", workspace))
        return rt.settings.discovery_interval

    async def close(self) -> None:
        # Cancelled again until done: a cancellation that lands while the MCP client's task
        # group is itself cancelling (a refused connection) is absorbed by it.
        pending = set(self._tasks)
        while pending:
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=0.5)
