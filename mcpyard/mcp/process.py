"""Supervision of one server process: its own process group, restarts with backoff, a clean end.

One :class:`Supervisor` per process the gateway spawns (stdio servers, local HTTP servers) and
for the bridge's child. It spawns the command in a new process group, runs ``on_spawn`` (the
stdio handshake) once per process, and restarts the process with exponential backoff when it
exits (0.5 s doubling to 30 s, back to 0.5 s once a process stayed up for 60 s). ``close()``
stops the whole process group (stdin closed, SIGTERM, SIGKILL after a grace period) and waits
for it, so no child outlives its parent and no zombie stays behind.

What the process inherits is the caller's choice: the gateway passes a minimal environment
(its own holds secrets) and drains stderr into its log; the bridge passes none (a runner
container's environment IS the server's) and lets stderr through as the container log.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Final

from mcpyard import errors
from mcpyard.mcp.backoff import Backoff

log = logging.getLogger("mcpyard.mcp.process")

STREAM_LIMIT: Final = 64 * 1024 * 1024
"""Longest line read from a process: a stdio message is one line and may be large."""
STABLE_AFTER: Final = 60.0
"""A process that stayed up this long resets the backoff."""
GRACE: Final = 3.0
"""Between SIGTERM and SIGKILL of a process group (and for a closed stdout to become an exit)."""
_LOG_LINE = 2000


class Supervisor:
    """Keeps one process running; see the module docstring.

    ``on_spawn(process)`` runs once per process (the stdio handshake); if it raises, the
    process is stopped and restarted later, and the message of an mcpyard error (else its
    type) becomes ``state``. ``on_exit(code)`` runs after a process ended, ``on_error(text)``
    when a spawn or an ``on_spawn`` failed. ``changed`` is set (and replaced) on every spawn,
    ``on_spawn`` completion, exit and failure, for callers waiting for the process. ``state``
    says, in a few words fit for ``/readyz``, why no process is usable.

    ``env``: the process's environment, built at each spawn (None: this process's own).
    ``stdio``: stdin and stdout are the MCP channel (else stdout is drained like stderr).
    ``inherit_stderr``: stderr goes where this process's goes (else into the log at debug,
    its last lines at warning when the process fails). ``name`` prefixes messages.
    """

    def __init__(
        self,
        command: Sequence[str],
        *,
        on_spawn: Callable[[asyncio.subprocess.Process], Awaitable[None]],
        on_exit: Callable[[int], None] | None = None,
        on_error: Callable[[str], None] | None = None,
        name: str | None = None,
        env: Callable[[], Mapping[str, str]] | None = None,
        workdir: Path | None = None,
        stdio: bool = True,
        inherit_stderr: bool = False,
        grace: float = GRACE,
    ) -> None:
        if not command:
            raise ValueError(f"{name or 'server'}: a spawned server needs a command")
        self.command = tuple(command)
        self._name = name
        self._prefix = f"{name}: " if name else ""
        self._on_spawn = on_spawn
        self._on_exit = on_exit
        self._on_error = on_error
        self._env = env
        self._workdir = workdir
        self._stdio = stdio
        self._inherit_stderr = inherit_stderr
        self.grace = grace
        self.process: asyncio.subprocess.Process | None = None
        self.spawn_error: str | None = None
        """Why the last spawn failed (command not found...); None once one succeeded."""
        self.state = "starting"
        self.restarts = 0
        self.changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._failure: str | None = None
        self._tail: collections.deque[str] = collections.deque(maxlen=20)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def start(self) -> None:
        if self._task is None and not self._closing:
            self._task = asyncio.get_running_loop().create_task(
                self._supervise(), name=f"{self._prefix}supervisor"
            )

    async def close(self) -> None:
        """Stop the process group and the supervisor; idempotent."""
        self._closing = True
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        # The supervisor's own cleanup (below) stops the process; wait for all of it.
        await asyncio.gather(task, return_exceptions=True)

    async def output_closed(self, process: asyncio.subprocess.Process) -> None:
        """The process closed its stdout (the stdio reader's EOF): it gets a grace period to
        exit, then its group is stopped, so a server that cannot talk any more is restarted."""
        try:
            async with asyncio.timeout(self.grace):
                await process.wait()
        except TimeoutError:
            self._failure = "the server process closed its stdout but did not exit"
            await terminate(process, self.grace)

    def _signal(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    async def _supervise(self) -> None:
        loop = asyncio.get_running_loop()
        delay = Backoff()
        while not self._closing:
            started = loop.time()
            try:
                process = await self._spawn()
            except (OSError, ValueError, errors.MCPyardError) as exc:
                self.state = self.spawn_error = self._spawn_message(exc)
                if self._on_error is not None:
                    self._on_error(self.spawn_error)
                self._signal()
            else:
                self.spawn_error = None
                self.process = process
                log.info("%sstarted %s (pid %d)", self._prefix, self.command[0], process.pid)
                self._signal()
                try:
                    code = await self._watch(process)
                finally:
                    self.process = None
                self.state = self._failure or f"the server process exited with code {code}"
                if code != 0 and self._tail:
                    log.warning("%sprocess %d exited with code %d; last stderr lines:\n%s",
                                self._prefix, process.pid, code, "\n".join(self._tail))
                if self._on_exit is not None:
                    self._on_exit(code)
                self._signal()
                if loop.time() - started >= STABLE_AFTER:
                    delay.reset()
            if self._closing:
                return
            self.restarts += 1
            log.warning("%s%s; restarting in %.1fs (backoff)",
                        "" if self.state.startswith(self._prefix) else self._prefix,
                        self.state, delay.delay)
            await delay.sleep()

    def _spawn_message(self, exc: BaseException) -> str:
        if isinstance(exc, errors.MCPyardError):
            return str(exc)
        if isinstance(exc, FileNotFoundError):
            in_workdir = self._workdir is not None and str(exc.filename) == str(self._workdir)
            reason = "working directory not found" if in_workdir else "command not found"
        elif isinstance(exc, OSError) and exc.strerror:
            reason = exc.strerror
        else:
            reason = type(exc).__name__
        return f"{self._prefix}cannot start {self.command[0]!r}: {reason}"

    async def _spawn(self) -> asyncio.subprocess.Process:
        env = dict(self._env()) if self._env is not None else None
        pipe = asyncio.subprocess.PIPE
        self._tail.clear()
        self._failure = None
        return await asyncio.create_subprocess_exec(
            *self.command,
            stdin=pipe if self._stdio else asyncio.subprocess.DEVNULL,
            stdout=pipe,
            stderr=None if self._inherit_stderr else pipe,
            cwd=self._workdir,
            env=env,
            start_new_session=True,
            limit=STREAM_LIMIT,
        )

    async def _watch(self, process: asyncio.subprocess.Process) -> int:
        """Run one process to its end; on cancellation (close) stop it, then re-raise."""
        drains = [] if self._inherit_stderr else [self._drain(process.stderr, "stderr")]
        if not self._stdio:
            drains.append(self._drain(process.stdout, "stdout"))
        loop = asyncio.get_running_loop()
        drainers = [loop.create_task(d, name=f"{self._prefix}drain") for d in drains]
        try:
            try:
                await self._on_spawn(process)
                self._signal()  # ready: waiters look again
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                message = str(exc) if isinstance(exc, errors.MCPyardError) else type(exc).__name__
                self._failure = message
                if self._on_error is not None:
                    self._on_error(message)
                await terminate(process, self.grace)
            return await process.wait()
        finally:
            # Also on cancellation (close): stop the whole group, reap the leader.
            await asyncio.shield(terminate(process, self.grace))
            # The pipes reach EOF once every holder in the group is gone.
            try:
                async with asyncio.timeout(self.grace):
                    await asyncio.gather(*drainers)
            except TimeoutError:
                for drainer in drainers:
                    drainer.cancel()
                await asyncio.gather(*drainers, return_exceptions=True)

    async def _drain(self, stream: asyncio.StreamReader | None, name: str) -> None:
        if stream is None:
            return
        while True:
            try:
                line = await stream.readline()
            except ValueError:  # a line longer than STREAM_LIMIT: skip what is buffered
                continue
            if not line:
                return
            text = line.decode("utf-8", "replace").rstrip()
            if len(text) > _LOG_LINE:
                text = text[:_LOG_LINE] + "..."
            self._tail.append(text)
            log.debug("%s%s: %s", self._prefix, name, text)


async def terminate(process: asyncio.subprocess.Process, grace: float = GRACE) -> None:
    """Close stdin, SIGTERM the process group, SIGKILL it after ``grace``, reap the leader,
    and wait (briefly) until nothing of the group is left."""
    if process.stdin is not None:
        process.stdin.close()  # the stdio way to ask a server to stop
    if process.returncode is None:
        _signal_group(process.pid, signal.SIGTERM)
        try:
            async with asyncio.timeout(grace):
                await process.wait()
        except TimeoutError:
            _signal_group(process.pid, signal.SIGKILL)
            await process.wait()
    await _end_group(process.pid)


async def _end_group(pgid: int) -> None:
    """SIGKILL what is left of a process group and wait (briefly) until it is gone.

    The leader is reaped already; its orphans belong to init now, which reaps them soon after
    they die (or to us, as PID 1: see ``reap_orphans``). Waiting for that keeps "close()
    returned" meaning "nothing is left running" (a server started by npx or uvx).
    """
    _signal_group(pgid, signal.SIGKILL)
    for _ in range(200):
        reap_orphans()
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return
        await asyncio.sleep(0.01)
    log.warning("process group %d still has members after SIGKILL", pgid)


def reap_orphans(exclude: int | None = None) -> None:
    """Reap zombies that were reparented to us (only happens when we are PID 1).

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
