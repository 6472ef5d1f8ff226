"""Unsealing an EncryptedSecret: decrypted with sops, each value sealed into a vault at once.

The one place where a secret's plaintext values exist outside the vault, for both adapters:
``serve`` decrypts files from git (``verify_mac=True``), the operator decrypts objects read back
from the API server (``verify_mac=False``: each value's own AES-GCM tag is the check, see
:func:`mcpyard.crypto.sops.decrypt`). The values go straight from sops's output into the
:class:`~mcpyard.crypto.vault.Vault`, each bound to its identity ``namespace/name/key``
(:func:`mcpyard.compiler.config.secret_identity`); only the identities come back.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from mcpyard import errors
from mcpyard.compiler import config
from mcpyard.crypto import sops
from mcpyard.crypto.vault import Vault


def unseal(
    vault: Vault,
    namespace: str,
    name: str,
    document: Mapping[str, object],
    *,
    age_key_file: Path | None = None,
    age_key: str | None = None,
    verify_mac: bool = True,
) -> tuple[str, ...]:
    """Decrypt EncryptedSecret ``namespace/name`` (its manifest ``document``) and seal every
    value into ``vault``; the identities sealed, sorted.

    All or nothing: a value that is not a string (sops keeps a value's YAML type) or a
    document without ``spec.stringData`` raises before any value is sealed. Raises
    :class:`~mcpyard.errors.SecretError` as ``secret NAMESPACE/NAME: cause``, never with a
    value in it. Blocking (sops runs as a subprocess): call it from a thread in async code.
    """
    plain = sops.decrypt(document, age_key_file=age_key_file, age_key=age_key,
                         verify_mac=verify_mac)
    spec = plain.get("spec")
    values = spec.get("stringData") if isinstance(spec, dict) else None
    if not isinstance(values, dict):
        raise errors.SecretError(f"secret {namespace}/{name}: no spec.stringData",
                                 cause="no spec.stringData")
    strings: dict[str, str] = {}
    for key, value in sorted(values.items()):
        if not isinstance(value, str):
            raise errors.SecretError(
                f"secret {namespace}/{name}: stringData.{key} is not a string",
                cause=f"stringData.{key} is not a string",
            )
        strings[key] = value
    sealed = []
    for key, value in strings.items():
        identity = config.secret_identity(namespace, name, key)
        vault.seal(identity, value)
        sealed.append(identity)
    return tuple(sealed)


__all__ = ["unseal"]
