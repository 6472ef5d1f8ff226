"""The vault of a source on this machine (a folder, a fixed set): its master key lives in the
gateway's state folder, made on first use."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mcpyard import errors
from mcpyard.compiler.config import SecretRef
from mcpyard.crypto import vault as vault_


class LocalVault:
    """The secret half of a :class:`~mcpyard.gateway.sources.Source` whose master key is in
    ``state_dir``: :meth:`open_vault` loads (or makes) it."""

    def __init__(self, state_dir: Path) -> None:
        self._state_dir = state_dir
        self._key: bytes | None = None
        self._vault: vault_.Vault | None = None

    @property
    def master_key(self) -> bytes | None:
        return self._key

    def reveal(self, ref: SecretRef) -> str:
        if self._vault is None:
            raise errors.SecretError("the vault is not open yet")
        return self._vault.reveal(ref)

    async def open_vault(self) -> vault_.Vault:
        """Load the master key (in a thread: a file) and open the vault with it."""
        self._key = await asyncio.to_thread(vault_.load_or_create_master_key, self._state_dir)
        self._vault = vault_.Vault(self._key)
        return self._vault
