"""The one kopf handler on a resource: a Workspace's deletion removes its config Secret.

Every kind is listed and watched by :mod:`._informer` (kopf's per-object machinery costs
minutes at a cold start of thousands of resources); kopf keeps the peering of replicas and
this handler. A Workspace's config Secret lives in the operator namespace, where owner
references cannot reach (they never cross namespaces), so a Workspace carries the operator's
finalizer: its deletion handler removes the config Secret (unless another namespace's
Workspace of the same name takes over). The reconcile that the deletion's watch event
requests does the same; the finalizer covers a deletion while no operator runs.
"""

from __future__ import annotations

from typing import Any

import kopf

from mcpyard.api.v1alpha1 import GROUP, VERSION
from mcpyard.operator import _reconcile
from mcpyard.operator._runtime import Runtime
from mcpyard.operator._settings import Settings

PLURAL = "workspaces"


def register(registry: kopf.OperatorRegistry, settings: Settings) -> None:
    @kopf.on.delete(GROUP, VERSION, PLURAL, registry=registry)
    async def workspace_delete(name: str, namespace: str | None, memo: kopf.Memo,
                               **_: Any) -> None:
        runtime: Runtime = memo.runtime
        others = [
            e for e in runtime.index(PLURAL, name) if e.namespace != namespace and not e.deleting
        ]
        if not others:
            await runtime.client.delete(
                "v1",
                "Secret",
                runtime.settings.operator_namespace,
                _reconcile.config_secret_name(name),
            )
        runtime.request(("ws", name))
