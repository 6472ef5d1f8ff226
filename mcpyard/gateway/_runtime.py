"""The live configuration: each workspace's config, its upstreams, tool table and members.

A :class:`Live` is an immutable snapshot of one workspace; every change (a reload, a server
coming up or going down, a server's tool list changing) builds a new one and swaps it in with
one dict assignment, so a request sees one consistent snapshot from start to end. Upstreams
(:class:`Handle`) outlive snapshots: a reload keeps the ones whose ServerConfig and secret
values are unchanged, and closes the others once their in-flight calls have drained.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcpyard import compiler, errors
from mcpyard.compiler.config import MemberConfig, ServerConfig, WorkspaceConfig
from mcpyard.gateway import _auth, _catalog, _redact
from mcpyard.gateway._metrics import Metrics
from mcpyard.gateway._sessions import SessionStore
from mcpyard.gateway.upstream._base import (
    RESTARTED,
    Owner,
    SecretSource,
    Upstream,
    UpstreamRPCError,
)
from mcpyard.mcp import jsonrpc

log = logging.getLogger("mcpyard.gateway")

LIST_CHANGED = jsonrpc.notification("notifications/tools/list_changed")
_REDISCOVER = frozenset({"notifications/tools/list_changed", "notifications/prompts/list_changed",
                         "notifications/resources/list_changed"})
_MAX_TOOL_PAGES = 100


@dataclass(frozen=True)
class SecretState:
    """What the last decryption found, by EncryptedSecret and by value identity."""

    failures: Mapping[tuple[str, str], str] = field(default_factory=dict)
    """(namespace, name) -> why it failed (free of secrets)."""
    digests: Mapping[str, str] = field(default_factory=dict)
    """identity -> a keyed digest of the value, to notice a changed value."""

    def blocked(self, server: ServerConfig) -> str | None:
        for inj in server.injections:
            failure = self.failures.get((inj.ref.namespace, inj.ref.name))
            if failure is not None:
                return f"EncryptedSecret {inj.ref.name}: {failure}"
        return None

    def digest(self, server: ServerConfig) -> str:
        return "|".join(self.digests.get(i.ref.identity, "-") for i in server.injections)


class Handle:
    """One upstream server of one workspace, kept across reloads while its config holds."""

    def __init__(self, workspace: str, server: ServerConfig, *, digest: str,
                 blocked: str | None) -> None:
        self.workspace = workspace
        self.server = server
        self.slug = server.slug
        self.digest = digest
        self.blocked = blocked
        self.upstream: Upstream | None = None
        self.tools: tuple[dict[str, Any], ...] | None = None
        """The last tool list the server gave (kept while it is down, to route calls)."""
        self.lists: dict[str, tuple[dict[str, Any], ...]] = {}
        """The last prompt / resource / template lists (by result key) the server gave; a kind
        the server does not serve is absent."""
        self.up = False
        self.reason: str | None = blocked or "starting"
        self.inflight = 0
        self.retired = False
        self.failures = 0
        self.retry_at = 0.0
        self.start_task: asyncio.Task[None] | None = None
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
        return self.server == server and self.digest == digest and self.blocked == blocked

    @property
    def why_down(self) -> str:
        if self.blocked:
            return self.blocked
        last = self.upstream.last_error if self.upstream is not None else None
        return self.reason or last or "not serving"

    async def request(self, method: str, params: dict[str, Any] | None, owner: Owner | None,
                      timeout: float | None = None, *, relay: Any = None) -> dict[str, Any]:
        upstream = self.upstream
        if upstream is None or self.closing is not None:
            raise errors.UpstreamError(self.why_down)
        self.inflight += 1
        try:
            if relay is not None:
                return await upstream.request(method, params, owner=owner, timeout=timeout,
                                              relay=relay)
            return await upstream.request(method, params, owner=owner, timeout=timeout)
        finally:
            self.inflight -= 1
            if self.retired and self.inflight == 0:
                self.close_soon()

    async def notify(self, method: str, params: dict[str, Any] | None, owner: Owner) -> None:
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
            # Let a start finish before closing, so a half-spawned process is not orphaned.
            with contextlib.suppress(BaseException):
                await asyncio.shield(self.start_task)
        if self.upstream is not None:
            try:
                await self.upstream.close()
            except Exception as exc:
                log.warning("server %s: close failed: %s", self.slug, exc)

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"transport": self.server.transport}
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
        return out

    def table_tools(self) -> list[str]:
        return [t["name"] for t in _catalog.exposed(self.server, self.tools or ())]

    def withheld(self) -> dict[str, str]:
        """Tools its pins withhold (server's own name -> changed | unpinned)."""
        return dict(_catalog.withheld(self.server, self.tools or ()))


class Live:
    """One workspace as it serves right now (immutable; replaced on any change)."""

    __slots__ = ("_tables", "available", "by_name", "commit", "config", "handles", "members",
                 "table", "views")

    def __init__(self, config: WorkspaceConfig, handles: dict[str, Handle],
                 commit: str | None = None) -> None:
        self.config = config
        self.handles = handles
        self.commit = commit
        """The git commit of the manifests that gave ``config`` (None outside a checkout)."""
        self.table = _catalog.tools((h.server, h.tools) for h in handles.values()
                                    if h.tools is not None)
        self.available = frozenset(slug for slug, h in handles.items() if h.up)
        self.members = _auth.index(config.namespace, config.members)
        self.by_name: dict[str, MemberConfig] = {m.name: m for m in config.members}
        self.views: dict[str, _catalog.View] = {}
        self._tables: dict[str, tuple[_catalog.Table, dict[str, _catalog.View]]] = {}

    def view(self, member: MemberConfig) -> _catalog.View:
        view = self.views.get(member.name)
        if view is None:
            view = self.views[member.name] = self.table.view(member, self.available,
                                                             self.config.tool_search)
        return view

    def catalog(self, kind: _catalog.Kind) -> _catalog.Table:
        """The prompt / resource / template table, built on first use."""
        built = self._tables.get(kind.key)
        if built is None:
            table = _catalog.Table(kind, ((slug, h.lists[kind.key])
                                          for slug, h in self.handles.items()
                                          if kind.key in h.lists))
            built = self._tables[kind.key] = (table, {})
        return built[0]

    def catalog_view(self, kind: _catalog.Kind, member: MemberConfig) -> _catalog.View:
        table = self.catalog(kind)
        views = self._tables[kind.key][1]
        view = views.get(member.name)
        if view is None:
            view = views[member.name] = table.view(member, self.available)
        return view

    def serves(self, key: str) -> bool:
        """Whether any server of the workspace serves prompts / resources (by result key)."""
        return any(key in h.lists for h in self.handles.values())

    def active_members(self) -> int:
        """Members who can log in now (not disabled, not expired, with a token): what the
        banner, the log and /readyz count."""
        return sum(1 for m in self.config.members if self.member_active(m.name))

    def member_active(self, name: str) -> bool:
        m = self.by_name.get(name)
        return m is not None and m.token_hash is not None and not m.disabled and (
            m.expires is None or m.expires.timestamp() > time.time())


Factory = Callable[..., Upstream]


class Runtime:
    """Every workspace the gateway serves, their upstreams, and the downstream sessions."""

    def __init__(self, *, factory: Factory | None, secrets: SecretSource, workdir: Path,
                 session_idle_seconds: float, health_interval: float,
                 metrics: Metrics | None = None) -> None:
        self._factory = factory
        self.secrets = secrets
        self.workdir = workdir
        self.metrics = metrics
        """Told when an upstream comes up or goes down, and when sessions open and close."""
        self.live: dict[str, Live] = {}
        self.sessions = SessionStore(
            session_idle_seconds, on_change=self._signal,
            on_open=metrics.session_opened if metrics is not None else None,
            on_close=metrics.session_closed if metrics is not None else None)
        self.health_interval = health_interval
        self.generation = 0
        """Counts applied reloads; /readyz shows it."""
        self.reload_errors: list[str] = []
        """Why the last reload could not apply everything (``file: resource: field: msg``)."""
        self.held: dict[str, list[str]] = {}
        """The problems of each workspace's last reload (it may be kept whole at its last good
        config: the cluster source, for a config Secret that cannot be read)."""
        self.held_resources: dict[str, list[compiler.Held]] = {}
        """The resources held back in each workspace (:class:`mcpyard.compiler.Held`): kept
        at their last good version or left out; the rest of the workspace applied."""
        self.loaded = False
        self.changed = asyncio.Event()
        """Set (and replaced) after each change of a snapshot or of the sessions."""
        self._handles: set[Handle] = set()
        self.redactor = _redact.NONE
        """Blanks the values the servers of this runtime inject (rebuilt by :meth:`apply`)."""
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self.on_upstream_notification: Callable[[Handle, dict[str, Any]], None] | None = None
        """Where the notifications the runtime does not handle itself go (the router's relay:
        progress, log messages, resource updates)."""

    # -- configuration -------------------------------------------------------------------

    def factory(self) -> Factory:
        if self._factory is None:
            from mcpyard.gateway import upstream

            self._factory = upstream.create
        return self._factory

    def apply(self, configs: Mapping[str, WorkspaceConfig], *, keep: Collection[str] = (),
              secrets: SecretState | None = None, commit: str | None = None) -> None:
        """Serve ``configs``; keep the workspaces in ``keep`` as they are; drop the rest.

        ``commit`` is the git commit the configuration was read from, for call records."""
        secrets = secrets or SecretState()
        for name in [n for n in self.live if n not in configs and n not in keep]:
            self._remove(name)
        for name, config in configs.items():
            if name in keep:
                continue
            old = self.live.get(name)
            if old is not None and old.config == config and old.commit == commit and all(
                    h.same(h.server, secrets.digest(h.server), secrets.blocked(h.server))
                    for h in old.handles.values()):
                continue
            self._swap(name, config, old, secrets, commit)
        self._rebuild_redactor()
        self.loaded = True
        self.generation += 1
        self._signal()

    def _rebuild_redactor(self) -> None:
        """Know every value a server of this runtime injects (retired ones too: their
        in-flight calls may still answer)."""
        values = set()
        for handle in self._handles:
            if handle.retired and handle.inflight == 0:
                continue
            for injection in handle.server.injections:
                with contextlib.suppress(errors.MCPyardError, KeyError, ValueError):
                    values.add(self.secrets.reveal(injection.ref))
        self.redactor = _redact.Redactor(values)

    def _remove(self, name: str) -> None:
        removed = self.live.pop(name)
        log.info("workspace %s: removed", name)
        self._retire(removed.handles.values())
        self._spawn(self.sessions.end_where(lambda s: s.workspace == name))

    def _swap(self, name: str, config: WorkspaceConfig, old: Live | None,
              secrets: SecretState, commit: str | None) -> None:
        handles: dict[str, Handle] = {}
        fresh: list[Handle] = []
        for server in config.servers:
            digest, blocked = secrets.digest(server), secrets.blocked(server)
            prev = old.handles.get(server.slug) if old is not None else None
            if prev is not None and prev.same(server, digest, blocked):
                handles[server.slug] = prev
                continue
            handle = Handle(name, server, digest=digest, blocked=blocked)
            if prev is not None and not blocked:
                handle.stand_in_for(prev)
            handles[server.slug] = handle
            fresh.append(handle)
        if old is not None:
            kept = set(handles.values())
            self._retire(h for h in old.handles.values() if h not in kept)
        live = Live(config, handles, commit)
        self.live[name] = live
        inactive = len(config.members) - live.active_members()
        log.info("workspace %s: serving revision %s (%d servers, %d members%s)", name,
                 config.revision or "-", len(config.servers), live.active_members(),
                 f"; {inactive} disabled, expired or without a token" if inactive else "")
        for handle in fresh:
            self._start(handle)
        if old is not None:
            self._after_swap(name, old, live)

    def _after_swap(self, name: str, old: Live, new: Live) -> None:
        # Each connected member hears of the lists that changed for it, once: a list another
        # member gained, or a server restarting with the same tools, is no news to it.
        notes: dict[str, list[dict[str, Any]]] = {}
        for session in self.sessions.of_workspace(name):
            if session.member not in notes:
                notes[session.member] = changed_lists(old, new, session.member)
            for note in notes[session.member]:
                session.push(note)
        if old.config.members != new.config.members:
            # Close the streams of revoked members now; their requests fail auth anyway.
            self._spawn(self.sessions.end_where(
                lambda s: s.workspace == name and not new.member_active(s.member)))

    def _refresh(self, handle: Handle) -> None:
        """Rebuild the snapshot of the handle's workspace after the handle changed."""
        old = self.live.get(handle.workspace)
        if old is None or old.handles.get(handle.slug) is not handle:
            return
        new = Live(old.config, old.handles, old.commit)
        self.live[handle.workspace] = new
        self._report(handle)
        self._after_swap(handle.workspace, old, new)
        self._signal()

    def _retire(self, handles: Any) -> None:
        for handle in handles:
            handle.retired = True
            if self.metrics is not None:
                self.metrics.forget_upstream(handle.workspace, handle.slug)
            if handle.inflight == 0:
                self._track(handle.close_soon())

    def _signal(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    # -- upstream lifecycle --------------------------------------------------------------

    def _report(self, handle: Handle) -> None:
        if self.metrics is not None:
            self.metrics.set_upstream(handle.workspace, handle.slug, handle.up,
                                      withheld=len(handle.withheld()))

    def _start(self, handle: Handle) -> None:
        self._handles.add(handle)
        self._report(handle)
        if handle.blocked:
            log.warning("workspace %s: server %s not started: %s", handle.workspace,
                        handle.slug, handle.blocked)
            return
        try:
            handle.upstream = self.factory()(
                handle.server, secrets=self.secrets, workdir=self.workdir,
                on_notification=functools.partial(self._on_notification, handle))
        except Exception as exc:
            handle.reason = _clean(exc)
            log.error("workspace %s: server %s cannot be created: %s", handle.workspace,
                      handle.slug, handle.reason)
            return
        handle.start_task = self._spawn(self._boot(handle))

    async def _boot(self, handle: Handle) -> None:
        assert handle.upstream is not None
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
        handle.discovering = self._spawn(self._discover(handle))

    async def _discover(self, handle: Handle) -> None:
        """Fetch the server's tool list with the gateway's own session (owner=None)."""
        while True:
            handle.rediscover = False
            try:
                tools, lists = await asyncio.gather(self._tools_or_none(handle),
                                                    self._list_catalog(handle))
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
            self._refresh(handle)
            if not handle.rediscover:
                return

    async def _tools_or_none(self, handle: Handle) -> list[dict[str, Any]]:
        try:
            return await self._list_all(handle, "tools/list", "tools")
        except UpstreamRPCError as exc:
            # A server without tools (or one refusing tools/list) serves none here.
            log.warning("workspace %s: server %s: tools/list failed: %s", handle.workspace,
                        handle.slug, exc.rpc_message)
            handle.reason = f"tools/list failed: {exc.rpc_message}"
            return []

    async def _list_all(self, handle: Handle, method: str, key: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
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

    async def _list_catalog(self, handle: Handle) -> dict[str, tuple[dict[str, Any], ...]]:
        """The server's prompts, resources and templates, for the kinds it serves.

        The server's advertised capabilities decide when it has any; a server that advertised
        nothing (or whose client cannot say) is asked, and "method not found" means none.
        """
        caps = capabilities(handle)
        kinds = [k for k in _catalog.KINDS if caps is None
                 or (k.key == "prompts" and "prompts" in caps)
                 or (k.key != "prompts" and "resources" in caps)]

        async def one(kind: _catalog.Kind) -> tuple[str, tuple[dict[str, Any], ...]] | None:
            try:
                return kind.key, tuple(await self._list_all(handle, kind.method, kind.key))
            except UpstreamRPCError as exc:
                if caps is not None:
                    log.warning("workspace %s: server %s: %s failed: %s", handle.workspace,
                                handle.slug, kind.method, exc.rpc_message)
                return None

        found = await asyncio.gather(*(one(k) for k in kinds))
        return dict(f for f in found if f is not None)

    def mark_down(self, handle: Handle, reason: str) -> None:
        handle.failures += 1
        handle.retry_at = time.monotonic() + min(60.0, self.health_interval * 2 ** min(
            handle.failures - 1, 6))
        first = handle.up or handle.reason != reason
        handle.up, handle.reason, handle.provisional = False, reason, False
        if first:
            log.error("workspace %s: server %s is degraded: %s", handle.workspace, handle.slug,
                      reason)
        self._refresh(handle)

    async def _on_notification(self, handle: Handle, slug: str, message: dict[str, Any]) -> None:
        method = message.get("method")
        if method == RESTARTED:
            # A new process of the server: discover again; clients hear of what changed.
            self.discover_soon(handle)
        elif method in _REDISCOVER:
            # The upstream says a list changed: clients hear of it after the rediscovery, each
            # of the lists that changed for it (a tool it may not see is no news to it).
            self.discover_soon(handle)
        elif self.on_upstream_notification is not None:
            self.on_upstream_notification(handle, message)

    async def run_health(self) -> None:
        """Retry servers that are down, with backoff, so they come back without a reload."""
        while True:
            await asyncio.sleep(self.health_interval)
            now = time.monotonic()
            for live in list(self.live.values()):
                for handle in live.handles.values():
                    if (handle.up or handle.blocked or handle.upstream is None
                            or now < handle.retry_at
                            or (handle.start_task is not None and not handle.start_task.done())
                            or (handle.discovering is not None
                                and not handle.discovering.done())):
                        continue
                    handle.discovering = self._spawn(self._discover(handle))

    # -- bookkeeping ---------------------------------------------------------------------

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        return self._track(task)

    def _track(self, task: asyncio.Task[Any]) -> asyncio.Task[Any]:
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task failed", exc_info=task.exception())

    def background(self, coro: Any) -> asyncio.Task[Any]:
        return self._spawn(coro)

    async def close(self) -> None:
        """End every session and close every upstream; leaves no process behind."""
        if self._closed:
            return
        self._closed = True
        await self.sessions.close()
        handles = {h for h in self._handles}
        for live in self.live.values():
            handles.update(live.handles.values())
        self.live.clear()
        for handle in handles:
            handle.retired = True
        await asyncio.gather(*(h.close_soon() for h in handles), return_exceptions=True)
        pending = [t for t in self._tasks if not t.done()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    # -- readiness -----------------------------------------------------------------------

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        workspaces: dict[str, Any] = {}
        serving = False
        for name, live in sorted(self.live.items()):
            servers = {slug: h.status() for slug, h in sorted(live.handles.items())}
            degraded = [s for s, st in servers.items() if st["status"] == "degraded"]
            detail: dict[str, Any] = {
                "status": "degraded" if degraded or name in self.held else "serving",
                "url": live.config.path,
                "revision": live.config.revision,
                "servers": servers,
                "tools": len([e for e in live.table.entries if e.slug in live.available]),
                "members": live.active_members(),
                "sessions": len(self.sessions.of_workspace(name)),
            }
            if name in self.held:
                detail["lastReloadError"] = self.held[name]
            if self.held_resources.get(name):
                detail["held"] = [_held(h) for h in self.held_resources[name]]
            workspaces[name] = detail
            serving = True
        body: dict[str, Any] = {
            "status": ("serving" if serving else "unavailable") if self.loaded else "loading",
            "generation": self.generation,
            "workspaces": workspaces,
        }
        if self.reload_errors:
            body["lastReloadError"] = self.reload_errors
        held = {n: p for n, p in self.held.items() if n not in self.live}
        if held:
            body["notServing"] = held
        # Upstream error text may quote what a server said, an echoed key included.
        return serving, self.redactor.value(body)


def _held(h: compiler.Held) -> dict[str, Any]:
    return {"resource": f"{h.namespace}/{h.kind}/{h.name}",
            "serving": "last good version" if h.serving else "left out",
            "reason": h.reason, "message": h.message}


_CATALOG_NOTES = ((_catalog.PROMPTS,), (_catalog.RESOURCES, _catalog.TEMPLATES))


def changed_lists(old: Live, new: Live, member: str) -> list[dict[str, Any]]:
    """The list_changed notifications ``member`` needs after ``old`` became ``new``: one per
    list whose items, as that member sees them, differ."""
    was, now = old.by_name.get(member), new.by_name.get(member)
    if now is None:
        return []  # gone: its sessions end
    if was is None:
        return [LIST_CHANGED, *(jsonrpc.notification(kinds[0].notification)
                                for kinds in _CATALOG_NOTES if new.serves(kinds[0].key))]
    out = [LIST_CHANGED] if old.view(was).items != new.view(now).items else []
    for kinds in _CATALOG_NOTES:
        if any(old.catalog_view(k, was).items != new.catalog_view(k, now).items
               for k in kinds):
            out.append(jsonrpc.notification(kinds[0].notification))
    return out


def capabilities(handle: Handle) -> dict[str, Any] | None:
    """The capabilities the server advertised, None when its client cannot tell."""
    caps = getattr(handle.upstream, "capabilities", None)
    return caps if isinstance(caps, dict) else None


def _clean(exc: BaseException) -> str:
    return str(exc) or exc.__class__.__name__


def digest_value(key: bytes, identity: str, value: str) -> str:
    return hashlib.blake2b(f"{identity}\0{value}".encode(), key=key, digest_size=16).hexdigest()
