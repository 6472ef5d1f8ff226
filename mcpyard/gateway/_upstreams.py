"""The upstream servers' lifecycle: one :class:`Handle` per server, run by :class:`Upstreams`.

A :class:`Handle` is one server of one workspace as the gateway knows it: its client, what it
serves (tools and the other lists, kept while it is down to route calls), whether it serves
(``up``, ``reason``: the one record of its health, which its client's transport errors and
answers feed through :meth:`Handle.call`), and its calls in flight. It outlives the
configuration snapshots (:class:`mcpyard.gateway._runtime.Live`): a reload keeps the handles
whose ServerConfig and secret values are unchanged.

:class:`Upstreams` starts a handle's client, discovers what the server serves, marks it down
(with backoff) and retries it, re-discovers when the server says a list changed or its process
restarted, and closes retired handles once their calls have drained. It tells the runtime
(``on_change``) whenever what a handle serves changed, so that a new snapshot is built.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import time
from collections.abc import Callable, Coroutine, Iterable
from pathlib import Path
from typing import TypeVar, cast

from mcpyard import errors
from mcpyard.compiler.config import ServerConfig
from mcpyard.gateway import _catalog
from mcpyard.gateway.services._metrics import Metrics
from mcpyard.gateway.upstream._base import RESTARTED, Owner, Relay, SecretSource, Upstream
from mcpyard.mcp import jsonrpc as rpc

T = TypeVar("T")


log = logging.getLogger("mcpyard.gateway")

DISCOVERIES = 16
"""Server starts and tool discoveries the gateway runs at once (see ``Upstreams._discoveries``)."""
RETRY_MAX = 120.0
"""The longest wait before a server that is down is tried again (see ``retry_delay``)."""

_REDISCOVER = frozenset({"notifications/tools/list_changed", "notifications/prompts/list_changed",
                         "notifications/resources/list_changed"})
_MAX_TOOL_PAGES = 100

Factory = Callable[..., Upstream]


class Handle:
    """One upstream server of one workspace, kept across reloads while its config holds."""

    def __init__(self, workspace: str, server: ServerConfig, *, digest: str,
                 blocked: str | None, lifecycle: Upstreams | None = None) -> None:
        self.workspace = workspace
        self._lifecycle = lifecycle
        """Told when a client's call finds the server down, or up again (None: a handle
        that only describes a server, as ``mcpyard discover`` builds)."""
        self.server = server
        self.slug = server.slug
        self.digest = digest
        self.blocked = blocked
        self.upstream: Upstream | None = None
        self.tools: tuple[rpc.JSONObject, ...] | None = None
        """The last tool list the server gave (kept while it is down, to route calls)."""
        self.lists: dict[str, tuple[rpc.JSONObject, ...]] = {}
        """The last prompt / resource / template lists (by result key) the server gave; a kind
        the server does not serve is absent."""
        self.up = False
        self.reason: str | None = blocked or "starting"
        self.inflight = 0
        self.retired = False
        self.failures = 0
        self.retry_at = 0.0
        self.start_task: asyncio.Task[None] | None = None
        self.starting = False
        """Its client's ``start()`` has begun (a start still waiting for its turn is only
        cancelled when the handle closes)."""
        self.discovering: asyncio.Task[None] | None = None
        self.rediscover = False
        self.closing: asyncio.Task[None] | None = None
        self.provisional = False
        """Serving the lists of the handle it replaced (same slug, changed configuration)
        until its own discovery ends: a reload that restarts a server does not make its tools
        vanish and come back (two list_changed for nothing)."""

    def stand_in_for(self, prev: Handle) -> None:
        """Serve ``prev``'s lists until this handle's first discovery."""
        if prev.up and prev.tools is not None:
            self.tools, self.lists, self.up = prev.tools, prev.lists, True
            self.provisional = True

    def same(self, server: ServerConfig, digest: str, blocked: str | None) -> bool:
        # ``is`` first: a source that read nothing new hands the same objects again, and
        # pydantic's == compares field by field (5,000 servers at every publication).
        return ((self.server is server or self.server == server) and self.digest == digest
                and self.blocked == blocked)

    @property
    def why_down(self) -> str:
        if self.blocked:
            return self.blocked
        last = self.upstream.last_error if self.upstream is not None else None
        return self.reason or last or "not serving"

    async def request(self, method: str, params: rpc.JSONObject | None, owner: Owner | None,
                      timeout: float | None = None, *, relay: Relay | None = None
                      ) -> rpc.JSONObject:
        upstream = self.upstream
        if upstream is None or self.closing is not None:
            raise errors.UpstreamError(self.why_down)
        self.inflight += 1
        try:
            if relay is not None:
                result = await upstream.request(method, params, owner=owner, timeout=timeout,
                                                relay=relay)
            else:
                result = await upstream.request(method, params, owner=owner, timeout=timeout)
        except errors.UpstreamRPCError:
            raise  # the server answered: its own error says nothing of its health
        except (errors.MCPyardError, TimeoutError, OSError) as exc:
            # A client's call that broke the transport takes the server down for everyone
            # (its tools stay listed: calls route to it and bring it back). The gateway's own
            # calls (owner None: discovery, subscriptions) report through the lifecycle.
            if (owner is not None and self.up and upstream.last_error is not None
                    and self._lifecycle is not None):
                self._lifecycle.mark_down(self, upstream.last_error or str(exc))
            raise
        finally:
            self.inflight -= 1
            if self.retired and self.inflight == 0:
                self.close_soon()
        if owner is not None and not self.up and self._lifecycle is not None:
            self._lifecycle.discover_soon(self)  # it answered a client: bring its tools back
        return result

    async def notify(self, method: str, params: rpc.JSONObject | None, owner: Owner) -> None:
        """Send a notification on the owner's upstream session (best effort: there may be
        none, and nothing waits for an answer)."""
        if self.upstream is None or self.closing is not None:
            return
        try:
            await self.upstream.notify(method, params, owner=owner)
        except (errors.MCPyardError, TimeoutError, OSError) as exc:
            log.debug("server %s: %s not delivered: %s", self.slug, method, exc)

    async def release(self, owner: Owner) -> None:
        if self.upstream is None or self.closing is not None:
            return
        try:
            await self.upstream.release(owner)
        except Exception as exc:  # a failed release only leaks an upstream session
            log.warning("server %s: releasing a session failed: %s", self.slug, exc)

    def close_soon(self) -> asyncio.Task[None]:
        if self.closing is None:
            self.closing = asyncio.get_running_loop().create_task(self._close())
        return self.closing

    async def _close(self) -> None:
        for task in (self.discovering,):
            if task is not None and not task.done():
                task.cancel()
        if self.start_task is not None and not self.start_task.done():
            if not self.starting:
                self.start_task.cancel()  # still waiting for its turn: nothing to orphan
            # Let a start finish before closing, so a half-spawned process is not orphaned.
            with contextlib.suppress(BaseException):
                await asyncio.shield(self.start_task)
        if self.upstream is not None:
            try:
                await self.upstream.close()
            except Exception as exc:
                log.warning("server %s: close failed: %s", self.slug, exc)

    def status(self) -> dict[str, rpc.JSONLike]:
        """Its entry in /readyz (and the console's row)."""
        out: dict[str, rpc.JSONLike] = {"transport": self.server.transport}
        if self.provisional:
            out["status"] = "starting"
        elif self.up:
            out["status"] = "healthy"
        elif self.reason == "starting" and not self.blocked:
            out["status"] = "starting"
        else:
            out["status"] = "degraded"
            out["reason"] = self.why_down
        if self.tools is not None:
            out["tools"] = len(self.table_tools())
            withheld = self.withheld()
            if withheld:
                out["withheld"] = withheld
        # The era the gateway speaks to the server, and why (spec.protocolEra: auto decides).
        out["eraPolicy"] = self.server.protocol_era
        era = getattr(self.upstream, "era", None)
        if era is not None:
            out["era"] = era
            version = getattr(self.upstream, "protocol_version", None)
            if version is not None:
                out["protocolVersion"] = version
            # auto, a server of both eras: 2026-07-28 clients' calls go in 2026-07-28.
            if era == "handshake" and getattr(self.upstream, "modern_hop", None):
                out["modernCalls"] = True
        return out

    def table_tools(self) -> list[str]:
        # exposed() keeps only the tools named with a string
        return [cast(str, t["name"]) for t in _catalog.exposed(self.server, self.tools or ())]

    def withheld(self) -> dict[str, str]:
        """Tools its pins withhold (server's own name -> changed | unpinned)."""
        return dict(_catalog.withheld(self.server, self.tools or ()))


class Upstreams:
    """Starts, discovers, watches and closes the upstream clients (see the module docstring)."""

    def __init__(self, *, factory: Factory | None, secrets: SecretSource, workdir: Path,
                 health_interval: float, metrics: Metrics | None,
                 on_change: Callable[[Handle], None],
                 on_notification: Callable[[Handle, rpc.JSONObject], None] | None) -> None:
        if factory is None:
            from mcpyard.gateway import upstream

            factory = upstream.create
        self._factory: Factory = factory
        self._secrets = secrets
        self._workdir = workdir
        self.health_interval = health_interval
        self._metrics = metrics
        self._on_change = on_change
        """Told when what a handle serves changed (the runtime builds a new snapshot)."""
        self._pass_on = on_notification
        """Where the notifications the lifecycle does not handle itself go (the relays:
        progress and resource updates)."""
        self.handles: set[Handle] = set()
        """Every handle started (retired ones too, until the end)."""
        self._tasks: set[asyncio.Task[object]] = set()
        self._discoveries = asyncio.Semaphore(DISCOVERIES)
        """Starts and tool discoveries in flight: 1,000 workspaces of 5 servers each would
        otherwise connect to all 5,000 upstreams at once (and retry the dead ones all at once),
        starving the loop that serves requests and follows the config Secrets, and holding
        every attempt's buffers at once (the gateway's peak memory)."""

    def report(self, handle: Handle) -> None:
        """Tell the metrics whether the server serves."""
        if self._metrics is not None:
            self._metrics.set_upstream(handle.workspace, handle.slug, handle.up,
                                      withheld=len(handle.withheld()))

    def start(self, handle: Handle) -> None:
        """Create the server's client and start it, then discover what it serves."""
        self.handles.add(handle)
        self.report(handle)
        if handle.blocked:
            log.warning("workspace %s: server %s not started: %s", handle.workspace,
                        handle.slug, handle.blocked)
            return
        try:
            handle.upstream = self._factory(
                handle.server, secrets=self._secrets, workdir=self._workdir,
                on_notification=functools.partial(self._on_notification, handle))
        except Exception as exc:
            handle.reason = _clean(exc)
            log.error("workspace %s: server %s cannot be created: %s", handle.workspace,
                      handle.slug, handle.reason)
            return
        handle.start_task = self.spawn(self._boot(handle))

    async def _boot(self, handle: Handle) -> None:
        assert handle.upstream is not None
        async with self._discoveries:
            if handle.retired:
                return
            handle.starting = True
            await handle.upstream.start()
        if handle.retired:
            return
        await self._discover(handle)

    def discover_soon(self, handle: Handle) -> None:
        if handle.retired or handle.upstream is None:
            return
        if handle.discovering is not None and not handle.discovering.done():
            handle.rediscover = True
            return
        handle.discovering = self.spawn(self._discover(handle))

    async def _discover(self, handle: Handle) -> None:
        """Fetch the server's tool list with the gateway's own session (owner=None)."""
        while True:
            handle.rediscover = False
            try:
                async with self._discoveries:
                    # The tool list first: a server that is down fails there, once (asked in
                    # parallel, the other lists each tried to connect again, and went on
                    # after the first had failed).
                    tools = await self._tools_or_none(handle)
                    lists = await self._list_catalog(handle)
            except (errors.MCPyardError, OSError, TimeoutError) as exc:
                self.mark_down(handle, _clean(exc))
                return
            was_down = not handle.up or handle.provisional
            handle.tools, handle.up, handle.failures = tuple(tools), True, 0
            handle.provisional = False
            handle.lists = lists
            if was_down:
                handle.reason = None
                log.info("workspace %s: server %s is serving %d tools", handle.workspace,
                         handle.slug, len(handle.table_tools()))
            self._on_change(handle)
            if not handle.rediscover:
                return

    async def _tools_or_none(self, handle: Handle) -> list[rpc.JSONObject]:
        try:
            return await self._list_all(handle, "tools/list", "tools")
        except errors.UpstreamRPCError as exc:
            # A server without tools (or one refusing tools/list) serves none here.
            log.warning("workspace %s: server %s: tools/list failed: %s", handle.workspace,
                        handle.slug, exc.rpc_message)
            handle.reason = f"tools/list failed: {exc.rpc_message}"
            return []

    async def _list_all(self, handle: Handle, method: str, key: str) -> list[rpc.JSONObject]:
        items: list[rpc.JSONObject] = []
        cursor = None
        for _ in range(_MAX_TOOL_PAGES):
            params = {"cursor": cursor} if cursor else None
            res = await handle.request(method, params, None, handle.server.timeout_seconds)
            page = res.get(key)
            if isinstance(page, list):
                items.extend(t for t in page if isinstance(t, dict))
            cursor = res.get("nextCursor")
            if not isinstance(cursor, str) or not cursor:
                break
        return items

    async def _list_catalog(self, handle: Handle) -> dict[str, tuple[rpc.JSONObject, ...]]:
        """The server's prompts, resources and templates, for the kinds it serves.

        The server's advertised capabilities decide when it has any; a server that advertised
        nothing (or whose client cannot say) is asked, and "method not found" means none.
        """
        caps = capabilities(handle)
        kinds = [k for k in _catalog.KINDS if caps is None
                 or (k.key == "prompts" and "prompts" in caps)
                 or (k.key != "prompts" and "resources" in caps)]

        async def one(kind: _catalog.Kind) -> tuple[str, tuple[rpc.JSONObject, ...]] | None:
            try:
                return kind.key, tuple(await self._list_all(handle, kind.method, kind.key))
            except errors.UpstreamRPCError as exc:
                if caps is not None:
                    log.warning("workspace %s: server %s: %s failed: %s", handle.workspace,
                                handle.slug, kind.method, exc.rpc_message)
                return None

        found = await asyncio.gather(*(one(k) for k in kinds))
        return dict(f for f in found if f is not None)

    def mark_down(self, handle: Handle, reason: str) -> None:
        handle.failures += 1
        handle.retry_at = time.monotonic() + retry_delay(self.health_interval, handle.failures)
        changed = handle.up or handle.provisional or handle.reason != reason
        handle.up, handle.reason, handle.provisional = False, reason, False
        if changed:
            log.error("workspace %s: server %s is degraded: %s", handle.workspace, handle.slug,
                      reason)
            # A server that failed again for the same reason changes nothing anyone sees: no
            # new snapshot (5,000 dead servers retried would rebuild their workspaces for
            # nothing).
            self._on_change(handle)

    async def _on_notification(self, handle: Handle, slug: str, message: rpc.JSONObject) -> None:
        method = message.get("method")
        if method == RESTARTED:
            # A new process of the server: discover again; clients hear of what changed.
            self.discover_soon(handle)
        elif method in _REDISCOVER:
            # The upstream says a list changed: clients hear of it after the rediscovery, each
            # of the lists that changed for it (a tool it may not see is no news to it).
            self.discover_soon(handle)
        elif self._pass_on is not None:
            self._pass_on(handle, message)

    async def run_health(self, handles: Callable[[], Iterable[Handle]]) -> None:
        """Retry the servers among ``handles()`` that are down, with backoff, so they come
        back without a reload.

        At most ``DISCOVERIES`` retries are in flight, the most overdue first: thousands of
        dead servers due at once are not thousands of tasks started in one turn of the loop
        (that turn alone held every request and the config Secrets' watch for a second on a
        loaded machine); the others wait for the next look, a fraction of a second later.
        """
        retrying: set[asyncio.Task[None]] = set()
        while True:
            await asyncio.sleep(min(self.health_interval, 0.25))
            room = DISCOVERIES - len(retrying)
            if room <= 0:
                continue
            now = time.monotonic()
            due = [h for h in handles()
                   if not (h.up or h.blocked or h.upstream is None or now < h.retry_at
                           or (h.start_task is not None and not h.start_task.done())
                           or (h.discovering is not None and not h.discovering.done()))]
            if len(due) > room:
                due = sorted(due, key=lambda h: h.retry_at)[:room]
            for handle in due:
                task = handle.discovering = self.spawn(self._discover(handle))
                retrying.add(task)
                task.add_done_callback(retrying.discard)

    def retire(self, handles: Iterable[Handle]) -> None:
        """Handles no snapshot serves any more: each closes once its calls have drained."""
        for handle in handles:
            handle.retired = True
            if self._metrics is not None:
                self._metrics.forget_upstream(handle.workspace, handle.slug)
            if handle.inflight == 0:
                self._track(handle.close_soon())

    def spawn(self, coro: Coroutine[object, object, T]) -> asyncio.Task[T]:
        """A background task, cancelled by :meth:`close`, whose failure is logged."""
        task = asyncio.get_running_loop().create_task(coro)
        return self._track(task)

    def _track(self, task: asyncio.Task[T]) -> asyncio.Task[T]:
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[object]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task failed", exc_info=task.exception())

    async def close(self, handles: Iterable[Handle]) -> None:
        """Close ``handles`` and every handle ever started, and cancel the tasks left; leaves
        no process behind."""
        every = self.handles | set(handles)
        for handle in every:
            handle.retired = True
        await asyncio.gather(*(h.close_soon() for h in every), return_exceptions=True)
        pending = [t for t in self._tasks if not t.done()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


def retry_delay(base: float, failures: int) -> float:
    """Seconds before a server that failed ``failures`` times in a row is tried again:
    exponential from ``base``, capped at ``RETRY_MAX``, jittered down by up to half, so that
    servers that went down together (a cold start, an outage) are not retried together."""
    return min(RETRY_MAX, base * 2.0 ** min(failures - 1, 16)) * random.uniform(0.5, 1.0)


def capabilities(handle: Handle) -> rpc.JSONObject | None:
    """The capabilities the server advertised, None when its client cannot tell."""
    caps = getattr(handle.upstream, "capabilities", None)
    return caps if isinstance(caps, dict) else None


def _clean(exc: BaseException) -> str:
    return str(exc) or exc.__class__.__name__
