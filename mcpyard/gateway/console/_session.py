"""Console sign-in: a Member's token, exchanged once for a signed session cookie.

The cookie (``mcpyard_console``, ``Path=/console``, ``HttpOnly``, ``SameSite=Strict``,
``Secure`` behind HTTPS) holds the token's hash, an expiry and a CSRF nonce, signed with
HMAC-SHA256 under a key derived from the gateway's master key (HKDF-SHA256 with the purpose
label :data:`PURPOSE`), so every replica holding that master key (the same state directory, or
the cluster's master-key Secret) accepts a cookie another replica issued, and a gateway with
another master key refuses it; the master key itself never signs anything. It is not the
token: it opens the console, nothing else (the MCP endpoints take a bearer token and ignore
cookies). Every page resolves the hash against the live configuration again, so a member
removed, disabled, expired or no longer ``role: admin`` loses the console on the next click,
as they lose MCP access.

CSRF: pages only read (GET). The two forms that POST (sign in, sign out) must come from the
console's own origin (``Origin`` / ``Sec-Fetch-Site``), and sign-out also carries the nonce.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

COOKIE = "mcpyard_console"
LIFETIME = 8 * 3600.0
"""Seconds a sign-in lasts."""
PURPOSE = b"mcpyard/console/session-cookie/v1"
"""The HKDF label of the cookie key: a key for this use only, unrelated to the vault's."""


def derive_key(master_key: bytes, purpose: bytes = PURPOSE) -> bytes:
    """The signing key of a master key for one use (HKDF-SHA256; default :data:`PURPOSE`,
    the console's cookies; the OAuth pages seal their forms under another label)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=purpose).derive(master_key)


@dataclass(frozen=True)
class Session:
    token_hash: str
    expires: float
    csrf: str


class Signer:
    """Signs and checks session cookies.

    ``master_key`` returns the gateway's master key once it is loaded (None before: then no
    cookie is issued or accepted); the signing key is derived from it. Without it (embedding,
    tests) the key is ``key``, else random for this process."""

    def __init__(self, key: bytes | None = None, *,
                 master_key: Callable[[], bytes | None] | None = None,
                 lifetime: float = LIFETIME) -> None:
        self._master_key = master_key
        self._key = key or (None if master_key is not None else secrets.token_bytes(32))
        self._derived_from: bytes | None = None
        self.lifetime = lifetime

    def _signing_key(self) -> bytes | None:
        if self._master_key is None:
            return self._key
        master = self._master_key()
        if not master:
            return None
        if master != self._derived_from:  # first use, or a new master key
            self._key, self._derived_from = derive_key(master), master
        return self._key

    @property
    def ready(self) -> bool:
        """Whether cookies can be issued now (the master key is loaded)."""
        return self._signing_key() is not None

    def _mac(self, payload: bytes) -> str:
        key = self._signing_key()
        if key is None:
            raise RuntimeError("the console's signing key is not there yet")
        digest = hmac.new(key, payload, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def issue(self, token_hash: str, now: float | None = None) -> tuple[str, Session]:
        session = Session(token_hash, (now or time.time()) + self.lifetime,
                          secrets.token_urlsafe(18))
        payload = json.dumps({"h": session.token_hash, "e": session.expires,
                              "c": session.csrf}, separators=(",", ":")).encode()
        body = base64.urlsafe_b64encode(payload).decode().rstrip("=")
        return f"{body}.{self._mac(payload)}", session

    def check(self, cookie: str | None, now: float | None = None) -> Session | None:
        if not cookie or cookie.count(".") != 1:
            return None
        body, mac = cookie.split(".")
        try:
            payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except ValueError:
            return None
        if not self.ready or not hmac.compare_digest(self._mac(payload), mac):
            return None
        try:
            data = json.loads(payload)
            session = Session(str(data["h"]), float(data["e"]), str(data["c"]))
        except (ValueError, KeyError, TypeError):
            return None
        if session.expires <= (now or time.time()):
            return None
        return session


def same_origin(headers: dict[str, str], scheme: str, host: str) -> bool:
    """Whether a form POST comes from the console's own pages (login-CSRF defence)."""
    site = headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = headers.get("origin")
    if origin is None:
        return site is not None  # a browser sends one of the two on a POST
    return origin == f"{scheme}://{host}"
