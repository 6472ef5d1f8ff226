"""The bridge's child process: spawned in its own process group, restarted with backoff.

Why not the gateway's ``gateway.upstream._process.Supervisor``: the layer contract makes
``bridge`` and ``gateway`` independent siblings (import-linter), so the bridge may not import it;
and it would not fit as is either: it builds the child's environment from a compiler
``ServerConfig`` (a minimal one, on purpose: the gateway's own environment holds secrets), while
a runner container's environment IS the server's (Kubernetes puts ``env`` and ``as: env``
secrets there), and it logs the child's stderr at debug level, while here the child's stderr is
the container log and is passed through untouched (inherited file descriptor). If that
supervisor moves to a shared lower layer, this module can shrink to a thin use of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Sequence

log = logging.getLogger("mcpyard.bridge")

STREAM_LIMIT = 64 * 1024 * 1024
"""Longest line read from the child: a stdio message is one line and may be large."""
BACKOFF_MIN = 0.5
BACKOFF_MAX = 30.0
STABLE_AFTER = 60.0
"""A process that stayed up this long resets the backoff."""
GRACE = 5.0
"""Between SIGTERM and SIGKILL of the child's process group."""


class Supervisor:
    """Keeps one child process running; see the module docstring.

    ``serve(process)`` is awaited per process (the handshake, then reading its stdout) and
    returns when its stdout ended. ``state`` is a short human-readable reason for ``/readyz``
    while no process is usable.
    """

    def __init__(
        self,
        command: Sequence[str],
        serve: Callable[[asyncio.subprocess.Process], Awaitable[None]],
    ) -> None:
        self.command = tuple(command)
        self._serve = serve
        self.process: asyncio.subprocess.Process | None = None
        self.state = "starting"
        self.restarts = 0
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._supervise(), name="supervisor")

    async def close(self) -> None:
        """Stop the child's process group and the supervisor; idempotent."""
        self._closing = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _supervise(self) -> None:
        loop = asyncio.get_running_loop()
        delay = BACKOFF_MIN
        while not self._closing:
            started = loop.time()
            try:
                process = await asyncio.create_subprocess_exec(
                    *self.command,
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=None,  # the child's stderr is the container log: pass it through
                    start_new_session=True,
                    limit=STREAM_LIMIT,
                )
            except OSError as exc:
                reason = (
                    "command not found"
                    if isinstance(exc, FileNotFoundError)
                    else (exc.strerror or type(exc).__name__)
                )
                self.state = f"cannot start {self.command[0]!r}: {reason}"
            else:
                self.process = process
                log.info("started %s (pid %d)", self.command[0], process.pid)
                try:
                    await self._run(process)
                finally:
                    self.process = None
                if loop.time() - started >= STABLE_AFTER:
                    delay = BACKOFF_MIN
            if self._closing:
                return
            self.restarts += 1
            log.warning("%s; restarting in %.1fs (backoff)", self.state, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX)

    async def _run(self, process: asyncio.subprocess.Process) -> int:
        failure = None
        try:
            await self._serve(process)  # returns when the child's stdout ends
            try:
                async with asyncio.timeout(GRACE):
                    await process.wait()
            except TimeoutError:
                failure = "the server process closed its stdout but did not exit"
        except Exception as exc:  # the handshake failed: this process is of no use
            failure = str(exc) or type(exc).__name__
        finally:
            # Also on cancellation (close): stop the whole group, reap the leader.
            await asyncio.shield(terminate(process))
        code = process.returncode
        assert code is not None  # terminate() reaped it
        self.state = failure or f"the server process exited with code {code}"
        return code


async def terminate(process: asyncio.subprocess.Process) -> None:
    """Close stdin, SIGTERM the process group, SIGKILL it after a grace period, reap."""
    if process.stdin is not None:
        process.stdin.close()  # the stdio way to ask a server to stop
    if process.returncode is None:
        _signal_group(process.pid, signal.SIGTERM)
        try:
            async with asyncio.timeout(GRACE):
                await process.wait()
        except TimeoutError:
            _signal_group(process.pid, signal.SIGKILL)
            await process.wait()
    # Whatever the leader left behind in its group (a server started by npx or uvx).
    _signal_group(process.pid, signal.SIGKILL)
    for _ in range(200):
        reap_orphans()
        try:
            os.killpg(process.pid, 0)
        except (ProcessLookupError, PermissionError):
            return
        await asyncio.sleep(0.01)
    log.warning("process group %d still has members after SIGKILL", process.pid)


def reap_orphans(exclude: int | None = None) -> None:
    """Reap zombies that were reparented to us (only happens when the bridge is PID 1).

    Never ``waitpid(-1)``: that could take the exit status of the child asyncio waits for.
    Only processes that are zombies now are reaped; the direct child is never a zombie for
    long, and asyncio reaps it by its own pid.
    """
    if os.getpid() != 1:
        return
    with contextlib.suppress(OSError):
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == exclude:
                continue
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    stat = f.read()
            except OSError:
                continue
            fields = stat[stat.rfind(b")") + 2 :].split()
            if fields[0] == b"Z" and fields[1] == b"1":
                with contextlib.suppress(ChildProcessError, OSError):
                    os.waitpid(int(entry), os.WNOHANG)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
