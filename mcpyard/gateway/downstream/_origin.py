"""Origin and Host validation: a plain ASGI middleware that refuses foreign browsers with 403.

The MCP transports ask servers to validate ``Origin`` on every connection (DNS rebinding: a
page on ``evil.example`` that re-points its name at 127.0.0.1 is, to the browser, still
``evil.example``) and to answer 403 when it is present and not allowed. Requests without an
``Origin`` (MCP clients that are not browsers) pass.

An origin is parsed (scheme, host, port) and its host compared exactly: loopback is
``localhost``, a ``*.localhost`` name (RFC 6761: never leaves the machine), or a loopback IP
address (``127.0.0.0/8``, ``::1``); ``127.0.0.1.evil.example`` is none of those. Allowed
origins (``--allow-origin``) match on scheme, host and port, default ports filled in.

When the gateway listens on a loopback address, the ``Host`` header must name a loopback host
too (or one of ``allowed_hosts``): a rebound page can send no ``Origin`` on a simple request,
but its ``Host`` is still its own name. On other addresses (a cluster behind a Service) the
Host is checked only against ``allowed_hosts`` when some are given.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

_DEFAULT_PORTS = {"http": 80, "https": 443}


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (a hostname or an IP address, IPv6 without brackets) is loopback."""
    host = host.lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_origin(origin: str) -> tuple[str, str, int] | None:
    """``(scheme, host, port)`` of a serialized origin, None when it is not a valid http(s)
    origin (``null``, a path, credentials, a bad port...)."""
    try:
        parts = urlsplit(origin.strip())
        host = parts.hostname
        port = parts.port
    except ValueError:
        return None
    if (parts.scheme not in _DEFAULT_PORTS or not host or parts.username is not None
            or parts.path not in ("", "/") or parts.query or parts.fragment
            or host_of(parts.netloc) != host.lower()):  # "[::1].evil.example" parses as ::1
        return None
    return parts.scheme, host.rstrip("."), port or _DEFAULT_PORTS[parts.scheme]


def host_of(header: str) -> str | None:
    """The host part of a ``Host`` header (``[::1]:8080`` -> ``::1``), None when malformed."""
    header = header.strip().lower()
    if header.startswith("["):
        host, sep, rest = header[1:].partition("]")
        if not sep or (rest and not (rest[:1] == ":" and rest[1:].isdigit())):
            return None
    else:
        host, _, port = header.partition(":")
        if port and not port.isdigit():
            return None
    return host.rstrip(".") or None


class OriginMiddleware:
    def __init__(self, app: ASGIApp, allowed: Iterable[str] = (), *, check_host: bool = False,
                 allowed_hosts: Iterable[str] = ()) -> None:
        self.app = app
        allowed = tuple(allowed)
        self.any = "*" in allowed
        self.allowed = frozenset(p for p in map(parse_origin, allowed) if p is not None)
        self.allowed_hosts = frozenset(h.lower().rstrip(".") for h in allowed_hosts)
        self.check_host = check_host or bool(self.allowed_hosts)
        self._cache: dict[tuple[bytes, bytes], bool] = {}

    def _origin_ok(self, origin: str) -> bool:
        parsed = parse_origin(origin)
        return parsed is not None and (parsed in self.allowed or is_loopback_host(parsed[1]))

    def _host_ok(self, header: str) -> bool:
        host = host_of(header)
        return host is not None and (host in self.allowed_hosts or is_loopback_host(host))

    def _ok(self, origin: bytes | None, host: bytes | None) -> bool:
        key = (origin or b"", host or b"")
        verdict = self._cache.get(key)
        if verdict is None:
            verdict = ((origin is None or self.any or self._origin_ok(origin.decode("latin-1")))
                       and (not self.check_host or host is None
                            or self._host_ok(host.decode("latin-1"))))
            if len(self._cache) < 1024:
                self._cache[key] = verdict
        return verdict

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not (self.any and not self.check_host):
            origin = host = None
            for key, value in scope["headers"]:
                if key == b"origin":
                    origin = value
                elif key == b"host":
                    host = value
            if not self._ok(origin, host):
                body = (b'{"error":"forbidden origin"}' if origin is not None
                        and not (self.any or self._origin_ok(origin.decode("latin-1")))
                        else b'{"error":"forbidden host"}')
                await send({"type": "http.response.start", "status": 403, "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
