"""The operator's own view of the cluster: one list, then one watch, per kind, into indexes.

kopf guards its indexes with one toggle per object of the initial listing, and every object's
worker waits on one shared condition until all of them are off: each toggle dropped wakes
every waiter, which checks every toggle again, so a cold start of 16,000 resources spent
minutes there before the first handler ran. Here each kind is listed from the API server's
watch cache (one request, or one per 500 objects where it pages), every object goes into
:class:`Indexes` as compact JSON (:class:`~mcpyard.operator._runtime.Stored`), and a watch
from the list's resourceVersion keeps them current; :attr:`Informers.synced` opens once every
kind is listed, and no reconcile runs before (a partial view would write a configuration
without the members not yet seen).

A watch the API server ends is resumed from the last resourceVersion; 410 Gone lists again
(what vanished in between is reported deleted); any other failure reconnects with backoff.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Hashable, Iterator, Mapping
from typing import Generic, TypeVar

from mcpyard import jsontypes, kube
from mcpyard.api import v1alpha1
from mcpyard.mcp.backoff import Backoff
from mcpyard.operator._runtime import NsName, Stored, stored

log = logging.getLogger("mcpyard.operator")

PAGE = 500
MANAGED = {"app.kubernetes.io/managed-by": "mcpyard"}
SERVER_LABEL = "mcpyard.io/server"
KINDS: tuple[tuple[str, str, Mapping[str, str] | None], ...] = (
    (v1alpha1.API_VERSION, "Workspace", None),
    (v1alpha1.API_VERSION, "MCPServer", None),
    (v1alpha1.API_VERSION, "Member", None),
    (v1alpha1.API_VERSION, "EncryptedSecret", None),
    ("apps/v1", "Deployment", MANAGED),
)
Key = tuple[str, str, str]
"""(kind, namespace, name)."""


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Index(Generic[K, V]):
    """One index, as kopf's were: key -> a value per object filed under it."""

    def __init__(self) -> None:
        self._buckets: dict[K, dict[Key, V]] = {}

    def get(self, key: K) -> list[V]:
        return list(self._buckets.get(key, {}).values())

    def keys(self) -> list[K]:
        return list(self._buckets)

    def put(self, key: K, member: Key, value: V) -> None:
        self._buckets.setdefault(key, {})[member] = value

    def drop(self, key: K, member: Key) -> None:
        bucket = self._buckets.get(key)
        if bucket is not None:
            bucket.pop(member, None)
            if not bucket:
                del self._buckets[key]


class Indexes:
    """Every watched object, keyed so that one workspace's resources are one lookup away.

    Each :class:`Index` answers ``get(key)`` as kopf's indexes did, with a list of values.
    :attr:`resources`: ``workspaces`` by name, ``servers`` and ``members`` by workspace,
    ``secrets`` by (namespace, name); :attr:`servers_by_secret`: (namespace, secret) ->
    workspaces; :attr:`deployments`: workspace -> (namespace, server); :attr:`available`:
    (namespace, server) -> available replicas."""

    def __init__(self) -> None:
        self._objects: dict[Key, Stored | tuple[str | None, str | None, int]] = {}
        self.resources: dict[str, Index[Hashable, Stored]] = {
            name: Index() for name in ("workspaces", "servers", "members", "secrets")
        }
        self.servers_by_secret: Index[NsName, str | None] = Index()
        self.deployments: Index[str, NsName] = Index()
        self.available: Index[NsName, int] = Index()

    def keys(self, name: str) -> list[Hashable]:
        return self.resources[name].keys()

    def __len__(self) -> int:
        return len(self._objects)

    def known(self, kind: str) -> Iterator[Key]:
        return (k for k in self._objects if k[0] == kind)

    def update(self, kind: str, body: kube.KubeObject | None, key: Key) -> None:
        """Index ``body`` as the object ``key`` now is (None: it is gone)."""
        _, ns, name = key
        self._remove(key)
        if body is None:
            return
        if kind == "Deployment":
            labels = jsontypes.obj(body, "metadata", "labels")
            server = jsontypes.text(labels, SERVER_LABEL) or None
            ws = jsontypes.text(labels, kube.WORKSPACE_LABEL) or None
            replicas = jsontypes.integer(body, "status", "availableReplicas")
            self._objects[key] = (ws, server, replicas)
            if server is not None:
                self.available.put((ns, server), key, replicas)
                if ws is not None:
                    self.deployments.put(ws, key, (ns, server))
            return
        item = stored(body)
        self._objects[key] = item
        ws = item.workspace
        if kind == "Workspace":
            self.resources["workspaces"].put(name, key, item)
        elif kind == "MCPServer":
            self.resources["servers"].put(ws, key, item)
            for secret in item.secrets:
                self.servers_by_secret.put((ns, secret), key, ws)
        elif kind == "Member":
            self.resources["members"].put(ws, key, item)
        elif kind == "EncryptedSecret":
            self.resources["secrets"].put((ns, name), key, item)

    def _remove(self, key: Key) -> None:
        kind, ns, name = key
        old = self._objects.pop(key, None)
        if old is None:
            return
        if isinstance(old, tuple):
            ws, server, _ = old
            if server is not None:
                self.available.drop((ns, server), key)
                if ws is not None:
                    self.deployments.drop(ws, key)
            return
        if kind == "Workspace":
            self.resources["workspaces"].drop(name, key)
        elif kind == "MCPServer":
            self.resources["servers"].drop(old.workspace, key)
            for secret in old.secrets:
                self.servers_by_secret.drop((ns, secret), key)
        elif kind == "Member":
            self.resources["members"].drop(old.workspace, key)
        elif kind == "EncryptedSecret":
            self.resources["secrets"].drop((ns, name), key)


Handler = Callable[[str, str, kube.KubeObject, bool], None]
"""(kind, event type, body, deleted) -> None: told after the indexes are updated."""


class Informers:
    """One list-then-watch loop per kind and namespace, feeding :class:`Indexes`."""

    def __init__(
        self,
        client: kube.Client,
        namespaces: tuple[str, ...],
        indexes: Indexes,
        handle: Handler,
        *,
        watch_timeout: int = 300,
    ) -> None:
        self._client = client
        self._indexes = indexes
        self._handle = handle
        self._watch_timeout = watch_timeout
        self.synced = asyncio.Event()
        """Set once every kind has been listed in every namespace."""
        scopes: tuple[str | None, ...] = namespaces or (None,)
        self._pending = len(KINDS) * len(scopes)
        self._tasks = [
            asyncio.create_task(self._follow(api, kind, ns, labels), name=f"mcpyard-{kind}")
            for api, kind, labels in KINDS
            for ns in scopes
        ]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _event(self, kind: str, type_: str, body: kube.KubeObject) -> None:
        meta = jsontypes.obj(body, "metadata")
        key = (kind, jsontypes.text(meta, "namespace"), jsontypes.text(meta, "name"))
        deleted = type_ == "DELETED"
        self._indexes.update(kind, None if deleted else body, key)
        self._handle(kind, type_, body, deleted)

    async def _list(
        self, api: str, kind: str, ns: str | None, labels: Mapping[str, str] | None
    ) -> str | None:
        """List in pages; report what vanished since the last list; the list's version."""
        url = kube.path(api, kind, ns)
        # resourceVersion=0: served from the API server's watch cache, as client-go's
        # informers list (an API server that pages such a list honours the limit; one that
        # does not answers in one piece). A paged list from etcd would restart from the
        # first page each time compaction expired its continue token (410).
        query: dict[str, str] = {"limit": str(PAGE), "resourceVersion": "0"}
        query.update(query_labels(labels))
        listed: set[Key] = set()
        version: str | None = None
        while True:
            page = await asyncio.to_thread(self._client.request, "GET", url, query=query)
            for item in jsontypes.objects(page, "items"):
                item.setdefault("apiVersion", api)
                item.setdefault("kind", kind)
                meta = jsontypes.obj(item, "metadata")
                listed.add((kind, jsontypes.text(meta, "namespace"), jsontypes.text(meta, "name")))
                self._event(kind, "ADDED", item)
            version = jsontypes.text(page, "metadata", "resourceVersion") or version
            token = jsontypes.text(page, "metadata", "continue")
            if not token:
                break
            query = {"limit": str(PAGE), "continue": token, **query_labels(labels)}
        for gone in [k for k in self._indexes.known(kind) if k[1] == ns or ns is None]:
            if gone not in listed:
                self._event(kind, "DELETED", _stub(api, gone))
        return version

    async def _follow(
        self, api: str, kind: str, ns: str | None, labels: Mapping[str, str] | None
    ) -> None:
        version: str | None = None
        delay = Backoff()
        first = True
        while True:
            try:
                if version is None:
                    version = await self._list(api, kind, ns, labels)
                    if first:
                        first = False
                        self._pending -= 1
                        if not self._pending:
                            log.info("listed %d objects: reconciling", len(self._indexes))
                            self.synced.set()
                async for type_, obj in self._client.watch(
                    api,
                    kind,
                    ns,
                    labels=labels,
                    resource_version=version,
                    timeout_seconds=self._watch_timeout,
                ):
                    delay.reset()
                    version = jsontypes.text(obj, "metadata", "resourceVersion") or version
                    if type_ in ("ADDED", "MODIFIED", "DELETED"):
                        obj.setdefault("apiVersion", api)
                        obj.setdefault("kind", kind)
                        self._event(kind, type_, obj)
                continue  # the API server ended the watch: resume at once
            except kube.ApiError as exc:
                if exc.status == 410:
                    log.info("%s: resourceVersion expired (410 Gone), listing again", kind)
                    version = None
                    continue
                log.warning("%s: %s; reconnecting in %.1fs", kind, exc, delay.delay)
            except asyncio.CancelledError:
                raise
            except Exception:  # never let a kind go unwatched
                log.exception("%s: unexpected failure; listing again in %.1fs", kind, delay.delay)
                version = None
            await delay.sleep()


def query_labels(labels: Mapping[str, str] | None) -> dict[str, str]:
    if not labels:
        return {}
    return {"labelSelector": ",".join(f"{k}={v}" for k, v in labels.items())}


def _stub(api: str, key: Key) -> kube.KubeObject:
    kind, ns, name = key
    return {"apiVersion": api, "kind": kind, "metadata": {"namespace": ns, "name": name}}
