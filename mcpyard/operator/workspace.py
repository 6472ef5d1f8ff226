"""Workspace handlers: index by name, reconcile on change, clean up on delete.

A Workspace's config Secret lives in the operator namespace, where owner references cannot
reach (they never cross namespaces), so a Workspace carries the operator's finalizer: its
deletion handler removes the config Secret (unless another namespace's Workspace of the same
name takes over). The first sighting of a Workspace (also at each start) reconciles it in
full; the periodic resync of every workspace is one loop (:mod:`._registry`), not a kopf timer
per object.
"""

from __future__ import annotations

from typing import Any

import kopf

from mcpyard.api.v1alpha1 import GROUP, VERSION
from mcpyard.operator import _reconcile
from mcpyard.operator._runtime import Entry, Runtime, entry
from mcpyard.operator._settings import Settings

PLURAL = "workspaces"


def register(registry: kopf.OperatorRegistry, settings: Settings) -> None:
    @kopf.index(GROUP, VERSION, PLURAL, registry=registry, id="workspaces")
    async def workspaces(body: kopf.Body, name: str, **_: Any) -> dict[Any, Entry]:
        return {name: entry(body)}

    @kopf.on.event(GROUP, VERSION, PLURAL, registry=registry)
    async def workspace_event(body: kopf.Body, type: str | None, memo: kopf.Memo, **_: Any) -> None:
        runtime: Runtime = memo.runtime
        runtime.observe(body, deleted=type == "DELETED")

    @kopf.on.delete(GROUP, VERSION, PLURAL, registry=registry)
    async def workspace_delete(name: str, namespace: str | None, memo: Any, **_: Any) -> None:
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
