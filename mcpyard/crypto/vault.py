"""The gateway's master key and the in-memory vault of secret values.

Every secret value the gateway holds is sealed with AES-256-GCM under the master key, with a
random 96-bit nonce and the value's identity (``namespace/name/key``) as associated data, so a
ciphertext moved to another identity fails its tag. Values are revealed just in time for an
upstream request and never logged; errors and ``repr`` name identities, never values.
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import stat
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from mcpyard import errors

KEY_BYTES = 32
"""Size of the master key: AES-256."""
KEY_FILE = "master.key"
"""The master key's file name inside the state directory."""
_NONCE_BYTES = 12


class HasIdentity(Protocol):
    """Anything that names a secret value, such as ``mcpyard.compiler.config.SecretRef``."""

    @property
    def identity(self) -> str:
        """``namespace/name/key``."""
        ...


def load_or_create_master_key(state_dir: Path) -> bytes:
    """The 32-byte master key in ``state_dir/master.key``, created (mode 0600) on first run.

    The directory is created with mode 0700 when missing. An existing key file that other users
    could read, or that is not exactly 32 bytes, is refused with :class:`SecretError`.
    """
    state_dir = Path(state_dir)
    path = state_dir / KEY_FILE
    try:
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise errors.SecretError(
            f"cannot create state directory {state_dir}: {exc.strerror}"
        ) from None
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    _create_key(path)
    # Read back what is on disk: another process may have won the race to create it.
    try:
        return _read_key(path)
    except FileNotFoundError:
        raise errors.SecretError(f"master key {path} vanished while being created") from None


def _read_key(path: Path) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise errors.SecretError(f"cannot read master key {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise errors.SecretError(f"master key {path} is not a regular file")
        mode = stat.S_IMODE(st.st_mode)
        if mode & 0o077:
            raise errors.SecretError(
                f"master key {path} has mode {mode:04o}: other users could read it; "
                f"run `chmod 600 {path}` (and rotate the key if it may have leaked)"
            )
        key = f.read(KEY_BYTES + 1)
    if len(key) != KEY_BYTES:
        raise errors.SecretError(
            f"master key {path} holds {len(key)} bytes, expected {KEY_BYTES}; "
            "it is damaged or not a mcpyard master key"
        )
    return key


def _create_key(path: Path) -> None:
    # Written under a temporary name created 0600 from the start, then linked into place:
    # the key is never visible with a wider mode, never half-written, and link() refuses to
    # replace a key another process created in the meantime.
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(tmp, flags, 0o600)
    except OSError as exc:
        raise errors.SecretError(f"cannot create master key {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(KEY_BYTES))
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    except OSError as exc:
        raise errors.SecretError(f"cannot create master key {path}: {exc.strerror}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


class Vault:
    """Secret values sealed in memory under the master key, revealed just in time.

    Satisfies ``mcpyard.gateway.upstream._base.SecretSource``: :meth:`reveal` accepts a
    ``SecretRef`` (anything with ``.identity``) as well as the identity string.
    """

    __slots__ = ("_aead", "_sealed")

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise errors.SecretError(f"the master key must be {KEY_BYTES} bytes, got {len(key)}")
        self._aead = AESGCM(key)
        self._sealed: dict[str, tuple[bytes, bytes]] = {}

    def seal(self, identity: str, plaintext: str) -> None:
        """Encrypt ``plaintext`` bound to ``identity`` and keep it, replacing any old value."""
        nonce = secrets.token_bytes(_NONCE_BYTES)
        ciphertext = self._aead.encrypt(nonce, plaintext.encode("utf-8"), identity.encode())
        self._sealed[identity] = (nonce, ciphertext)

    def reveal(self, ref_or_identity: str | HasIdentity) -> str:
        """Decrypt the value of a secret; :class:`SecretError` naming it when unknown or altered."""
        identity = ref_or_identity if isinstance(ref_or_identity, str) else ref_or_identity.identity
        try:
            nonce, ciphertext = self._sealed[identity]
        except KeyError:
            raise errors.SecretError(f"secret {identity}: not in the vault") from None
        try:
            plaintext = self._aead.decrypt(nonce, ciphertext, identity.encode())
        except InvalidTag:
            raise errors.SecretError(
                f"secret {identity}: failed its integrity check in the vault"
            ) from None
        return plaintext.decode("utf-8")

    def export_sealed(self, identity: str) -> str:
        """The sealed value of ``identity`` as text (base64 of nonce + ciphertext + tag).

        Still encrypted under the master key and bound to ``identity``: safe to store where
        the master key is not (the operator hands it to the gateway this way). The same text
        comes back until the value is sealed again.
        """
        try:
            nonce, ciphertext = self._sealed[identity]
        except KeyError:
            raise errors.SecretError(f"secret {identity}: not in the vault") from None
        return base64.b64encode(nonce + ciphertext).decode("ascii")

    def import_sealed(self, identity: str, sealed: str) -> None:
        """Keep a value sealed elsewhere under the same master key (see :meth:`export_sealed`).

        The value is checked at once: text that is not a sealed value, or that was sealed under
        another key or for another identity, raises :class:`SecretError` naming the identity.
        """
        try:
            raw = base64.b64decode(sealed.encode("ascii"), validate=True)
        except (ValueError, UnicodeEncodeError):
            raise errors.SecretError(f"secret {identity}: not a sealed value") from None
        if len(raw) < _NONCE_BYTES + 16:
            raise errors.SecretError(f"secret {identity}: not a sealed value")
        nonce, ciphertext = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:]
        try:
            self._aead.decrypt(nonce, ciphertext, identity.encode())
        except InvalidTag:
            raise errors.SecretError(
                f"secret {identity}: sealed under another master key or for another secret"
            ) from None
        self._sealed[identity] = (nonce, ciphertext)

    def discard(self, identity: str) -> None:
        """Forget a value; nothing happens when it is not there."""
        self._sealed.pop(identity, None)

    def identities(self) -> frozenset[str]:
        """The identities of every value held (never the values)."""
        return frozenset(self._sealed)

    def __contains__(self, identity: object) -> bool:
        if not isinstance(identity, str):
            identity = getattr(identity, "identity", None)
        return identity in self._sealed

    def __len__(self) -> int:
        return len(self._sealed)

    def __repr__(self) -> str:
        return f"<Vault: {len(self._sealed)} sealed values>"


__all__ = ["KEY_BYTES", "KEY_FILE", "HasIdentity", "Vault", "load_or_create_master_key"]
