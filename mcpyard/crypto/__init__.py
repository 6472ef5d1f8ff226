"""Cryptography of mcpyard: member tokens, the in-memory secret vault, and the SOPS bridge.

- :mod:`~mcpyard.crypto.tokens`: ``mwt_`` member tokens and their ``sha256:`` hashes (pure).
- :mod:`~mcpyard.crypto.vault`: the gateway's master key and an AES-256-GCM envelope that keeps
  each secret value encrypted in memory, bound to its identity ``namespace/name/key``, until
  the moment an upstream request needs it.
- :mod:`~mcpyard.crypto.sops`: decrypts and writes EncryptedSecret manifests with the real
  ``sops`` binary and age keys.
- :mod:`~mcpyard.crypto.unseal`: the one decrypt-and-seal of an EncryptedSecret, for ``serve``
  and the operator alike: sops's plaintext goes straight into the vault.

No adapter code lives here: nothing imports kopf, Starlette, the Kubernetes client or HTTP
clients, and nothing logs. The only I/O is the master key file and the ``sops`` subprocess.
Plaintext never appears in an exception message or a ``repr``.
"""

from __future__ import annotations
