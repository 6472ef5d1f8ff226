"""The operator's state while it runs: indexes, caches, and the queue of reconciles.

Created by the startup handler and kept on kopf's memo (``memo.runtime``); nothing here is a
module global. The indexes (:mod:`._informer`) hold every resource as compact JSON
(:class:`Stored`), keyed so that one workspace's resources are one lookup away (that is what
makes a reconcile incremental); a reconcile parses what it reads (:class:`Entry`).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import itertools
import json
import logging
import ssl
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping
from copy import deepcopy
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import httpx2

from mcpyard import errors, jsontypes, kube
from mcpyard.api import v1alpha1
from mcpyard.api._problem import Problem
from mcpyard.api.hub import HubEntry
from mcpyard.compiler.config import ServerConfig, WorkspaceConfig
from mcpyard.discovery import manifest
from mcpyard.operator import _source
from mcpyard.operator._secrets import SecretStore
from mcpyard.operator._settings import Settings

if TYPE_CHECKING:
    from mcpyard.operator._discovery import Scheduler
    from mcpyard.operator._informer import Indexes

NsName = tuple[str, str]
WorkKey = tuple[str, ...]
"""("ws", NAME) or ("secret", NAMESPACE, NAME)."""
ROTATE_ANNOTATION = "mcpyard.io/rotate-token"
log = logging.getLogger("mcpyard.operator")
DISCOVERY_CONCURRENCY = 8


@dataclass(frozen=True)
class Entry:
    """One resource as the indexes keep it: its body, and its model or why it has none."""

    body: kube.KubeObject
    resource: v1alpha1.Resource | None
    problems: tuple[Problem, ...] = ()

    @property
    def namespace(self) -> str:
        return jsontypes.text(self.body, "metadata", "namespace") or "default"

    @property
    def name(self) -> str:
        return jsontypes.text(self.body, "metadata", "name")

    @property
    def kind(self) -> str:
        return jsontypes.text(self.body, "kind")

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.namespace, self.kind, self.name)

    @property
    def deleting(self) -> bool:
        return bool(jsontypes.at(self.body, "metadata", "deletionTimestamp"))

    @property
    def generation(self) -> int | None:
        """``metadata.generation``: what its conditions' ``observedGeneration`` says."""
        value = jsontypes.at(self.body, "metadata", "generation")
        return value if isinstance(value, int) else None

    @property
    def workspace(self) -> str | None:
        return entry_workspace(self.body)


LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def _trimmed(body: kube.KubeObject) -> kube.KubeObject:
    # Without what no reconcile reads and what can dwarf the object (``managedFields``,
    # kubectl's copy of the whole object); a shallow copy, the rest shared with ``body``.
    raw = dict(body)
    meta = raw.get("metadata")
    if isinstance(meta, dict):
        meta = raw["metadata"] = dict(meta)
        meta.pop("managedFields", None)
        annotations = meta.get("annotations")
        if isinstance(annotations, dict):
            meta["annotations"] = {k: v for k, v in annotations.items() if k != LAST_APPLIED}
    return raw


def _parsed(raw: kube.KubeObject) -> Entry:
    try:
        return Entry(raw, v1alpha1.parse(raw))
    except errors.InvalidResource as exc:
        return Entry(raw, None, tuple(exc.problems))


def entry(body: kube.KubeObject) -> Entry:
    """A resource as a reconcile reads it: a copy of its body without ``managedFields`` and
    kubectl's last-applied copy, and its model (or why it has none)."""
    return _parsed(deepcopy(_trimmed(body)))


@dataclass(frozen=True, slots=True)
class Stored:
    """A resource as the indexes keep it between reconciles: its trimmed body as compact
    JSON (a fifth of the memory of its dicts and model, measured on a Member with status:
    1.3 against 6 KiB), parsed again by each reconcile that reads it (:meth:`load`)."""

    raw: bytes
    namespace: str
    name: str
    workspace: str | None
    secrets: tuple[str, ...] = ()
    """The EncryptedSecrets an MCPServer names (its index entries)."""

    def load(self) -> Entry:
        return _parsed(json.loads(self.raw))


def stored(body: kube.KubeObject) -> Stored:
    raw = _trimmed(body)
    secrets: set[str] = set()
    if raw.get("kind") == "MCPServer":
        for item in jsontypes.objects(raw, "spec", "secrets"):
            if isinstance(name := jsontypes.at(item, "secretRef", "name"), str):
                secrets.add(name)
    return Stored(
        json.dumps(raw, separators=(",", ":"), default=str).encode(),
        jsontypes.text(raw, "metadata", "namespace") or "default",
        jsontypes.text(raw, "metadata", "name"),
        entry_workspace(raw),
        tuple(sorted(secrets)),
    )


def fingerprint(body: kube.KubeObject) -> str:
    """What a reconcile depends on; status and kopf's own annotations are left out, so the
    events our own writes cause do not trigger another reconcile."""
    meta = jsontypes.obj(body, "metadata")
    annotations = jsontypes.obj(meta, "annotations")
    essence = [
        body.get("spec"),
        body.get("sops"),
        meta.get("deletionTimestamp"),
        meta.get("uid"),
        annotations.get(ROTATE_ANNOTATION),
        annotations.get(_source.REVISION_ANNOTATION),  # a pipeline's new revision: new config
    ]
    return hashlib.sha256(json.dumps(essence, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class Tools:
    """What the last discovery found on a server."""

    reported: manifest.Reported
    """What the server reported: its tools' full definitions in its order, its prompts and
    resources (the capability manifest's input)."""
    refreshed: datetime
    changed: str | None = None
    """What this discovery found changed since the one before (None: the same tools, or the
    first discovery): the ``ToolsChanged`` condition's message."""
    first: bool = True
    """The first discovery since the operator started."""
    protocol: Mapping[str, str] | None = None
    """The era and version the discovery spoke (``status.protocol``: era, version)."""

    @property
    def tools(self) -> tuple[tuple[str, str | None], ...]:
        """(name, description) in the server's order."""
        return tuple(
            (str(t["name"]), str(d) if (d := t.get("description")) else None)
            for t in self.reported.tools
        )

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(str(t["name"]) for t in self.reported.tools)


URGENT, ROUTINE, STATUS = 0, 1, 2
"""Reconcile priorities: a change to a resource already seen (an edit or a deletion: how
access is removed) goes before routine work (a cold start's first sightings, resyncs,
discovery results), and both before status patches (a workspace's statuses are written by a
run of its own, once every configuration in front of it is out: a status run starts only
when no pressing run is queued or running)."""


class Reconciler:
    """A queue of work keys served by a few workers; a key is never worked on twice at once,
    requests for a key that is queued or running fold into one more run (a burst of changes
    to one workspace costs one compile and one write), and urgent keys go first.

    :attr:`calm` is set while no work of a priority above ``STATUS`` is queued or running:
    what can wait (tool discovery) waits for it."""

    def __init__(
        self,
        work: Callable[[WorkKey, bool], Awaitable[None]],
        workers: int,
        *,
        ready: Callable[[], Awaitable[None]] | None = None,
        may_write: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        self._work = work
        self._ready = ready
        self._may_write = may_write
        """Awaited before each run: requests queue (and fold) until it returns."""
        self._queue: asyncio.PriorityQueue[tuple[int, int, WorkKey]] = asyncio.PriorityQueue()
        self._order = itertools.count()
        self._queued: dict[WorkKey, int] = {}
        """Key -> the priority it is queued with (its best)."""
        self._running: dict[WorkKey, int] = {}
        self._force: set[WorkKey] = set()
        self._failures: dict[WorkKey, int] = {}
        self._pressing = 0
        """Keys queued or running with a priority above STATUS."""
        self._tasks = [
            asyncio.create_task(self._worker(), name=f"mcpyard-reconciler-{i}")
            for i in range(workers)
        ]
        self.idle = asyncio.Event()
        self.idle.set()
        self.calm = asyncio.Event()
        self.calm.set()

    def _count(self, priority: int | None, delta: int) -> None:
        if priority is not None and priority < STATUS:
            self._pressing += delta
            if self._pressing:
                self.calm.clear()
            else:
                self.calm.set()

    def request(
        self, key: WorkKey, *, force: bool = False, urgent: bool = False, priority: int = ROUTINE
    ) -> None:
        if force:
            self._force.add(key)
        if urgent:
            priority = URGENT
        queued = self._queued.get(key)
        if queued is not None and queued <= priority:
            return
        self._count(queued, -1)
        self._count(priority, +1)
        self._queued[key] = priority  # a key made more pressing is queued again, in front
        self.idle.clear()
        if key not in self._running:
            self._queue.put_nowait((priority, next(self._order), key))

    async def _worker(self) -> None:
        while True:
            if self._ready is not None:
                await self._ready()
            priority, order, key = await self._queue.get()
            if self._may_write is not None and not await self._may_write():
                # Asked with the work in hand: another replica may lead by now. The entry
                # goes back in its place; ``ready`` waits until this replica leads again.
                self._queue.put_nowait((priority, order, key))
                continue
            if key in self._running or self._queued.get(key) != priority:
                continue  # an entry left behind by a promotion, or re-queued when done
            if priority >= STATUS and not self.calm.is_set():
                # Pressing work still runs on another worker (none is queued: it would have
                # come first). A status waits until it is out, not only until it has started.
                self._queue.put_nowait((priority, order, key))
                await self.calm.wait()
                continue
            del self._queued[key]
            self._running[key] = priority  # still counted as pressing while it runs
            force = key in self._force
            self._force.discard(key)
            try:
                await self._work(key, force)
                self._failures.pop(key, None)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # retried with backoff; never kills the worker
                attempt = self._failures[key] = self._failures.get(key, 0) + 1
                delay = min(60.0, 0.5 * 2 ** min(attempt, 7))
                transient = isinstance(exc, kube.ApiError) and exc.transient
                log.log(
                    logging.INFO if transient else logging.ERROR,
                    "reconcile of %s failed (%s: %s); retrying in %.1fs",
                    "/".join(key),
                    type(exc).__name__,
                    _sanitised(exc),
                    delay,
                )
                asyncio.get_running_loop().call_later(
                    delay, functools.partial(self.request, key, priority=priority)
                )
            finally:
                self._count(self._running.pop(key), -1)
                if key in self._queued:
                    self._queue.put_nowait((self._queued[key], next(self._order), key))
                if not self._queued and not self._running:
                    self.idle.set()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _sanitised(exc: Exception) -> str:
    # Our own errors are written without secrets; anything else is named, not quoted.
    return str(exc)[:300] if isinstance(exc, errors.MCPyardError) else "unexpected error"


@dataclass
class Runtime:
    settings: Settings
    client: kube.Client
    store: SecretStore
    catalog: Mapping[str, HubEntry]
    indexes: Indexes
    """Every watched object (see :mod:`mcpyard.operator._informer`)."""
    reconciler: Reconciler | None = None
    discovery: Scheduler | None = None
    """The discovery scheduler (:class:`mcpyard.operator._discovery.Scheduler`)."""
    priority: int | None = None
    """This replica's peering priority (None: standalone)."""
    seen: dict[tuple[str, str, str], tuple[str, str | None]] = field(default_factory=dict)
    """(kind, namespace, name) -> (fingerprint, workspace) of the last change handled."""
    tokens: dict[NsName, tuple[str, str, str]] = field(default_factory=dict)
    """Member (namespace, name) -> (token hash, rotation value, member uid)."""
    tools: dict[NsName, Tools] = field(default_factory=dict)
    health: dict[NsName, tuple[bool, str]] = field(default_factory=dict)
    manifests: dict[NsName, tuple[str, str, str]] = field(default_factory=dict)
    """MCPServer -> (ConfigMap, digest, workspace) of the manifest last written."""
    servers: dict[NsName, tuple[str, ServerConfig]] = field(default_factory=dict)
    """MCPServer -> (workspace, its compiled config): what discovery talks to."""
    servers_of: dict[str, set[NsName]] = field(default_factory=dict)
    """Workspace -> its MCPServers in :attr:`servers`."""
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    """Workspace -> held while one of its runs (configuration or statuses) is going."""
    waker: Callable[[NsName], None] | None = None
    """Makes a server's tool discovery due now (the discovery scheduler, once started)."""
    written: dict[tuple[str, str, str], bytes] = field(default_factory=dict)
    """The status last written to each resource, as compact JSON (the index may not have
    seen it yet)."""
    applied: dict[tuple[str, str, str, str], str] = field(default_factory=dict)
    """(apiVersion/kind, namespace, name, workspace) -> hash of what was last applied."""
    children_of: dict[str, set[tuple[str, str, str, str]]] = field(default_factory=dict)
    """Workspace -> the keys of :attr:`applied` of its hosted servers' objects."""
    sizes: dict[str, int] = field(default_factory=dict)
    unreadable: set[str] = field(default_factory=set)
    """Appliers (Kustomization / Application) that could not be read for a source revision,
    warned about once."""
    """Workspace -> bytes of its last applied config Secret data."""
    served: dict[str, WorkspaceConfig] = field(default_factory=dict)
    """Workspace -> the configuration its config Secret last carried: the last good version
    of each resource, which the compiler keeps for a resource that broke since."""
    served_read: set[str] = field(default_factory=set)
    """Workspaces whose config Secret was read at start (one GET each, found or not)."""
    served_listed: bool = False
    """Every config Secret was read at start, with one list: no GET per workspace."""
    listed: dict[str, kube.KubeObject] = field(default_factory=dict)
    """Workspace -> its config Secret as that list found it, until this operator first
    writes it: the read that write compares with (no GET per workspace at a cold start,
    and no write when it already holds what is wanted)."""
    discovery_slots: asyncio.Semaphore = field(
        default_factory=lambda: asyncio.Semaphore(DISCOVERY_CONCURRENCY)
    )
    """Tool discoveries in flight at once: a cold start of hundreds of servers would
    otherwise hold hundreds of HTTP clients and MCP sessions at the same time."""
    _tls: ssl.SSLContext | None = field(default=None, init=False, repr=False)

    def discovery_tls(self) -> ssl.SSLContext:
        """The one TLS context of every discovery client (built once: it loads the CAs)."""
        if self._tls is None:
            self._tls = httpx2.create_ssl_context()
        return self._tls

    def index(self, name: str, key: Hashable) -> list[Entry]:
        """The resources index ``name`` holds under ``key``, parsed (one reconcile's view)."""
        return [s.load() for s in self.indexes.resources[name].get(key)]

    def request(
        self, key: WorkKey, *, force: bool = False, urgent: bool = False, priority: int = ROUTINE
    ) -> None:
        if self.reconciler is not None:
            self.reconciler.request(key, force=force, urgent=urgent, priority=priority)

    def wake(self, server: NsName) -> None:
        if self.waker is not None:
            self.waker(server)

    def observe(self, body: kube.KubeObject, *, deleted: bool) -> None:
        """A watch event: request the reconciles it calls for, nothing when nothing changed."""
        meta = jsontypes.obj(body, "metadata")
        kind, ns, name = str(body.get("kind")), str(meta.get("namespace")), str(meta.get("name"))
        key = (kind, ns, name)
        before = self.seen.get(key)
        if deleted:
            self.seen.pop(key, None)
            self.written.pop((ns, kind, name), None)
            fp, workspace = "", None
        else:
            fp, workspace = fingerprint(body), entry_workspace(body)
            self.seen[key] = (fp, workspace)
            if before is not None and before[0] == fp:
                return
        force = before is None
        # An edit or a deletion of a resource already seen may remove access: it goes first.
        urgent = before is not None
        if kind == "EncryptedSecret":
            self.request(("secret", ns, name), force=force, urgent=urgent)
            return
        for ws in {workspace, before[1] if before else None} - {None}:
            self.request(("ws", str(ws)), force=force, urgent=urgent)
        if kind == "MCPServer":
            self.wake((ns, name))

    def workspaces_using(self, secrets: Iterable[NsName]) -> set[str]:
        out: set[str] = set()
        for key in secrets:
            out.update(str(ws) for ws in self.indexes.servers_by_secret.get(key))
        return out


def entry_workspace(body: kube.KubeObject) -> str | None:
    if body.get("kind") == "Workspace":
        return jsontypes.text(body, "metadata", "name")
    value = jsontypes.at(body, "spec", "workspace")
    return value if isinstance(value, str) else None
