"""An explicit kopf registry with every handler of the operator, built per operator (or test).

``memo`` must carry ``options`` (:class:`~mcpyard.operator._settings.Settings`) and
``connect`` (a function returning a :class:`mcpyard.kube.Client`); the startup handler adds
``runtime``. kopf logs in with the same connection the client uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import kopf

from mcpyard import hub, kube
from mcpyard.api import v1alpha1
from mcpyard.operator import (
    _discovery,
    _peering,
    _reconcile,
    _secrets,
    encryptedsecret,
    mcpserver,
    member,
    workspace,
)
from mcpyard.operator._runtime import Reconciler, Runtime
from mcpyard.operator._settings import Settings, configure

log = logging.getLogger("mcpyard.operator")
INDEXES = (
    "workspaces",
    "servers",
    "members",
    "secrets",
    "servers_by_secret",
    "deployments",
    "available",
)


def build(settings: Settings) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(memo: kopf.Memo, **_: Any) -> kopf.ConnectionInfo:
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
    async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **kwargs: Any) -> None:
        options: Settings = memo.options
        configure(settings, options)
        client: kube.Client = memo.connect()
        master_key = await _secrets.load_or_create_master_key(client, options)
        runtime = Runtime(
            settings=options,
            client=client,
            store=_secrets.SecretStore(client, options, master_key),
            catalog=hub.catalog(),
            indexes={n: kwargs[n] for n in INDEXES},
        )
        runtime.priority = None if options.peering is None else settings.peering.priority
        runtime.reconciler = Reconciler(
            lambda key, force: _reconcile.run(runtime, key, force), options.workers
        )
        runtime.discovery = _discovery.Scheduler(runtime)
        runtime.waker = runtime.discovery.wake
        memo.runtime = runtime
        memo.sweeper = asyncio.create_task(_sweep_forever(runtime), name="mcpyard-sweeper")

    @kopf.on.cleanup(registry=registry)
    async def cleanup(memo: kopf.Memo, **_: Any) -> None:
        sweeper = getattr(memo, "sweeper", None)
        if sweeper is not None:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
        runtime: Runtime | None = getattr(memo, "runtime", None)
        if runtime is not None:
            if runtime.reconciler is not None:
                await runtime.reconciler.close()
            if runtime.discovery is not None:
                await runtime.discovery.close()
            runtime.client.close()

    for module in (workspace, mcpserver, member, encryptedsecret):
        module.register(registry, settings)
    return registry


async def sweep(runtime: Runtime) -> list[str]:
    """Delete config Secrets whose workspace no longer exists (a Workspace deleted while its
    finalizer was removed by hand, or while the operator was not running).

    The Workspaces are listed from the API, not taken from kopf's index: a replica paused by
    peering has an empty index, and must not take that for "no workspace any more"."""
    settings = runtime.settings
    found: list[dict[str, Any]] = []
    for namespace in settings.namespaces or (None,):
        found += await runtime.client.list(v1alpha1.API_VERSION, "Workspace", namespace)
    existing = {
        str(w["metadata"]["name"])
        for w in found
        if not (w.get("metadata") or {}).get("deletionTimestamp")
    }
    gone = []
    for secret in await runtime.client.list(
        "v1", "Secret", settings.operator_namespace, labels={kube.CONFIG_LABEL: "true"}
    ):
        ws = kube.config_workspace(secret)
        if ws and ws not in existing:
            name = str(secret["metadata"]["name"])
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
        for ws in list(runtime.indexes["workspaces"]):
            runtime.request(("ws", str(ws)), force=True)
        # The operator does not watch the age Secret (it may only read it): a secret that
        # failed is decrypted again with the identities as they are now.
        for ns, name in runtime.store.failed():
            runtime.request(("secret", ns, name), force=True)
