"""Running the bridge: uvicorn on the app, signals, graceful shutdown, the exit code.

SIGTERM or SIGINT: ``/readyz`` turns 503, new requests are refused (503 with a JSON-RPC error)
and the sessions' streams end, while the requests in flight go on: the bridge keeps listening
for the answers and notifications they may need (an elicitation answer comes in a POST of its
own). Those still running after ``grace`` seconds fail with a JSON-RPC error; then uvicorn
stops, the child's process group is stopped (SIGTERM, SIGKILL after a few seconds) and the
bridge exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass

import uvicorn

from mcpyard.bridge import _http
from mcpyard.mcp import process

log = logging.getLogger("mcpyard.bridge")

REAP_EVERY = 5.0


@dataclass(frozen=True)
class Settings:
    command: tuple[str, ...]
    host: str = "0.0.0.0"
    port: int = 8080
    path: str = "/mcp"
    grace: float = 10.0
    """Seconds in-flight requests get to finish after SIGTERM."""
    startup_wait: float = 10.0
    """Seconds a request waits for a (re)starting server before it fails."""
    timeout: float = 30.0
    """Seconds the server gets to answer ``initialize``."""


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The bridge owns SIGTERM/SIGINT (it may be PID 1): see serve().
        yield


async def serve(settings: Settings) -> int:
    app = _http.BridgeApp(
        list(settings.command),
        path=settings.path,
        startup_wait=settings.startup_wait,
        timeout=settings.timeout,
    )
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        lifespan="off",
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=int(settings.grace) + 2,
    )
    server = _Server(config)
    loop = asyncio.get_running_loop()
    stopping: list[asyncio.Task[None]] = []

    async def drain() -> None:
        try:
            async with asyncio.timeout(settings.grace):
                await app.drained()
        except TimeoutError:
            app.child.fail_all("the bridge is shutting down")
        server.should_exit = True

    def stop(sig: signal.Signals) -> None:
        if stopping:
            server.force_exit = True  # a second signal: do not wait any longer
            return
        log.info("%s: shutting down (grace %gs)", sig.name, settings.grace)
        app.shutdown()
        stopping.append(loop.create_task(drain()))

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop, sig)
    reaper = loop.create_task(_reap(app)) if os.getpid() == 1 else None
    app.child.start()
    log.info(
        "serving %s at http://%s:%d%s",
        " ".join(settings.command),
        settings.host,
        settings.port,
        settings.path,
    )
    try:
        await server.serve()
    finally:
        for task in stopping:
            task.cancel()
        await app.child.close()
        if reaper is not None:
            reaper.cancel()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    if not server.started:
        return 1  # could not bind: uvicorn logged why
    log.info("stopped")
    return 0


async def _reap(app: _http.BridgeApp) -> None:
    """As PID 1 (no tini in front), orphaned grandchildren become ours to reap."""
    while True:
        await asyncio.sleep(REAP_EVERY)
        process.reap_orphans(exclude=app.child.pid)


def run(settings: Settings) -> int:
    return asyncio.run(serve(settings))
