"""An explicit kopf registry with every handler of the operator, built per operator (or test).

``memo`` must carry ``options`` (:class:`~mcpyard.operator._settings.Settings`) and
``connect`` (a function returning a :class:`mcpyard.kube.Client`); the startup handler adds
``runtime`` and starts what runs beside kopf: the informers (list and watch of every kind),
the reconciler (which waits for them to have listed, and with peering for this replica to
lead), the discovery scheduler, the sweep and resync loop. kopf logs in with the same
connection the client uses and keeps the peering of replicas; it handles no resource (its
per-object bookkeeping, a finalizer and an annotation PATCH per new Workspace, cost a cold
start two writes per workspace: a Workspace's deletion is the reconciler's, see
:func:`mcpyard.operator._reconcile.preload_served`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging

import kopf

from mcpyard import hub, jsontypes, kube
from mcpyard.api import v1alpha1
from mcpyard.operator import (
    _discovery,
    _informer,
    _peering,
    _reconcile,
    _secrets,
)
from mcpyard.operator._runtime import Reconciler, Runtime
from mcpyard.operator._settings import Settings, configure

log = logging.getLogger("mcpyard.operator")
PEERING_POLL = 1.0
"""Seconds between two checks of whether this replica leads (with peering)."""


def build(settings: Settings) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(memo: kopf.Memo, **_: object) -> kopf.ConnectionInfo:
        client: kube.Client = memo.connect()
        try:
            c = client.connection
        finally:
            client.close()
        return kopf.ConnectionInfo(
            server=c.server,
            token=c.token,
            ca_path=c.ca_path,
            insecure=c.insecure,
            certificate_path=c.certificate_path,
            private_key_path=c.private_key_path,
        )

    @kopf.on.startup(registry=registry)
    async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: object) -> None:
        options: Settings = memo.options
        configure(settings, options)
        client: kube.Client = memo.connect()
        master_key = await _secrets.load_or_create_master_key(client, options)
        runtime = Runtime(
            settings=options,
            client=client,
            store=_secrets.SecretStore(client, options, master_key),
            catalog=hub.catalog(),
            indexes=_informer.Indexes(),
        )
        runtime.priority = None if options.peering is None else settings.peering.priority
        await _reconcile.preload_served(runtime)
        leading = asyncio.Event()
        if options.peering is None:
            leading.set()
        informers = _informer.Informers(
            client, options.namespaces, runtime.indexes, functools.partial(_observe, runtime)
        )

        async def ready() -> None:
            # Nothing is written before every kind is listed (a partial view would drop
            # what it has not seen yet), nor while another replica leads.
            await informers.synced.wait()
            await leading.wait()

        async def may_write() -> bool:
            # With peering, the peering object is read again with the work in hand: the loop
            # that follows it may not have seen a replica that came up in the last
            # PEERING_POLL seconds.
            if options.peering is None:
                return True
            try:
                if await _peering.leading(client, options, runtime.priority):
                    return True
            except kube.ApiError as exc:
                log.warning("cannot read the peering object: %s", exc)
            if leading.is_set():
                log.info("another replica leads: this one pauses")
                leading.clear()
            return False

        runtime.reconciler = Reconciler(
            lambda key, force: _reconcile.run(runtime, key, force),
            options.workers,
            ready=ready,
            may_write=may_write,
        )
        runtime.discovery = _discovery.Scheduler(runtime)
        runtime.waker = runtime.discovery.wake
        memo.runtime = runtime
        memo.informers = informers
        memo.loops = [
            asyncio.create_task(_sweep_forever(runtime), name="mcpyard-sweeper"),
            asyncio.create_task(_orphans(runtime, informers), name="mcpyard-orphans"),
        ]
        if options.peering is not None:
            memo.loops.append(
                asyncio.create_task(_lead(runtime, leading), name="mcpyard-peering")
            )

    @kopf.on.cleanup(registry=registry)
    async def cleanup(memo: kopf.Memo, **_: object) -> None:
        for loop in getattr(memo, "loops", []):
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop
        informers: _informer.Informers | None = getattr(memo, "informers", None)
        if informers is not None:
            await informers.close()
        runtime: Runtime | None = getattr(memo, "runtime", None)
        if runtime is not None:
            if runtime.reconciler is not None:
                await runtime.reconciler.close()
            if runtime.discovery is not None:
                await runtime.discovery.close()
            runtime.client.close()

    return registry


def _observe(runtime: Runtime, kind: str, type_: str, body: kube.KubeObject, deleted: bool) -> None:
    """A list or watch event, once the indexes hold it."""
    if kind == "Deployment":
        meta = jsontypes.obj(body, "metadata")
        server = jsontypes.at(meta, "labels", _informer.SERVER_LABEL)
        if server is not None:  # a hosted server's replicas moved: discover it when available
            runtime.wake((str(meta.get("namespace")), str(server)))
        return
    runtime.observe(body, deleted=deleted)


async def _orphans(runtime: Runtime, informers: _informer.Informers) -> None:
    await informers.synced.wait()
    gone = _reconcile.orphans(runtime)
    if gone:
        log.info("config Secrets of workspaces deleted meanwhile: %s", ", ".join(gone))


async def _lead(runtime: Runtime, leading: asyncio.Event) -> None:
    """Follow whether this replica leads (kopf pauses the others): the reconciler writes only
    while it does; requests made meanwhile wait in its queue."""
    while True:
        try:
            now = await _peering.leading(runtime.client, runtime.settings, runtime.priority)
        except kube.ApiError as exc:
            log.warning("cannot read the peering object: %s", exc)
            now = False
        if now and not leading.is_set():
            log.info("this replica leads: reconciling")
            leading.set()
        elif not now and leading.is_set():
            log.info("another replica leads: this one pauses")
            leading.clear()
        await asyncio.sleep(PEERING_POLL)


async def sweep(runtime: Runtime) -> list[str]:
    """Delete config Secrets whose workspace no longer exists (a Workspace deleted while its
    finalizer was removed by hand, or while the operator was not running).

    The Workspaces are listed from the API, not taken from the index: one list at the time
    of the sweep, whatever the informers have seen so far."""
    settings = runtime.settings
    found: list[kube.KubeObject] = []
    for namespace in settings.namespaces or (None,):
        found += await runtime.client.list(v1alpha1.API_VERSION, "Workspace", namespace)
    existing = {
        jsontypes.text(w, "metadata", "name")
        for w in found
        if not jsontypes.at(w, "metadata", "deletionTimestamp")
    }
    gone = []
    for secret in await runtime.client.list(
        "v1", "Secret", settings.operator_namespace, labels={kube.CONFIG_LABEL: "true"}
    ):
        ws = kube.config_workspace(secret)
        if ws and ws not in existing:
            name = jsontypes.text(secret, "metadata", "name")
            await runtime.client.delete("v1", "Secret", settings.operator_namespace, name)
            gone.append(ws)
    if gone:
        log.info("swept the config Secrets of deleted workspaces: %s", ", ".join(sorted(gone)))
    return gone


async def _sweep_forever(runtime: Runtime) -> None:
    # The first sweep and resync wait a full interval: by then kopf has listed every Workspace
    # (and its first sighting of each has reconciled it in full).
    while True:
        await asyncio.sleep(runtime.settings.resync_interval)
        try:
            if not await _peering.leading(runtime.client, runtime.settings, runtime.priority):
                continue  # kopf has paused this replica: another one writes
            await sweep(runtime)
        except kube.ApiError as exc:
            log.warning("sweep of config Secrets failed: %s", exc)
        # A resync of every workspace repairs drift (one loop, not a timer per object).
        for ws in runtime.indexes.keys("workspaces"):
            runtime.request(("ws", str(ws)), force=True)
        # The operator does not watch the age Secret (it may only read it): a secret that
        # failed is decrypted again with the identities as they are now.
        for ns, name in runtime.store.failed():
            runtime.request(("secret", ns, name), force=True)
