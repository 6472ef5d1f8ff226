"""A fixed configuration given in code (embedding and tests): ``Settings.workspaces``, with
plain secret values by identity ``namespace/name/key``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from mcpyard.compiler.config import WorkspaceConfig
from mcpyard.gateway import _secrets
from mcpyard.gateway._runtime import Runtime
from mcpyard.gateway.services._metrics import Metrics
from mcpyard.gateway.sources._local import LocalVault


class StaticSource(LocalVault):
    """Serves ``workspaces`` as they are; the values are sealed into a vault under the master
    key in ``state_dir``."""

    def __init__(self, workspaces: Mapping[str, WorkspaceConfig], secrets: Mapping[str, str],
                 *, state_dir: Path) -> None:
        super().__init__(state_dir)
        self._workspaces = dict(workspaces)
        self._values = dict(secrets)

    def __repr__(self) -> str:
        return f"<StaticSource: {len(self._workspaces)} workspaces>"

    async def open(self, runtime: Runtime, metrics: Metrics) -> None:
        state = _secrets.seal_static(await self.open_vault(), self._values)
        runtime.apply(self._workspaces, secrets=state)

    async def run(self, runtime: Runtime, metrics: Metrics) -> None:
        return None
