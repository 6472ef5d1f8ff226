"""Configuration sources: where the gateway's workspaces come from.

A folder of manifests (:class:`._folder.FolderSource`), the operator's config Secrets in a
cluster (:class:`._cluster.ClusterSource`), or configurations given in code
(:class:`._static.StaticSource`). Each is a :class:`Source`: it reads and compiles, keeps the
vault the secret values are sealed in, and hands what it read to
:meth:`mcpyard.gateway._runtime.Runtime.publish`, which decides what serves and which last
good configuration is kept. No source writes the runtime's state itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from mcpyard.compiler.config import SecretRef
    from mcpyard.gateway._runtime import Runtime
    from mcpyard.gateway.services._metrics import Metrics


class Source(Protocol):
    """One source of configuration, and the keeper of its secrets."""

    @property
    def master_key(self) -> bytes | None:
        """The vault's master key once the source has it (the console derives its cookie key
        from it); None before."""
        ...

    def reveal(self, ref: SecretRef) -> str:
        """A secret value, just in time (the runtime's :class:`SecretSource`); raises
        :class:`mcpyard.errors.SecretError` while the vault is not open."""
        ...

    async def open(self, runtime: Runtime, metrics: Metrics) -> None:
        """Open the vault and publish the first configuration, when the source can before the
        gateway starts serving (a folder, a fixed set); a cluster source does it in
        :meth:`run`."""
        ...

    async def run(self, runtime: Runtime, metrics: Metrics) -> None:
        """Follow changes and publish each until cancelled (returns at once when the source
        does not change)."""
        ...


__all__ = ["Source"]
