"""Secrets in the cluster: age identities in, values sealed under the master key out.

The age identities are every ``*.agekey`` entry of one Secret in the operator namespace
(several for rotation: each is tried). The gateway's master key is a Secret there too, created
on first start. Each EncryptedSecret is decrypted in memory with sops (``verify_mac=False``:
the API server re-serialises objects, so the whole-document MAC cannot survive it; each value's
own AES-GCM tag is the integrity check) and every value is sealed at once in a
:class:`~mcpyard.crypto.vault.Vault` under the master key, by the unsealer ``serve`` uses too
(:func:`mcpyard.crypto.unseal.unseal`). Plaintext leaves the vault only to
fill a hosted server's env Secret and for a discovery request; failures carry sanitised reasons.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from mcpyard import errors, jsontypes, kube
from mcpyard.compiler import config
from mcpyard.crypto import unseal
from mcpyard.crypto.vault import KEY_BYTES, KEY_FILE, Vault
from mcpyard.operator._settings import Settings

NsName = tuple[str, str]
AGE_SUFFIX = ".agekey"
_IDENTITY_TTL = 10.0


@dataclass
class Decrypted:
    """What the operator knows about one EncryptedSecret: never a plaintext value."""

    fingerprint: str
    failure: str | None = None
    sealed: dict[str, str] = field(default_factory=dict)
    """identity -> sealed text (AES-GCM under the master key), stable between decryptions."""


def fingerprint(body: kube.KubeObject) -> str:
    """What decryption depends on: the encrypted values and the sops block."""
    essence = [jsontypes.at(body, "spec", "stringData"), body.get("sops")]
    return hashlib.sha256(json.dumps(essence, sort_keys=True, default=str).encode()).hexdigest()


async def load_or_create_master_key(client: kube.Client, settings: Settings) -> bytes:
    """The master key from its Secret, created with 32 random bytes when absent."""
    ns, name = settings.operator_namespace, settings.master_key_secret
    for _ in range(3):
        current = await client.get("v1", "Secret", ns, name)
        if current is not None:
            raw = jsontypes.text(current, "data", KEY_FILE)
            try:
                key = base64.b64decode(raw, validate=True)
            except ValueError:
                key = b""
            if len(key) != KEY_BYTES:
                raise errors.SecretError(
                    f"Secret {ns}/{name}: {KEY_FILE} must hold {KEY_BYTES} bytes; "
                    "delete the Secret to let the operator create a new key"
                )
            return key
        body: kube.KubeObject = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {
                "name": name,
                "namespace": ns,
                "labels": {"app.kubernetes.io/managed-by": "mcpyard"},
            },
            "data": {KEY_FILE: base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()},
        }
        try:
            await client.create(body)
        except kube.ApiError as exc:
            if exc.status != 409:  # another replica made it first: read theirs
                raise
    raise errors.DependencyNotReady(f"Secret {ns}/{name} could not be read or created")


class SecretStore:
    """Decrypts EncryptedSecrets once per content and keeps their values sealed."""

    def __init__(self, client: kube.Client, settings: Settings, master_key: bytes) -> None:
        self._client = client
        self._settings = settings
        self._key = master_key
        self.vault = Vault(master_key)
        self._entries: dict[NsName, Decrypted] = {}
        self._identities: tuple[float, list[str], str | None] | None = None
        self._locks: dict[NsName, asyncio.Lock] = {}

    def get(self, key: NsName) -> Decrypted | None:
        return self._entries.get(key)

    def failed(self) -> list[NsName]:
        """The EncryptedSecrets whose last decryption failed (retried at each resync: the
        age identities may have been rotated since)."""
        return sorted(k for k, e in self._entries.items() if e.failure is not None)

    def forget(self, key: NsName) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            for identity in entry.sealed:
                self.vault.discard(identity)

    def reset_identities(self) -> None:
        """Read the age Secret again on the next decryption (a resync)."""
        self._identities = None

    async def _age_identities(self) -> tuple[list[str], str | None]:
        now = time.monotonic()
        if self._identities is not None and now - self._identities[0] < _IDENTITY_TTL:
            return self._identities[1], self._identities[2]
        ns, name = self._settings.operator_namespace, self._settings.age_secret
        problem: str | None = None
        keys: list[str] = []
        try:
            found = await self._client.get("v1", "Secret", ns, name)
        except kube.ApiError as exc:
            found, problem = None, f"cannot read Secret {ns}/{name} (HTTP {exc.status})"
        if found is None and problem is None:
            problem = f"no age identities: Secret {ns}/{name} does not exist"
        for entry, value in sorted(jsontypes.obj(found, "data").items()):
            if entry.endswith(AGE_SUFFIX) and isinstance(value, str):
                try:
                    keys.append(base64.b64decode(value, validate=True).decode("utf-8"))
                except (ValueError, UnicodeDecodeError):
                    continue
        if found is not None and not keys:
            problem = f"no age identities: Secret {ns}/{name} has no *{AGE_SUFFIX} entry"
        self._identities = (now, keys, problem)
        return keys, problem

    async def sync(self, body: kube.KubeObject, *, force: bool = False) -> Decrypted:
        """Decrypt ``body`` unless its content was decrypted before; never raises."""
        meta = jsontypes.obj(body, "metadata")
        key = (str(meta.get("namespace")), str(meta.get("name")))
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            fp = fingerprint(body)
            known = self._entries.get(key)
            if known is not None and known.fingerprint == fp and not (force and known.failure):
                return known
            entry = await self._decrypt(key, body, fp)
            if known is not None:
                for identity in set(known.sealed) - set(entry.sealed):
                    self.vault.discard(identity)
            self._entries[key] = entry
            return entry

    async def _decrypt(self, key: NsName, body: kube.KubeObject, fp: str) -> Decrypted:
        identities, problem = await self._age_identities()
        if problem is not None:
            return Decrypted(fp, failure=problem)
        document = {
            "apiVersion": body.get("apiVersion"),
            "kind": body.get("kind"),
            "metadata": {"name": key[1], "namespace": key[0]},
            "spec": body.get("spec"),
            "sops": body.get("sops"),
        }
        # All identities at once first (sops tries each); one by one only when one of them is
        # malformed, which makes sops refuse them all.
        candidates = ["\n".join(identities)]
        failure = "no age identity"
        while candidates:
            text = candidates.pop(0)
            try:
                sealed = await asyncio.to_thread(
                    unseal.unseal, self.vault, *key, document, age_key=text, verify_mac=False
                )
            except errors.SecretError as exc:
                failure = exc.cause
                if (isinstance(exc, errors.MalformedIdentity) and len(identities) > 1
                        and text not in identities):
                    candidates = list(identities)
                continue
            return Decrypted(fp, sealed={i: self.vault.export_sealed(i) for i in sealed})
        if len(identities) > 1:
            failure += f" (tried {len(identities)} age identities)"
        return Decrypted(fp, failure=failure)

    def sealed(self, identities: Iterable[str]) -> dict[str, str]:
        """identity -> sealed text, for each identity whose secret decrypted."""
        out: dict[str, str] = {}
        for identity in sorted(set(identities)):
            entry = self._entries.get(config.secret_of(identity))
            if entry is not None and identity in entry.sealed:
                out[identity] = entry.sealed[identity]
        return out

    def reveal(self, identity: str) -> str | None:
        """A plaintext value, for the one place that needs it; None when not decrypted."""
        if identity not in self.vault:
            return None
        return self.vault.reveal(identity)

    def digest(self, values: Mapping[str, str]) -> str:
        """A keyed hash of values (HMAC under the master key): safe to show, changes with them."""
        mac = hmac.new(self._key, b"mcpyard/env-secret-hash\0", hashlib.sha256)
        mac.update(json.dumps(sorted(values.items())).encode())
        return mac.hexdigest()[:16]
