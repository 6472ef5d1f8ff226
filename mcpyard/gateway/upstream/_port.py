"""Waiting for a spawned server's port: a hosted streamable-HTTP server the gateway runs
under a :class:`~mcpyard.mcp.process.Supervisor` is reached once its port
accepts connections."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from yarl import URL

from mcpyard import errors
from mcpyard.mcp.backoff import Backoff
from mcpyard.mcp.process import Supervisor


class PortWaiter:
    """Whether the spawned server's port is open (``open``), and waiting until it is."""

    def __init__(self, url: URL, supervisor: Supervisor, check_open: Callable[[], None]) -> None:
        self._host = url.host or "127.0.0.1"
        self._port = url.port
        self._supervisor = supervisor
        self._check_open = check_open
        """Raises once the client is closed."""
        self.open = False
        """Set at the first accepted connection; cleared when the process exits or refuses a
        connection (it is restarting)."""

    async def wait(self) -> None:
        """Wait (within the caller's timeout) until the spawned server accepts connections."""
        supervisor = self._supervisor
        delay = Backoff(0.01, 0.25)
        while not self.open:
            self._check_open()
            if supervisor.spawn_error is not None:
                raise errors.UpstreamError(supervisor.spawn_error)
            if supervisor.running:
                try:
                    _, writer = await asyncio.open_connection(self._host, self._port)
                except OSError:
                    pass
                else:
                    writer.close()
                    await writer.wait_closed()
                    self.open = True
                    return
                # Polling is the only way to learn a port opened; it stops at the first accept.
                await delay.sleep()
            else:
                await supervisor.changed.wait()
