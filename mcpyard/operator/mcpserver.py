"""MCPServer handlers: index by workspace and by the secrets it uses; reconcile on change;
the Deployments of hosted servers watched for availability (tool discovery is scheduled by
:class:`mcpyard.operator._discovery.Scheduler`, not per object: no daemon, no finalizer)."""

from __future__ import annotations

from typing import Any

import kopf

from mcpyard.api.v1alpha1 import GROUP, VERSION
from mcpyard.operator._reconcile import WORKSPACE_LABEL
from mcpyard.operator._runtime import Entry, Runtime, entry, entry_workspace
from mcpyard.operator._settings import Settings

PLURAL = "mcpservers"
SERVER_LABEL = "mcpyard.io/server"
MANAGED = {"app.kubernetes.io/managed-by": "mcpyard"}


def _secret_names(body: kopf.Body) -> set[str]:
    spec = body.get("spec") or {}
    out = set()
    for item in spec.get("secrets") or []:
        ref = item.get("secretRef") if isinstance(item, dict) else None
        if isinstance(ref, dict) and isinstance(ref.get("name"), str):
            out.add(ref["name"])
    return out


def register(registry: kopf.OperatorRegistry, settings: Settings) -> None:
    @kopf.index(GROUP, VERSION, PLURAL, registry=registry, id="servers")
    async def servers(body: kopf.Body, **_: Any) -> dict[Any, Entry]:
        return {entry_workspace(body): entry(body)}

    @kopf.index(GROUP, VERSION, PLURAL, registry=registry, id="servers_by_secret")
    async def servers_by_secret(body: kopf.Body, namespace: str | None, **_: Any) -> dict[Any, Any]:
        return {(namespace, secret): entry_workspace(body) for secret in _secret_names(body)}

    @kopf.on.event(GROUP, VERSION, PLURAL, registry=registry)
    async def server_event(body: kopf.Body, type: str | None, memo: kopf.Memo, **_: Any) -> None:
        runtime: Runtime = memo.runtime
        runtime.observe(body, deleted=type == "DELETED")

    # The Deployments mcpyard made: which workspace has which (to prune), and which are
    # available (a hosted server is discovered once it is).
    @kopf.index("apps", "v1", "deployments", registry=registry, labels=MANAGED, id="deployments")
    async def deployments(namespace: str | None, labels: kopf.Labels, **_: Any) -> dict[Any, Any]:
        if WORKSPACE_LABEL not in labels or SERVER_LABEL not in labels:
            return {}
        return {labels[WORKSPACE_LABEL]: (namespace, labels[SERVER_LABEL])}

    @kopf.index("apps", "v1", "deployments", registry=registry, labels=MANAGED, id="available")
    async def available(
        namespace: str | None, labels: kopf.Labels, status: kopf.Status, **_: Any
    ) -> dict[Any, Any]:
        if SERVER_LABEL not in labels:
            return {}
        return {(namespace, labels[SERVER_LABEL]): int(status.get("availableReplicas") or 0)}

    @kopf.on.event("apps", "v1", "deployments", registry=registry, labels=MANAGED)
    async def deployment_event(
        namespace: str | None, labels: kopf.Labels, memo: Any, **_: Any
    ) -> None:
        runtime: Runtime = memo.runtime
        if SERVER_LABEL in labels:
            runtime.wake((str(namespace), labels[SERVER_LABEL]))
