"""Member tokens: ``mwt_`` + 32 random bytes (url-safe base64) + a 6-character checksum.

The checksum (CRC32 of the random part, in base62, as GitHub's tokens do) lets a secret
scanner recognise a token and lets the gateway reject a mistyped one without looking it up.
Only the SHA-256 hash of a token (``sha256:<64 hex>``, the Member ``tokenHash``) is ever
stored or compared. Pure functions: no I/O beyond :mod:`secrets`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import zlib

PREFIX = "mwt_"
"""What every member token starts with."""
RANDOM_BYTES = 32
"""Random bytes in a token made by :func:`new`."""
CHECKSUM_LENGTH = 6
"""Characters of base62 checksum at the end of a token (62**6 > 2**32)."""

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# Unpadded url-safe base64 of at least RANDOM_BYTES bytes.
_BODY_MIN = (RANDOM_BYTES * 4 + 2) // 3
_BODY = re.compile(r"[A-Za-z0-9_-]+")
_CHECKSUM = re.compile(rf"[0-9A-Za-z]{{{CHECKSUM_LENGTH}}}")


def _checksum(body: str) -> str:
    n = zlib.crc32(body.encode("ascii"))
    out = []
    for _ in range(CHECKSUM_LENGTH):
        n, digit = divmod(n, 62)
        out.append(_BASE62[digit])
    return "".join(reversed(out))


def new() -> str:
    """A fresh random member token."""
    body = base64.urlsafe_b64encode(secrets.token_bytes(RANDOM_BYTES)).decode("ascii")
    body = body.rstrip("=")
    return f"{PREFIX}{body}{_checksum(body)}"


def is_well_formed(token: str) -> bool:
    """True when ``token`` has the prefix, length, characters and checksum of a member token.

    A well-formed token is not necessarily a valid one: only :func:`matches` against a
    Member's ``tokenHash`` says that.
    """
    if not token.startswith(PREFIX):
        return False
    body = token[len(PREFIX) : -CHECKSUM_LENGTH]
    checksum = token[-CHECKSUM_LENGTH:]
    if len(body) < _BODY_MIN or len(body) % 4 == 1 or not _BODY.fullmatch(body):
        return False
    if not _CHECKSUM.fullmatch(checksum):
        return False
    return hmac.compare_digest(_checksum(body), checksum)


def hash(token: str) -> str:
    """``sha256:<64 hex>`` of the token, the format of a Member's ``tokenHash``."""
    # surrogatepass keeps the encoding one-to-one for any str a header could decode to.
    digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
    return f"sha256:{digest}"


def matches(token: str, token_hash: str) -> bool:
    """True when ``token`` hashes to ``token_hash``; the comparison takes constant time."""
    return hmac.compare_digest(
        hash(token).encode("ascii"), token_hash.encode("utf-8", "surrogatepass")
    )


__all__ = [
    "CHECKSUM_LENGTH",
    "PREFIX",
    "RANDOM_BYTES",
    "hash",
    "is_well_formed",
    "matches",
    "new",
]
