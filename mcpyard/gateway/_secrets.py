"""Decrypting EncryptedSecrets into the vault on load and reload.

Each EncryptedSecret is decrypted with the real ``sops`` (MAC verified) and each value sealed
into the :class:`~mcpyard.crypto.vault.Vault` under ``namespace/name/key``, by the unsealer
both adapters share (:func:`mcpyard.crypto.unseal.unseal`). A secret that fails
is reported by (namespace, name) with a reason free of secrets, so only the servers that use it
are held back. A document decrypted before is not decrypted again. Plaintext stays in memory:
never in a log line, an error, a response or a file.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

import orjson

from mcpyard import errors
from mcpyard.crypto.vault import Vault
from mcpyard.gateway._runtime import SecretState, digest_value
from mcpyard.manifests import Loaded

log = logging.getLogger("mcpyard.gateway")

NsName = tuple[str, str]


@dataclass
class _Done:
    fingerprint: bytes
    failure: str | None
    digests: dict[str, str]


class Decryptor:
    def __init__(self, vault: Vault, *, age_key_file: Path | None, age_key: str | None) -> None:
        self.vault = vault
        self._age_key_file = age_key_file
        self._age_key = age_key
        self._done: dict[NsName, _Done] = {}
        self._digest_key = secrets.token_bytes(32)

    def __repr__(self) -> str:
        return f"<Decryptor: {len(self._done)} secrets>"

    def decrypt(self, loaded: Loaded) -> SecretState:
        """Decrypt every EncryptedSecret of ``loaded`` (blocking: run it in a thread)."""
        failures: dict[NsName, str] = {}
        digests: dict[str, str] = {}
        seen: set[NsName] = set()
        for key, document in loaded.documents.items():
            namespace, kind, name = key
            if kind != "EncryptedSecret":
                continue
            nsname = (namespace, name)
            seen.add(nsname)
            fingerprint = hashlib.sha256(orjson.dumps(document, default=str,
                                                      option=orjson.OPT_SORT_KEYS)).digest()
            done = self._done.get(nsname)
            if done is None or done.fingerprint != fingerprint or not all(
                    i in self.vault for i in done.digests):
                done = self._decrypt_one(nsname, document, fingerprint)
                self._done[nsname] = done
            if done.failure is not None:
                failures[nsname] = done.failure
            digests.update(done.digests)
        for gone in set(self._done) - seen:
            del self._done[gone]
        return SecretState(failures=failures, digests=digests)

    def _decrypt_one(self, nsname: NsName, document: Mapping[str, object], fingerprint: bytes
                     ) -> _Done:
        from mcpyard.crypto import unseal  # sops and age load with the first secret

        try:
            sealed = unseal.unseal(self.vault, *nsname, document,
                                   age_key_file=self._age_key_file, age_key=self._age_key)
        except errors.SecretError as exc:
            reason = exc.cause
            log.error("EncryptedSecret %s/%s: cannot decrypt: %s", *nsname, reason)
            return _Done(fingerprint, f"cannot decrypt: {reason}", {})
        digests = {i: digest_value(self._digest_key, i, self.vault.reveal(i)) for i in sealed}
        log.info("EncryptedSecret %s/%s: decrypted %d values", *nsname, len(sealed))
        return _Done(fingerprint, None, digests)

    def prune(self, keep: Collection[str]) -> None:
        """Forget values that no loaded secret holds and no serving server uses."""
        held = {i for d in self._done.values() for i in d.digests}
        for identity in self.vault.identities():
            if identity not in held and identity not in keep:
                self.vault.discard(identity)


def seal_static(vault: Vault, values: dict[str, str]) -> SecretState:
    """Seal plain values of a fixed configuration (embedding, tests)."""
    key = secrets.token_bytes(32)
    digests = {}
    for identity, value in values.items():
        vault.seal(identity, value)
        digests[identity] = digest_value(key, identity, value)
    return SecretState(digests=digests)
