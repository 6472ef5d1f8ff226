"""Origin validation: a plain ASGI middleware that refuses foreign browser origins with 403.

Protects local gateways against DNS rebinding: a request carrying an ``Origin`` header is
served only when that origin is a loopback one or explicitly allowed. Requests without an
``Origin`` (MCP clients that are not browsers) pass.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


def is_loopback_origin(origin: str) -> bool:
    try:
        parts = urlsplit(origin)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or host is None:
        return False
    return host in _LOOPBACK or host.endswith(".localhost") or host.startswith("127.")


class OriginMiddleware:
    def __init__(self, app: ASGIApp, allowed: Iterable[str] = ()) -> None:
        self.app = app
        allowed = tuple(allowed)
        self.any = "*" in allowed
        self.allowed = frozenset(a.rstrip("/").lower().encode("latin-1") for a in allowed)
        self._cache: dict[bytes, bool] = {}

    def _ok(self, origin: bytes) -> bool:
        verdict = self._cache.get(origin)
        if verdict is None:
            verdict = origin.rstrip(b"/").lower() in self.allowed or is_loopback_origin(
                origin.decode("latin-1"))
            if len(self._cache) < 1024:
                self._cache[origin] = verdict
        return verdict

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self.any:
            for key, value in scope["headers"]:
                if key == b"origin":
                    if not self._ok(value):
                        body = b'{"error":"forbidden origin"}'
                        await send({"type": "http.response.start", "status": 403, "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
                        await send({"type": "http.response.body", "body": body})
                        return
                    break
        await self.app(scope, receive, send)
