"""Supervision of a server process the gateway spawns (stdio servers, local HTTP servers).

One :class:`Supervisor` per server: it spawns the command in its own process group with a
minimal environment, drains its stderr into the log, and restarts it with exponential backoff
when it exits (0.5 s doubling to 30 s, back to 0.5 s once a process stayed up for 60 s).
``close()`` stops the whole process group (SIGTERM, SIGKILL after a short grace) and waits for
it, so no child outlives the gateway and no zombie stays behind.

The environment is NOT the gateway's: that may hold ``SOPS_AGE_KEY`` or cloud credentials.
A process gets a few basics (PATH, HOME, locale, temp dirs), the server's plain ``env``, and
its ``as: env`` secrets, revealed at spawn and kept nowhere else.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from mcpyard import errors
from mcpyard.compiler.config import ServerConfig
from mcpyard.gateway.upstream._base import SecretSource

log = logging.getLogger("mcpyard.gateway.upstream.process")

STREAM_LIMIT = 64 * 1024 * 1024
"""Longest line read from a process: a stdio message is one line and may be large."""
BACKOFF_MIN = 0.5
BACKOFF_MAX = 30.0
STABLE_AFTER = 60.0
GRACE = 3.0
_LOG_LINE = 2000

_INHERITED = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TMPDIR",
    "TEMP",
    "TMP",
    "XDG_CACHE_HOME",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "XDG_RUNTIME_DIR",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    # Windows basics, harmless elsewhere.
    "SYSTEMROOT",
    "SYSTEMDRIVE",
    "WINDIR",
    "COMSPEC",
    "PATHEXT",
    "USERPROFILE",
    "APPDATA",
    "LOCALAPPDATA",
    "PROGRAMDATA",
)


def child_env(server: ServerConfig, secrets: SecretSource) -> dict[str, str]:
    """The environment of a spawned server (holds revealed secrets: use it and drop it)."""
    env = {name: value for name in _INHERITED if (value := os.environ.get(name)) is not None}
    env.update((k, v) for k, v in os.environ.items() if k.startswith("LC_"))
    # Commands installed beside mcpyard (same virtualenv) are found without activating it.
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", os.defpath)
    env.update(server.env)
    for inj in server.injections:
        if inj.as_ == "env":
            try:
                env[inj.target] = secrets.reveal(inj.ref)
            except errors.MCPyardError as exc:
                raise errors.UpstreamError(
                    f"{server.slug}: secret {inj.ref.identity}: {exc}"
                ) from None
            except Exception as exc:
                raise errors.UpstreamError(
                    f"{server.slug}: secret {inj.ref.identity} is not available "
                    f"({type(exc).__name__})"
                ) from None
    return env


class Supervisor:
    """Keeps one process of a server running; see the module docstring.

    ``on_spawn(process)`` runs once per process (the stdio handshake); if it raises, the
    process is stopped and restarted later. ``on_exit(code)`` runs after the process ended.
    ``on_error(message)`` reports a spawn that failed. ``changed`` is set (and replaced) on
    every spawn, ``on_spawn`` completion, exit and failure, for callers waiting for the process.
    """

    def __init__(
        self,
        server: ServerConfig,
        *,
        secrets: SecretSource,
        workdir: Path | None,
        stdio: bool,
        on_spawn: Callable[[asyncio.subprocess.Process], Awaitable[None]],
        on_exit: Callable[[int], None],
        on_error: Callable[[str], None],
    ) -> None:
        if not server.command:
            raise ValueError(f"{server.slug}: a spawned server needs a command")
        self.server = server
        self._slug = server.slug
        self._program = server.command[0]
        self._secrets = secrets
        self._workdir = workdir
        self._stdio = stdio
        self._on_spawn = on_spawn
        self._on_exit = on_exit
        self._on_error = on_error
        self.process: asyncio.subprocess.Process | None = None
        self.spawn_error: str | None = None
        """Why the last spawn failed (command not found...); None once one succeeded."""
        self.changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._tail: collections.deque[str] = collections.deque(maxlen=20)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    def start(self) -> None:
        if self._task is None and not self._closing:
            self._task = asyncio.get_running_loop().create_task(
                self._supervise(), name=f"{self._slug}: supervisor"
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

    def _signal(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    async def _supervise(self) -> None:
        loop = asyncio.get_running_loop()
        delay = BACKOFF_MIN
        while not self._closing:
            started = loop.time()
            try:
                process = await self._spawn()
            except (OSError, ValueError, errors.MCPyardError) as exc:
                self.spawn_error = self._spawn_message(exc)
                self._on_error(self.spawn_error)
                self._signal()
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX)
                continue
            self.spawn_error = None
            self.process = process
            log.info("%s: started process %d", self._slug, process.pid)
            self._signal()
            code = await self._watch(process)
            self.process = None
            if code != 0 and self._tail:
                log.warning(
                    "%s: process %d exited with code %d; last stderr lines:\n%s",
                    self._slug,
                    process.pid,
                    code,
                    "\n".join(self._tail),
                )
            self._on_exit(code)
            self._signal()
            if loop.time() - started >= STABLE_AFTER:
                delay = BACKOFF_MIN
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX)

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
        return f"{self._slug}: cannot start {self._program!r}: {reason}"

    async def _spawn(self) -> asyncio.subprocess.Process:
        assert self.server.command
        env = child_env(self.server, self._secrets)
        pipe = asyncio.subprocess.PIPE
        self._tail.clear()
        return await asyncio.create_subprocess_exec(
            *self.server.command,
            stdin=pipe if self._stdio else asyncio.subprocess.DEVNULL,
            stdout=pipe,
            stderr=pipe,
            cwd=self._workdir,
            env=env,
            start_new_session=True,
            limit=STREAM_LIMIT,
        )

    async def _watch(self, process: asyncio.subprocess.Process) -> int:
        """Run one process to its end; on cancellation (close) stop it, then re-raise."""
        drains = [self._drain(process.stderr, "stderr")]
        if not self._stdio:
            drains.append(self._drain(process.stdout, "stdout"))
        loop = asyncio.get_running_loop()
        drainers = [loop.create_task(d, name=f"{self._slug}: drain") for d in drains]
        try:
            try:
                await self._on_spawn(process)
                self._signal()  # ready: waiters look again
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                message = str(exc) if isinstance(exc, errors.MCPyardError) else type(exc).__name__
                self._on_error(message)
                await terminate(process)
            return await process.wait()
        finally:
            if process.returncode is None:
                await asyncio.shield(terminate(process))
            await _end_group(process.pid)  # whatever the leader left behind in its group
            if process.stdin is not None:
                process.stdin.close()
            # The pipes reach EOF once every holder in the group is gone.
            try:
                async with asyncio.timeout(GRACE):
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
            log.debug("%s %s: %s", self._slug, name, text)


async def terminate(process: asyncio.subprocess.Process) -> None:
    """SIGTERM the process group, SIGKILL after a grace period, and reap the leader."""
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
    await _end_group(process.pid)


async def _end_group(pgid: int) -> None:
    """SIGKILL what is left of a process group and wait (briefly) until it is gone.

    The leader is reaped already; its orphans belong to init now, which reaps them soon after
    they die. Waiting for that keeps "close() returned" meaning "nothing is left running".
    """
    _signal_group(pgid, signal.SIGKILL)
    for _ in range(100):
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return
        await asyncio.sleep(0.01)
    log.warning("process group %d still has members after SIGKILL", pgid)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
