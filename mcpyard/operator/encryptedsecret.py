"""EncryptedSecret handlers: index by (namespace, name); a change decrypts it again, patches
its status, and reconciles every workspace whose servers use it."""

from __future__ import annotations

from typing import Any

import kopf

from mcpyard.api.v1alpha1 import GROUP, VERSION
from mcpyard.operator._runtime import Entry, Runtime, entry
from mcpyard.operator._settings import Settings

PLURAL = "encryptedsecrets"


def register(registry: kopf.OperatorRegistry, settings: Settings) -> None:
    @kopf.index(GROUP, VERSION, PLURAL, registry=registry, id="secrets")
    async def secrets(
        body: kopf.Body, namespace: str | None, name: str, **_: Any
    ) -> dict[Any, Entry]:
        return {(namespace, name): entry(body)}

    @kopf.on.event(GROUP, VERSION, PLURAL, registry=registry)
    async def secret_event(body: kopf.Body, type: str | None, memo: kopf.Memo, **_: Any) -> None:
        runtime: Runtime = memo.runtime
        runtime.observe(body, deleted=type == "DELETED")
