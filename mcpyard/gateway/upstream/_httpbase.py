"""What both HTTP clients share (streamable HTTP, legacy HTTP+SSE): the server's URL, this
upstream's view of the gateway's one connection pool, and the HTTP hop's failures as errors
free of URL queries and secrets."""

from __future__ import annotations

from typing import ClassVar, Unpack

import aiohttp
from yarl import URL

from mcpyard import errors
from mcpyard.compiler.config import ServerConfig
from mcpyard.gateway.upstream import _pool, _wire
from mcpyard.gateway.upstream._base import Wiring
from mcpyard.gateway.upstream._common import UpstreamBase


class HTTPUpstream(UpstreamBase):
    transport: ClassVar[str]
    """How a configuration error names the server's transport ("an sse server")."""

    def __init__(self, server: ServerConfig, **wiring: Unpack[Wiring]) -> None:
        super().__init__(server, **wiring)
        if not server.url:
            raise ValueError(f"{server.slug}: {self.transport} needs a url")
        self._url = URL(server.url)
        self._where = _wire.where(self._url)
        self._http: _pool.Client | None = None
        """This upstream's view of the gateway's one connection pool (``_pool``), taken at
        the first request: a server nobody has asked holds none."""

    def _open_http(self) -> _pool.Client:
        self._check_open()
        self._http = _pool.client(self._url)
        return self._http

    def _credentials_refused(self, status: int) -> errors.UpstreamError | None:
        """The error for a 401 or 403 (the server is down until its secret is fixed)."""
        if status not in (401, 403):
            return None
        if self._inject:
            text = (f"{self._slug}: the upstream refused the gateway's credentials "
                    f"(HTTP {status}); check the secret configured for this server")
        else:
            text = (f"{self._slug}: the upstream requires credentials (HTTP {status}) "
                    "and none are configured for this server")
        self._fail(text)
        return errors.UpstreamError(text)

    def _broken(self, exc: BaseException) -> errors.UpstreamError:
        """A transport failure as a message without URL query or secret."""
        if isinstance(exc, aiohttp.ClientConnectorError):
            reason = _wire.os_reason(exc.os_error)
            text = f"{self._slug}: cannot connect to {self._where}: {reason}"
        elif isinstance(exc, aiohttp.ServerDisconnectedError):
            text = f"{self._slug}: {self._where} closed the connection"
        elif isinstance(exc, aiohttp.ClientPayloadError):
            text = f"{self._slug}: {self._where} sent a broken response"
        else:
            reason = _wire.os_reason(exc) if isinstance(exc, OSError) else type(exc).__name__
            text = f"{self._slug}: request to {self._where} failed ({reason})"
        self._fail(text)
        return errors.UpstreamError(text)
