"""Running the gateway under uvicorn: uvloop + httptools, no access log, clean shutdown.

uvicorn waits for open responses before it runs the lifespan shutdown, and a GET stream or an
SSE session never ends on its own; so a shutdown first hangs up every stream.
"""

from __future__ import annotations

import asyncio
import importlib.util
import math
import signal
import socket
from collections.abc import Callable
from types import FrameType
from typing import Any

import uvicorn
from starlette.applications import Starlette

from mcpyard.gateway._app import build_app
from mcpyard.gateway._settings import Settings


class Server(uvicorn.Server):
    """A uvicorn server for the gateway app that ends open streams when asked to exit."""

    def __init__(self, app: Starlette, settings: Settings, *, log_level: str = "info",
                 on_ready: Callable[[Starlette], None] | None = None) -> None:
        fast = importlib.util.find_spec("uvloop") is not None
        # uvicorn cancels what is still running this long after the exit signal; the drain
        # answers its calls before that (settings.drain_seconds).
        config = uvicorn.Config(
            app, host=settings.host, port=settings.port, access_log=False, log_config=None,
            log_level=log_level, lifespan="on",
            timeout_graceful_shutdown=math.ceil(settings.drain_seconds) + 10,
            proxy_headers=False, server_header=False,
            loop="uvloop" if fast else "asyncio",
            http="httptools" if importlib.util.find_spec("httptools") else "h11")
        super().__init__(config)
        self.app = app
        self.drain_seconds = settings.drain_seconds
        self._on_ready = on_ready
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain: asyncio.Task[None] | None = None

    async def startup(self, sockets: Any = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets)
        if self.started and self._on_ready is not None:
            self._on_ready(self.app)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # uvicorn stops accepting at once and waits for open responses; the drain lets
        # calls in flight finish, answers the rest, then hangs up the streams that never end
        # on their own (GET and legacy SSE streams: the latter carry answers until then).
        if self._loop is not None and self._drain is None:
            self._loop.call_soon_threadsafe(self._start_drain)
        else:
            self.app.state.runtime.sessions.hangup()
        super().handle_exit(sig, frame)

    def _start_drain(self) -> None:
        if self._drain is None:
            self._drain = asyncio.ensure_future(self._drain_then_hangup())

    async def _drain_then_hangup(self) -> None:
        try:
            await self.app.state.router.drain(self.drain_seconds)
        finally:
            self.app.state.runtime.sessions.hangup()

    async def stop(self) -> None:
        """Ask the server to exit (from inside its event loop, e.g. in tests)."""
        self.app.state.runtime.sessions.hangup()
        self.should_exit = True
        await asyncio.sleep(0)


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port``; OSError (port in use...) names the address."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


def run(settings: Settings, *, log_level: str = "info",
        on_ready: Callable[[Starlette], None] | None = None) -> None:
    """Serve until SIGINT / SIGTERM; closes every upstream (and child process) before returning.

    The ports are taken first: a port in use fails here (OSError), before a secret is
    decrypted or a server spawned."""
    sockets = [listen(settings.host, settings.port)]
    try:
        if settings.admin_port is not None:
            sockets.append(listen(settings.host, settings.admin_port))
    except OSError:
        sockets[0].close()
        raise
    server = Server(build_app(settings), settings, log_level=log_level, on_ready=on_ready)
    # uvicorn re-raises the signal that stopped it once it has shut down, with the handlers it
    # found; these make that a normal return (exit status 0) instead of death by signal.
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGINT,
                                                                     signal.SIGTERM)}
    try:
        server.run(sockets=sockets)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for sock in sockets:
            sock.close()
