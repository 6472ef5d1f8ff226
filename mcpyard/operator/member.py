"""Member handlers: index by workspace; a change reconciles the member's workspace(s).

Minting and rotating tokens happens in the workspace reconcile (:mod:`._tokens`), because a
minted token's hash is part of the workspace's configuration.
"""

from __future__ import annotations

from typing import Any

import kopf

from mcpyard.api.v1alpha1 import GROUP, VERSION
from mcpyard.operator._runtime import Entry, Runtime, entry, entry_workspace
from mcpyard.operator._settings import Settings

PLURAL = "members"


def register(registry: kopf.OperatorRegistry, settings: Settings) -> None:
    @kopf.index(GROUP, VERSION, PLURAL, registry=registry, id="members")
    async def members(body: kopf.Body, **_: Any) -> dict[Any, Entry]:
        return {entry_workspace(body): entry(body)}

    @kopf.on.event(GROUP, VERSION, PLURAL, registry=registry)
    async def member_event(body: kopf.Body, type: str | None, memo: kopf.Memo, **_: Any) -> None:
        runtime: Runtime = memo.runtime
        runtime.observe(body, deleted=type == "DELETED")
