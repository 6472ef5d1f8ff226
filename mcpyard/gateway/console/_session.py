"""Console sign-in: a Member's token, exchanged once for a signed session cookie.

The cookie (``mcpyard_console``, ``Path=/console``, ``HttpOnly``, ``SameSite=Strict``,
``Secure`` behind HTTPS) holds the token's hash, an expiry and a CSRF nonce, signed with
HMAC-SHA256 under a key of this process. It is not the token: it opens the console, nothing
else (the MCP endpoints take a bearer token and ignore cookies). Every page resolves the hash
against the live configuration again, so a member removed, disabled, expired or no longer
``role: admin`` loses the console on the next click, as they lose MCP access.

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
from dataclasses import dataclass

COOKIE = "mcpyard_console"
LIFETIME = 8 * 3600.0
"""Seconds a sign-in lasts."""


@dataclass(frozen=True)
class Session:
    token_hash: str
    expires: float
    csrf: str


class Signer:
    """Signs and checks session cookies (one random key per gateway process)."""

    def __init__(self, key: bytes | None = None, *, lifetime: float = LIFETIME) -> None:
        self._key = key or secrets.token_bytes(32)
        self.lifetime = lifetime

    def _mac(self, payload: bytes) -> str:
        digest = hmac.new(self._key, payload, hashlib.sha256).digest()
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
        if not hmac.compare_digest(self._mac(payload), mac):
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
