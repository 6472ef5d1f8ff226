"""The live configuration: each workspace's config, its upstreams, tool table and members.

A :class:`Live` is an immutable snapshot of one workspace; every change (a reload, a server
coming up or going down, a server's tool list changing) builds a new one and swaps it in with
one dict assignment, so a request sees one consistent snapshot from start to end. Upstreams
(:class:`mcpyard.gateway._upstreams.Handle`) outlive snapshots: a reload keeps the ones whose
ServerConfig and secret values are unchanged, and retires the others (their lifecycle is
:class:`mcpyard.gateway._upstreams.Upstreams`'). :meth:`Runtime.publish` is the rule every
configuration source serves through.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from mcpyard import compiler, errors
from mcpyard.compiler.config import MemberConfig, ServerConfig, WorkspaceConfig
from mcpyard.gateway import _catalog, _redact
from mcpyard.gateway._upstreams import Factory, Handle, Upstreams
from mcpyard.gateway.downstream import _auth
from mcpyard.gateway.downstream._sessions import SessionStore
from mcpyard.gateway.services._metrics import Metrics
from mcpyard.gateway.upstream._base import (
    SecretSource,
)
from mcpyard.mcp import jsonrpc

log = logging.getLogger("mcpyard.gateway")

LIST_CHANGED = jsonrpc.notification("notifications/tools/list_changed")


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
        return m is not None and m.can_sign_in(datetime.now(UTC))


class Runtime:
    """Every workspace the gateway serves, their upstreams, and the downstream sessions."""

    def __init__(self, *, factory: Factory | None, secrets: SecretSource, workdir: Path,
                 session_idle_seconds: float, health_interval: float,
                 metrics: Metrics | None = None,
                 on_notification: Callable[[Handle, jsonrpc.JSONObject], None] | None = None
                 ) -> None:
        self.secrets = secrets
        """Reveals the values the servers inject: the configuration source's vault."""
        self.metrics = metrics
        """Told when an upstream comes up or goes down, and when sessions open and close."""
        self.live: dict[str, Live] = {}
        self.sessions = SessionStore(
            session_idle_seconds, on_change=self._signal,
            on_open=metrics.session_opened if metrics is not None else None,
            on_close=metrics.session_closed if metrics is not None else None)
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
        self.redactor = _redact.NONE
        """Blanks the values the servers of this runtime inject (rebuilt by :meth:`apply`)."""
        self._closed = False
        self._digests: Mapping[str, str] = {}
        """The secret values' digests of the last apply (a change rebuilds the redactor)."""
        self.upstreams = Upstreams(factory=factory, secrets=secrets, workdir=workdir,
                                   health_interval=health_interval, metrics=metrics,
                                   on_change=self._refresh, on_notification=on_notification)
        """The lifecycle of every server's client (start, discovery, health, retirement)."""

    # -- configuration -------------------------------------------------------------------

    def apply(self, configs: Mapping[str, WorkspaceConfig], *, keep: Collection[str] = (),
              secrets: SecretState | None = None, commit: str | None = None) -> None:
        """Serve ``configs``; keep the workspaces in ``keep`` as they are; drop the rest.

        ``commit`` is the git commit the configuration was read from, for call records."""
        secrets = secrets or SecretState()
        changed = False
        for name in [n for n in self.live if n not in configs and n not in keep]:
            self._remove(name)
            changed = True
        for name, config in configs.items():
            if name in keep:
                continue
            old = self.live.get(name)
            if old is not None and (old.config is config or old.config == config) and (
                    old.commit == commit) and all(
                    h.same(h.server, secrets.digest(h.server), secrets.blocked(h.server))
                    for h in old.handles.values()):
                continue
            self._swap(name, config, old, secrets, commit)
            changed = True
        if changed or secrets.digests != self._digests:
            self._rebuild_redactor()
        self._digests = secrets.digests
        self.loaded = True
        self.generation += 1
        self._signal()

    def publish(self, configs: Mapping[str, WorkspaceConfig],
                problems: Mapping[str, Collection[str]], general: Collection[str], *,
                secrets: SecretState | None = None, commit: str | None = None,
                held: Collection[compiler.Held] = (), hold_workspaces: bool = True) -> list[str]:
        """Serve what a source read: the last-good rule of every source; the workspaces held
        back whole.

        With ``hold_workspaces`` a workspace named in ``problems`` that serves keeps its last
        good configuration (its entry in ``configs``, if any, is ignored) and one that never
        served is not served: the rule for configurations that cannot be read at all (a
        cluster's config Secret). Without it, ``configs`` already hold back only the broken
        resources (``held``: the compiler's rule for a folder). Problems show in /readyz: per
        workspace, and ``general`` for the whole load.
        """
        keep = sorted(name for name in problems if name in self.live) if hold_workspaces else []
        self.held = {name: list(lines) for name, lines in problems.items()}
        by_workspace: dict[str, list[compiler.Held]] = defaultdict(list)
        for h in held:
            by_workspace[h.workspace].append(h)
        self.held_resources = dict(by_workspace)
        self.reload_errors = list(general)
        self.apply(configs, keep=keep, secrets=secrets, commit=commit)
        names = sorted(self.live)
        served = ", ".join(names[:10]) or "nothing"
        if len(names) > 10:  # 1,000 names at every step of a cold start say nothing
            served += f" and {len(names) - 10} more"
        log.info("configuration %d applied: serving %s%s", self.generation, served,
                 f"; {len(keep)} held at their last good config" if keep else "")
        return keep

    def hold_all(self, general: Collection[str]) -> None:
        """A load that failed as a whole: every workspace keeps what it serves."""
        self.reload_errors = list(general)
        self.apply({}, keep=list(self.live))

    def note_problems(self, general: Collection[str]) -> None:
        """What keeps the source from loading at all (shown in /readyz), or ``[]``."""
        self.reload_errors = list(general)

    def secrets_in_use(self) -> set[str]:
        """The identities of every secret value a serving workspace injects."""
        return {ref.identity for live in self.live.values()
                for ref in live.config.secret_refs()}

    def _rebuild_redactor(self) -> None:
        """Know every value a server of this runtime injects (retired ones too: their
        in-flight calls may still answer)."""
        values = set()
        for handle in self.upstreams.handles:
            if handle.retired and handle.inflight == 0:
                continue
            for injection in handle.server.injections:
                with contextlib.suppress(errors.MCPyardError, KeyError, ValueError):
                    values.add(self.secrets.reveal(injection.ref))
        self.redactor = _redact.Redactor(values)

    def _remove(self, name: str) -> None:
        removed = self.live.pop(name)
        log.info("workspace %s: removed", name)
        self.upstreams.retire(removed.handles.values())
        self.upstreams.spawn(self.sessions.end_where(lambda s: s.workspace == name))

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
            handle = Handle(name, server, digest=digest, blocked=blocked,
                            lifecycle=self.upstreams)
            if prev is not None and not blocked:
                handle.stand_in_for(prev)
            handles[server.slug] = handle
            fresh.append(handle)
        if old is not None:
            kept = set(handles.values())
            self.upstreams.retire(h for h in old.handles.values() if h not in kept)
        live = Live(config, handles, commit)
        self.live[name] = live
        inactive = len(config.members) - live.active_members()
        log.info("workspace %s: serving revision %s (%d servers, %d members%s)", name,
                 config.revision or "-", len(config.servers), live.active_members(),
                 f"; {inactive} disabled, expired or without a token" if inactive else "")
        for handle in fresh:
            self.upstreams.start(handle)
        if old is not None:
            self._after_swap(name, old, live)

    def _after_swap(self, name: str, old: Live, new: Live) -> None:
        # Each connected member hears of the lists that changed for it, once: a list another
        # member gained, or a server restarting with the same tools, is no news to it.
        notes: dict[str, list[jsonrpc.Message]] = {}
        for session in self.sessions.of_workspace(name):
            if session.member not in notes:
                notes[session.member] = changed_lists(old, new, session.member)
            for note in notes[session.member]:
                session.push(note)
        if old.config.members != new.config.members:
            # Close the streams of revoked members now; their requests fail auth anyway.
            self.upstreams.spawn(self.sessions.end_where(
                lambda s: s.workspace == name and not new.member_active(s.member)))

    def _refresh(self, handle: Handle) -> None:
        """Rebuild the snapshot of the handle's workspace after the handle changed."""
        old = self.live.get(handle.workspace)
        if old is None or old.handles.get(handle.slug) is not handle:
            return
        new = Live(old.config, old.handles, old.commit)
        self.live[handle.workspace] = new
        self.upstreams.report(handle)
        self._after_swap(handle.workspace, old, new)
        self._signal()

    def _signal(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    # -- bookkeeping ---------------------------------------------------------------------

    async def close(self) -> None:
        """End every session and close every upstream; leaves no process behind."""
        if self._closed:
            return
        self._closed = True
        await self.sessions.close()
        handles = [h for live in self.live.values() for h in live.handles.values()]
        self.live.clear()
        await self.upstreams.close(handles)

    async def run_health(self) -> None:
        """Retry servers that are down, with backoff, so they come back without a reload."""
        await self.upstreams.run_health(
            lambda: [h for live in list(self.live.values()) for h in live.handles.values()])

    # -- readiness -----------------------------------------------------------------------

    def readiness(self) -> tuple[bool, dict[str, jsonrpc.JSONLike]]:
        workspaces: dict[str, jsonrpc.JSONLike] = {}
        serving = False
        for name, live in sorted(self.live.items()):
            servers = {slug: h.status() for slug, h in sorted(live.handles.items())}
            degraded = [s for s, st in servers.items() if st["status"] == "degraded"]
            detail: dict[str, jsonrpc.JSONLike] = {
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
        body: dict[str, jsonrpc.JSONLike] = {
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


def _held(h: compiler.Held) -> dict[str, str]:
    return {"resource": h.ref,
            "serving": "last good version" if h.serving else "left out",
            "reason": h.reason, "message": h.message}


_CATALOG_NOTES = ((_catalog.PROMPTS,), (_catalog.RESOURCES, _catalog.TEMPLATES))


def changed_lists(old: Live, new: Live, member: str) -> list[jsonrpc.Message]:
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


def digest_value(key: bytes, identity: str, value: str) -> str:
    return hashlib.blake2b(f"{identity}\0{value}".encode(), key=key, digest_size=16).hexdigest()
