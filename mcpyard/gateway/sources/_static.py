"""A fixed configuration given in code (embedding and tests): ``Settings.workspaces``, with
plain secret values by identity ``namespace/name/key``."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path

from mcpyard import errors
from mcpyard.compiler.config import SecretRef, WorkspaceConfig
from mcpyard.crypto import vault as vault_
from mcpyard.gateway import _secrets
from mcpyard.gateway._runtime import Runtime
from mcpyard.gateway.services._metrics import Metrics


class StaticSource:
    """Serves ``workspaces`` as they are; the values are sealed into a vault under the master
    key in ``state_dir``."""

    def __init__(self, workspaces: Mapping[str, WorkspaceConfig], secrets: Mapping[str, str],
                 *, state_dir: Path) -> None:
        self._workspaces = dict(workspaces)
        self._values = dict(secrets)
        self._state_dir = state_dir
        self._vault: vault_.Vault | None = None
        self._key: bytes | None = None

    def __repr__(self) -> str:
        return f"<StaticSource: {len(self._workspaces)} workspaces>"

    @property
    def master_key(self) -> bytes | None:
        return self._key

    def reveal(self, ref: SecretRef) -> str:
        if self._vault is None:
            raise errors.SecretError("the vault is not open yet")
        return self._vault.reveal(ref)

    async def open(self, runtime: Runtime, metrics: Metrics) -> None:
        self._key = await asyncio.to_thread(vault_.load_or_create_master_key, self._state_dir)
        self._vault = vault_.Vault(self._key)
        state = _secrets.seal_static(self._vault, self._values)
        runtime.apply(self._workspaces, secrets=state)

    async def run(self, runtime: Runtime, metrics: Metrics) -> None:
        return None
