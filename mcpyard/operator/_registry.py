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
from mcpyard.operator import _reconcile, _secrets, encryptedsecret, mcpserver, member, workspace
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
        runtime.reconciler = Reconciler(
            lambda key, force: _reconcile.run(runtime, key, force), options.workers
        )
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
            runtime.client.close()

    for module in (workspace, mcpserver, member, encryptedsecret):
        module.register(registry, settings)
    return registry


async def sweep(runtime: Runtime) -> list[str]:
    """Delete config Secrets whose workspace no longer exists (a Workspace deleted while its
    finalizer was removed by hand, or while the operator was not running)."""
    gone = []
    for secret in await runtime.client.list(
        "v1",
        "Secret",
        runtime.settings.operator_namespace,
        labels={_reconcile.CONFIG_LABEL: "true"},
    ):
        meta = secret.get("metadata") or {}
        ws = (meta.get("labels") or {}).get(_reconcile.WORKSPACE_LABEL)
        if ws and not any(not e.deleting for e in runtime.index("workspaces", ws)):
            await runtime.client.delete(
                "v1", "Secret", runtime.settings.operator_namespace, str(meta.get("name"))
            )
            gone.append(ws)
    if gone:
        log.info("swept the config Secrets of deleted workspaces: %s", ", ".join(sorted(gone)))
    return gone


async def _sweep_forever(runtime: Runtime) -> None:
    # The first sweep waits a full interval: by then kopf has listed every Workspace.
    while True:
        await asyncio.sleep(runtime.settings.resync_interval)
        try:
            await sweep(runtime)
        except kube.ApiError as exc:
            log.warning("sweep of config Secrets failed: %s", exc)
        # The operator does not watch the age Secret (it may only read it): a secret that
        # failed is decrypted again with the identities as they are now.
        for ns, name in runtime.store.failed():
            runtime.request(("secret", ns, name), force=True)
