"""The stdio client: one supervised process per server, JSON-RPC as lines on stdin/stdout.

Known property: a stdio process has exactly one MCP session, so every owner shares it. The
per-owner isolation the HTTP clients give does not exist here: whatever state the server keeps
(a working directory it was told to use, a login) is common to all members of the workspace.
``owner`` is accepted and ignored, and ``release`` has nothing to close.

Ids: the gateway numbers its requests with one counter per process client, so requests of
different owners never collide; responses are matched back by that id. The handshake
(``initialize`` + ``notifications/initialized``) runs once per process. Requests from the server
(``ping``; sampling, roots, elicitation, refused for now) are answered from the reader so the
server never waits on us. If the process exits, pending requests fail with
``"<slug>: server process exited with code N"`` and the supervisor restarts it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Unpack

from mcpyard import errors
from mcpyard.compiler.config import ServerConfig
from mcpyard.gateway.upstream import _process, _wire
from mcpyard.gateway.upstream._base import (
    Owner,
    Relay,
    UpstreamRPCError,
    Wiring,
)
from mcpyard.gateway.upstream._common import UpstreamBase, log
from mcpyard.mcp import correlator, protocol, stdio
from mcpyard.mcp.jsonrpc import JSONObject


class StdioUpstream(UpstreamBase):
    def __init__(self, server: ServerConfig, *, workdir: Path | None = None,
                 **wiring: Unpack[Wiring]) -> None:
        super().__init__(server, **wiring)
        self._supervisor = _process.supervisor(
            server,
            secrets=wiring["secrets"],
            workdir=workdir,
            stdio=True,
            on_spawn=self._handshake,
            on_exit=self._exited,
            on_error=self._fail,
        )
        self._pending = correlator.Correlator()
        self._stdin: asyncio.StreamWriter | None = None
        """Set while a process is up and past its handshake."""
        self._handshake_failed = False
        self.protocol_version: str | None = None

    @property
    def era(self) -> str | None:
        """Always the handshake era (initialize) once a process answered."""
        return "handshake" if self.protocol_version is not None else None

    @property
    def pid(self) -> int | None:
        """The current process's id (None while none runs)."""
        process = self._supervisor.process
        return process.pid if process is not None else None

    async def start(self) -> None:
        if self._closed:
            return
        self._supervisor.start()
        try:
            async with asyncio.timeout(self.server.timeout_seconds):
                await self._ready()
        except TimeoutError:
            self._fail(
                f"{self._slug}: no answer to initialize after {self.server.timeout_seconds:g}s"
            )
        except errors.UpstreamError:
            pass  # already in last_error

    async def _send(
        self, method: str, params: JSONObject | None, owner: Owner | None,
        relay: Relay | None,
    ) -> JSONObject:
        stdin = self._stdin or await self._ready()
        return await self._exchange(stdin, method, params, owner, relay)

    async def notify(
        self, method: str, params: JSONObject | None, *, owner: Owner | None
    ) -> None:
        stdin = self._stdin
        if stdin is None:
            raise errors.UpstreamError(f"{self._slug}: server process is not running")
        await self._write(stdin, _wire.notification(method, params))

    async def release(self, owner: Owner) -> None:
        """Nothing to do: every owner shares the one process session."""

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stdin = None
        await self._supervisor.close()
        self._fail_pending(f"{self._slug}: the upstream client is closed")
        await self._cancel_tasks()
        self._set_closed()

    # -- requests --------------------------------------------------------------------------

    async def _ready(self) -> asyncio.StreamWriter:
        """Wait until a process is past its handshake (a restart after a crash, say)."""
        while True:
            self._check_open()
            if self._stdin is not None:
                return self._stdin
            if self._supervisor.spawn_error is not None:
                raise errors.UpstreamError(self._supervisor.spawn_error)
            await self._supervisor.changed.wait()

    async def _exchange(
        self,
        stdin: asyncio.StreamWriter,
        method: str,
        params: JSONObject | None,
        owner: Owner | None = None,
        relay: Relay | None = None,
    ) -> JSONObject:
        rid = self._pending.next_id()
        future = self._pending.expect(rid)
        if relay is not None:
            self._relays[(owner, rid)] = relay
        try:
            await self._write(stdin, _wire.request(rid, method, params))
            return await future
        except asyncio.CancelledError:
            # Timed out or the caller gave up: tell the server to stop working on it.
            if not future.done() and self._stdin is stdin:
                stdio.write(stdin, _wire.cancelled(rid, "the gateway's client cancelled"))
            raise
        finally:
            self._pending.discard(rid)
            if relay is not None:
                del self._relays[(owner, rid)]

    async def _write(self, stdin: asyncio.StreamWriter, body: bytes) -> None:
        try:
            stdin.write(body + b"\n")
            await stdin.drain()
        except (ConnectionError, RuntimeError) as exc:
            raise errors.UpstreamError(
                f"{self._slug}: server process is not running ({type(exc).__name__})"
            ) from None

    def _fail_pending(self, message: str) -> None:
        self._pending.fail_all(errors.UpstreamError(message))

    # -- process lifecycle (called by the supervisor) ---------------------------------------

    async def _handshake(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdin is not None and process.stdout is not None
        self._handshake_failed = True
        self._spawn(self._read(process), "stdout")
        limit = self.server.timeout_seconds
        try:
            async with asyncio.timeout(limit):
                # One process serves every owner: it may ask whatever a client could answer
                # (a request is relayed to the caller, and refused when it cannot be).
                params = _wire.initialize_params(
                    protocol.LATEST_HANDSHAKE, _wire.RELAYED_CAPABILITIES
                )
                message = await self._exchange(process.stdin, "initialize", params)
                result = _wire.result_of(message, self._slug)
                await self._write(process.stdin, _wire.INITIALIZED)
        except TimeoutError:
            raise errors.UpstreamError(
                f"{self._slug}: no answer to initialize after {limit:g}s"
            ) from None
        except UpstreamRPCError as exc:
            raise errors.UpstreamError(
                f"{self._slug}: initialize refused: {_wire.clip(exc.rpc_message)}"
            ) from None
        self._learn(result)
        version = result.get("protocolVersion")
        self.protocol_version = version if isinstance(version, str) else None
        self._handshake_failed = False
        self._stdin = process.stdin
        self._ok()
        self._started()

    def _exited(self, code: int) -> None:
        self._stdin = None
        message = f"{self._slug}: server process exited with code {code}"
        self._fail_pending(message)
        if self._closed:
            return
        if self._handshake_failed and self._last_error:
            return  # keep the handshake's reason, it says more than the exit code
        self._fail(message)

    async def _read(self, process: asyncio.subprocess.Process) -> None:
        """Read messages until EOF: responses to their futures, the rest answered or queued.
        At EOF the process gets a grace period to exit (its exit fails what is pending)."""
        assert process.stdin is not None and process.stdout is not None
        stdin = process.stdin
        await stdio.read(process.stdout, lambda message: self._dispatch(message, stdin),
                         label=self._slug, log=log)
        await self._supervisor.output_closed(process)

    def _dispatch(self, message: JSONObject, stdin: asyncio.StreamWriter) -> None:
        if "method" not in message:
            self._pending.resolve(message)
        elif "id" in message:
            # One process serves every owner: a request is relayed only when exactly one
            # request is in flight (the one that must have caused it).
            relay = self._sole_relay(None, any_owner=True)
            if relay is not None:
                self._spawn(self._relay_request(stdin, message, relay), "relay")
            else:
                stdio.write(stdin, _wire.answer(message))
        else:
            self._incoming_notification(message, self._sole_relay(None, any_owner=True))

    async def _relay_request(
        self, stdin: asyncio.StreamWriter, message: JSONObject, relay: Relay
    ) -> None:
        answer = await self._relayed_answer(message, relay)
        if self._stdin is stdin:
            try:
                await self._write(stdin, answer)
            except errors.UpstreamError as exc:
                log.debug("%s: could not answer a server request: %s", self._slug, exc)
