"""A server process the gateway spawns (stdio servers, local HTTP servers): its supervisor and
its environment.

:func:`supervisor` is the protocol layer's ``mcp.process.Supervisor`` (own process group,
restarts with backoff, the group stopped on close) with the gateway's choices: the slug in
every message, stderr drained into the log, and the environment below.

The environment is NOT the gateway's: that may hold ``SOPS_AGE_KEY`` or cloud credentials.
A process gets a few basics (PATH, HOME, locale, temp dirs), the server's plain ``env``, and
its ``as: env`` secrets, revealed at spawn and kept nowhere else.
"""

from __future__ import annotations

import asyncio
import functools
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from mcpyard import errors
from mcpyard.compiler.config import ServerConfig
from mcpyard.gateway.upstream._base import SecretSource
from mcpyard.mcp import process

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


def supervisor(
    server: ServerConfig,
    *,
    secrets: SecretSource,
    workdir: Path | None,
    stdio: bool,
    on_spawn: Callable[[asyncio.subprocess.Process], Awaitable[None]],
    on_exit: Callable[[int], None],
    on_error: Callable[[str], None],
) -> process.Supervisor:
    """The supervisor of ``server``'s process (see ``mcp.process.Supervisor``)."""
    return process.Supervisor(
        server.command or (),
        name=server.slug,
        env=functools.partial(child_env, server, secrets),
        workdir=workdir,
        stdio=stdio,
        on_spawn=on_spawn,
        on_exit=on_exit,
        on_error=on_error,
    )
