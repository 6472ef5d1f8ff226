"""The one MCP session with the child: JSON-RPC lines on its stdin/stdout, shared by all callers.

The bridge is the child's only client. It initializes the child once per process (at the
newest handshake version, declaring sampling, elicitation and roots so the child may use
them), keeps its ``initialize`` result (what HTTP clients are shown), and multiplexes every
caller's requests onto the one session:

- ids: each forwarded request gets a bridge id; the answer is matched back by it and given the
  caller's own id again, so two callers may both use id 1;
- progress tokens are renamed the same way, so ``notifications/progress`` reaches the caller
  whose request carried the token;
- ``notifications/message`` (logs) carries no request id on stdio: it goes to the caller of the
  only request in flight, otherwise to every connected session;
- server-to-client requests (sampling, elicitation, roots) go to the most recent caller in
  flight that can answer them (stdio does not say which request caused one), else to a
  connected session that can, else they are refused with a JSON-RPC error; the answer goes back
  under the child's own id; ``ping`` is answered here;
- list_changed and ``resources/updated`` go to every connected session.

If the process exits, requests in flight fail with a JSON-RPC error and new requests wait
(bounded) for the restarted process's handshake.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, cast

from mcpyard.errors import UnavailableError as UnavailableError
from mcpyard.mcp import correlator, jsonrpc, process, protocol, stdio

log = logging.getLogger("mcpyard.bridge")

UNAVAILABLE = jsonrpc.UPSTREAM_UNAVAILABLE
"""Server error range: the child is not running (restarting, or cannot start)."""
GRACE = 5.0
"""Between SIGTERM and SIGKILL of the child's process group."""


class Caller(Protocol):
    """Who a forwarded request belongs to (a session, or one modern-era request)."""

    def can_answer(self, method: str) -> bool: ...


@dataclass(eq=False)
class Call:
    """One request forwarded to the child; ``events`` ends with the response."""

    caller: Caller
    request_id: jsonrpc.JSONValue  # the client's id, echoed as it came: the bridge checks none
    bid: int
    token: jsonrpc.JSONValue = None
    method: jsonrpc.JSONValue = None
    events: asyncio.Queue[jsonrpc.JSONObject] = field(default_factory=asyncio.Queue)
    done: bool = False

    def put(self, message: jsonrpc.JSONObject) -> None:
        self.events.put_nowait(message)


class Child:
    """The shared session; see the module docstring.

    ``broadcast(message)`` delivers a notification to every connected session;
    ``deliver(message)`` offers a server request to a session that can answer it (True if
    taken). ``on_ready()`` runs after each handshake but the first.
    """

    def __init__(
        self,
        command: Sequence[str],
        *,
        broadcast: Callable[[jsonrpc.JSONObject], None],
        deliver: Callable[[jsonrpc.JSONObject], bool],
        startup_wait: float = 10.0,
        timeout: float = 30.0,
    ) -> None:
        # The child's stderr is the container log: passed through; its environment is the
        # container's (Kubernetes puts ``env`` and ``as: env`` secrets there).
        self.supervisor = process.Supervisor(
            command, on_spawn=self._serve, on_exit=self._exited, inherit_stderr=True, grace=GRACE
        )
        self._broadcast = broadcast
        self._deliver = deliver
        self._startup_wait = startup_wait
        self._timeout = timeout
        self.init_result: jsonrpc.JSONObject | None = None
        """The child's ``initialize`` result (kept across restarts for ``server/discover``)."""
        self._stdin: asyncio.StreamWriter | None = None
        self._ready = asyncio.Event()
        self._calls: correlator.Pending[Call] = correlator.Pending()
        """Requests in flight by bridge id; the one counter also numbers relayed requests."""
        self._tokens: dict[int, Call] = {}
        self._relayed: dict[int, tuple[jsonrpc.Id, Call | None]] = {}
        """Outward id of a server request -> (the child's id, the call it went to)."""
        self._handshakes = 0
        self._reader: asyncio.Task[None] | None = None
        self._eof = False

    # -- state -----------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self._stdin is not None

    @property
    def pid(self) -> int | None:
        return self.supervisor.pid

    @property
    def state(self) -> str:
        return "ready" if self.ready else self.supervisor.state

    @property
    def protocol_version(self) -> str:
        version = (self.init_result or {}).get("protocolVersion")
        return version if isinstance(version, str) else protocol.STREAMABLE_VERSIONS[0]

    def start(self) -> None:
        self.supervisor.start()

    async def close(self) -> None:
        self._stdin = None
        await self.supervisor.close()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        self.fail_all("the bridge is shutting down")

    async def wait_ready(self) -> asyncio.StreamWriter:
        """The child's stdin once it is past its handshake; UnavailableError after a bound."""
        if self._stdin is not None:
            return self._stdin
        try:
            async with asyncio.timeout(self._startup_wait):
                while self._stdin is None:
                    self._ready.clear()
                    await self._ready.wait()
        except TimeoutError:
            raise UnavailableError(
                f"the MCP server is not ready: {self.supervisor.state}"
            ) from None
        return self._stdin

    # -- from callers ----------------------------------------------------------------------

    async def call(self, message: jsonrpc.JSONObject, caller: Caller) -> Call:
        """Forward one request; its events (and finally its response) arrive on the Call."""
        stdin = await self.wait_ready()
        bid = self._calls.next_id()
        call = Call(caller, message.get("id"), bid)
        out = dict(message)
        out["id"] = bid
        params = out.get("params")
        if isinstance(params, dict):
            meta = params.get("_meta")
            if isinstance(meta, dict) and "progressToken" in meta:
                call.token = meta["progressToken"]
                out["params"] = {**params, "_meta": {**meta, "progressToken": bid}}
                self._tokens[bid] = call
        self._calls.add(bid, call)
        self._write(stdin, out)
        return call

    def finish(self, call: Call, *, cancel: str | None = None) -> None:
        """The caller is done with ``call``; with ``cancel``, tell the child to stop on it."""
        self._calls.pop(call.bid)
        self._tokens.pop(call.bid, None)
        if cancel is not None and not call.done and self._stdin is not None:
            self._write(self._stdin, jsonrpc.cancelled(call.bid, cancel))
        call.done = True

    def cancel_by_caller(self, caller: Caller, request_id: jsonrpc.JSONValue,
                         reason: jsonrpc.JSONValue) -> None:
        for call in self._calls.values():
            if call.caller is caller and call.request_id == request_id:
                self.finish(call, cancel=reason if isinstance(reason, str) else "cancelled")

    def answer(self, message: jsonrpc.JSONObject) -> bool:
        """A caller's response to a server request this bridge relayed; False if unknown."""
        rid = message.get("id")
        entry = self._relayed.pop(rid, None) if type(rid) is int else None
        if entry is None:
            return False
        if self._stdin is not None:
            self._write(self._stdin, {**message, "id": entry[0]})
        return True

    def notify(self, message: jsonrpc.JSONObject) -> None:
        """A caller's notification for the child (roots changed, progress...)."""
        if self._stdin is not None:
            self._write(self._stdin, message)

    # -- the process (called by the supervisor) ---------------------------------------------

    async def _serve(self, child: asyncio.subprocess.Process) -> None:
        """The handshake with a new process, its stdout read by a task of its own."""
        assert child.stdin is not None
        self._eof = False
        self._reader = asyncio.get_running_loop().create_task(self._read(child))
        try:
            await self._handshake(child.stdin)
        except UnavailableError:
            if not self._eof:
                raise
            # The process ended during the handshake: its exit code says more.
            await asyncio.gather(self._reader, return_exceptions=True)

    def _exited(self, code: int) -> None:
        self._stdin = None
        if self._reader is not None:
            self._reader.cancel()
        self.fail_all(f"the MCP server process exited with code {code}; it is being restarted")

    async def _handshake(self, stdin: asyncio.StreamWriter) -> None:
        bid = self._calls.next_id()
        call = Call(_Nobody(), bid, bid)
        self._calls.add(bid, call)
        params: jsonrpc.JSONObject = {
            "protocolVersion": protocol.LATEST_HANDSHAKE,
            "capabilities": {"sampling": {}, "elicitation": {}, "roots": {"listChanged": True}},
            "clientInfo": {"name": "mcpyard-bridge", "version": "0.1.0"},
        }
        self._write(stdin, jsonrpc.request(bid, protocol.INITIALIZE, params))
        try:
            async with asyncio.timeout(self._timeout):
                while "method" in (reply := await call.events.get()):
                    pass
        except TimeoutError:
            raise UnavailableError(
                f"initialize failed: no answer after {self._timeout:g}s"
            ) from None
        finally:
            self.finish(call)
        result = reply.get("result")
        if not isinstance(result, dict):
            text = jsonrpc.error_text(reply)
            raise UnavailableError(f"initialize failed: {text or reply.get('error')}"[:300])
        self._write(stdin, jsonrpc.notification(protocol.INITIALIZED))
        self.init_result = result
        self._stdin = stdin
        self._ready.set()
        self._handshakes += 1
        info = result.get("serverInfo")
        log.info(
            "initialized %s (protocol %s)",
            info.get("name", "server") if isinstance(info, dict) else "server",
            result.get("protocolVersion"),
        )
        if self._handshakes > 1:
            self._announce_restart(result)

    def _announce_restart(self, result: jsonrpc.JSONObject) -> None:
        # A new process may offer other tools; clients re-list what they cache.
        capabilities = result.get("capabilities")
        if not isinstance(capabilities, dict):
            return
        for name in ("tools", "resources", "prompts"):
            entry = capabilities.get(name)
            if isinstance(entry, dict) and entry.get("listChanged"):
                self._broadcast(jsonrpc.notification(f"notifications/{name}/list_changed"))

    async def _read(self, child: asyncio.subprocess.Process) -> None:
        assert child.stdin is not None and child.stdout is not None
        stdin = child.stdin
        await stdio.read(child.stdout, lambda message: self._dispatch(message, stdin),
                         label="server", log=log, noise=logging.WARNING)
        # Whatever waits (the handshake included) learns now, not at its timeout.
        self._eof = True
        self._stdin = None
        self.fail_all("the MCP server process closed its stdout; it is being restarted")
        await self.supervisor.output_closed(child)

    def _dispatch(self, message: jsonrpc.JSONObject, stdin: asyncio.StreamWriter) -> None:
        method = message.get("method")
        if method is None:
            call = self._calls.pop(message.get("id"))
            if call is not None:
                self._tokens.pop(call.bid, None)
                call.done = True
                call.put({**message, "id": call.request_id})
        elif "id" in message:
            self._server_request(message, stdin)
        elif method == protocol.PROGRESS:
            params = message.get("params")
            token = params.get("progressToken") if isinstance(params, dict) else None
            call = self._tokens.get(token) if type(token) is int else None
            if call is not None and isinstance(params, dict):
                call.put({**message, "params": {**params, "progressToken": call.token}})
        elif method == protocol.LOG_MESSAGE:
            calls = [c for c in self._calls.values() if not isinstance(c.caller, _Nobody)]
            if len(calls) == 1:
                calls[0].put(message)
            else:
                self._broadcast(message)
        elif method == protocol.CANCELLED:
            params = message.get("params")
            rid = params.get("requestId") if isinstance(params, dict) else None
            for outward, (child_id, call) in list(self._relayed.items()):
                if child_id == rid and call is not None and isinstance(params, dict):
                    del self._relayed[outward]
                    call.put({**message, "params": {**params, "requestId": outward}})
        else:
            self._broadcast(message)

    def _server_request(self, message: jsonrpc.JSONObject, stdin: asyncio.StreamWriter) -> None:
        # A request of the child's (method and id present, _dispatch checked), passed on as is.
        method = cast(str, message["method"])
        child_id = cast(jsonrpc.Id, message["id"])
        if method == protocol.PING:
            self._write(stdin, jsonrpc.result(child_id, {}))
            return
        outward = self._calls.next_id()
        relayed = {**message, "id": outward}
        for call in reversed(self._calls.values()):
            if call.caller.can_answer(method):
                self._relayed[outward] = (child_id, call)
                call.put(relayed)
                return
        self._relayed[outward] = (child_id, None)
        if self._deliver(relayed):
            return
        del self._relayed[outward]
        self._write(
            stdin,
            jsonrpc.error(
                child_id,
                jsonrpc.METHOD_NOT_FOUND,
                f"no connected client of the bridge can answer {method}",
            ),
        )

    def refuse(self, outward: int, reason: str) -> None:
        """A relayed server request cannot reach its client: answer the child with an error."""
        entry = self._relayed.pop(outward, None)
        if entry is not None and self._stdin is not None:
            self._write(self._stdin, jsonrpc.error(entry[0], jsonrpc.INTERNAL_ERROR, reason))

    def _write(self, stdin: asyncio.StreamWriter, message: jsonrpc.JSONObject) -> None:
        # A process that is gone: the supervisor fails the calls and restarts it.
        stdio.write(stdin, jsonrpc.encode(message))

    def fail_all(self, reason: str) -> None:
        calls = self._calls.take_all()
        self._tokens.clear()
        self._relayed.clear()
        for call in calls:
            call.done = True
            call.put(jsonrpc.error(call.request_id, UNAVAILABLE, reason))


class _Nobody:
    """The bridge's own requests (the handshake): nobody to relay anything to."""

    def can_answer(self, method: str) -> bool:
        return False
