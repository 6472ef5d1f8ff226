"""What every upstream client shares: health, background tasks, notification delivery,
single-flight session setup and secret headers.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Coroutine, Hashable
from typing import TypeVar, Unpack, cast

from mcpyard import errors
from mcpyard.compiler.config import SecretRef, ServerConfig
from mcpyard.gateway.services import _tracing
from mcpyard.gateway.upstream import _wire
from mcpyard.gateway.upstream._base import (
    RESTARTED,
    Owner,
    Relay,
    Wiring,
)
from mcpyard.mcp import jsonrpc
from mcpyard.mcp.jsonrpc import JSONObject

log = logging.getLogger("mcpyard.gateway.upstream")

T = TypeVar("T")

_MAX_QUEUED_NOTIFICATIONS = 1000
_ABOUT_A_REQUEST = frozenset({"notifications/progress", "notifications/message"})


class UpstreamBase:
    """Health, tasks and notifications of one upstream; the transports subclass it."""

    def __init__(self, server: ServerConfig, **wiring: Unpack[Wiring]) -> None:
        self.server = server
        self._slug = server.slug
        self._secrets = wiring["secrets"]
        self._on_notification = wiring["on_notification"]
        self._last_error: str | None = "not started"
        """None while the server serves; why not otherwise. The :class:`Handle` owns up/down
        (it reads this after each request); a client keeps no flag of its own."""
        self._closed = False
        self._tasks: set[asyncio.Task[object]] = set()
        self._flights: dict[Hashable, asyncio.Task[object]] = {}
        self._queue: asyncio.Queue[JSONObject] | None = None
        self._capabilities: JSONObject | None = None
        self._spawns = 0
        """Processes started so far (spawned servers)."""
        self._relays: dict[tuple[Owner | None, int], Relay] = {}
        """Requests in flight that have a relay, for the clients that must guess which request
        a message belongs to (SSE, stdio)."""
        # (header, prefix, secret) for every header injection; the value is revealed per request.
        self._inject: tuple[tuple[str, str, SecretRef], ...] = tuple(
            (inj.target or "Authorization", "Bearer ", inj.ref)
            if inj.as_ == "bearer"
            else (inj.target, "", inj.ref)
            for inj in server.injections
            if inj.as_ in ("bearer", "header")
        )

    # -- health ----------------------------------------------------------------------------

    @property
    def last_error(self) -> str | None:
        return self._last_error

    @property
    def capabilities(self) -> JSONObject | None:
        return self._capabilities

    def _learn(self, result: JSONObject) -> None:
        """Keep what an initialize result says the server can do."""
        caps = result.get("capabilities")
        self._capabilities = caps if isinstance(caps, dict) else {}

    def _ok(self) -> None:
        if self._last_error is not None:
            log.info("%s: upstream is serving", self._slug)
        self._last_error = None

    def _fail(self, message: str) -> None:
        if self._last_error != message:
            log.warning("%s", message)
        self._last_error = message

    def _set_closed(self) -> None:
        self._last_error = f"{self._slug}: closed"

    def _check_open(self) -> None:
        if self._closed:
            raise errors.UpstreamError(f"{self._slug}: the upstream client is closed")

    def _expired(self) -> errors.SessionExpired:
        return errors.SessionExpired(f"{self._slug}: the upstream no longer knows the session")

    def _timed_out(self, seconds: float) -> errors.UpstreamTimeout:
        return errors.UpstreamTimeout(f"{self._slug}: timed out after {seconds:g}s")

    # -- requests --------------------------------------------------------------------------

    async def request(self, method: str, params: JSONObject | None, *, owner: Owner | None,
                      timeout: float | None = None, relay: Relay | None = None
                      ) -> JSONObject:
        """One request within its timeout (the server's unless given): its ``result``; see
        ``Upstream.request`` for the errors. Each transport sends it its own way (``_send``)."""
        limit = timeout or self.server.timeout_seconds
        try:
            async with asyncio.timeout(limit):
                message = await self._send(method, params, owner, relay)
        except TimeoutError:
            raise self._timed_out(limit) from None
        return _wire.result_of(message, self._slug)

    async def _send(self, method: str, params: JSONObject | None, owner: Owner | None,
                    relay: Relay | None) -> JSONObject:
        """The response message to one request (the transport's part of ``request``)."""
        raise NotImplementedError

    # -- tasks -----------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[object, object, T], name: str) -> asyncio.Task[T]:
        """A background task that ``close()`` cancels and whose failure is logged, not lost."""
        task = asyncio.get_running_loop().create_task(coro, name=f"{self._slug}: {name}")
        self._tasks.add(task)
        task.add_done_callback(self._reap)
        return task

    def _reap(self, task: asyncio.Task[object]) -> None:
        self._tasks.discard(task)
        exc = None if task.cancelled() else task.exception()
        # Session setup failures reach their waiters; anything else is a bug to see.
        if exc is not None and not isinstance(exc, errors.MCPyardError):
            log.error("%s", task.get_name(), exc_info=exc)

    async def _single(self, key: Hashable, factory: Callable[[], Coroutine[object, object, T]]
                      ) -> T:
        """Run ``factory()`` once for concurrent callers with the same key; all get its result.

        The shared task is shielded: a caller that gives up (its own timeout) does not cancel
        the setup the others wait for; the setup carries its own time limit.
        """
        task = self._flights.get(key)
        if task is None:
            task = self._spawn(factory(), f"setup {key}")
            self._flights[key] = task
            task.add_done_callback(functools.partial(self._landed, key))
        # A key names one kind of setup: its task returns what this factory's would.
        return await asyncio.shield(cast("asyncio.Task[T]", task))

    def _landed(self, key: Hashable, task: asyncio.Task[object]) -> None:
        if self._flights.get(key) is task:
            del self._flights[key]

    async def _cancel_tasks(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def _started(self) -> None:
        """A spawned server's process is serving; after a restart, tell the gateway (its tools
        may differ now, and nothing else would make it look again while the server is idle)."""
        self._spawns += 1
        if self._spawns > 1:
            self._notify({"jsonrpc": "2.0", "method": RESTARTED})

    # -- messages from the upstream ----------------------------------------------------------

    def _notify(self, message: JSONObject) -> None:
        """Queue a notification for ``on_notification``.

        Delivered in order by one task, never inline: a handler that calls back into this
        upstream (tools/list on list_changed) must not wait on the reader that delivers it.
        """
        queue = self._queue
        if queue is None:
            queue = self._queue = asyncio.Queue()
            self._spawn(self._deliver(queue), "notifications")
        if queue.qsize() >= _MAX_QUEUED_NOTIFICATIONS:
            log.warning("%s: notification dropped, the handler is behind", self._slug)
            return
        queue.put_nowait(message)

    async def _deliver(self, queue: asyncio.Queue[JSONObject]) -> None:
        while True:
            message = await queue.get()
            try:
                await self._on_notification(self._slug, message)
            except Exception:
                log.exception("%s: notification handler failed", self._slug)

    def _sole_relay(self, owner: Owner | None, any_owner: bool = False) -> Relay | None:
        """The relay of the one request in flight (for ``owner``), None when not exactly one."""
        found = [r for (o, _), r in self._relays.items() if any_owner or o == owner]
        return found[0] if len(found) == 1 else None

    def _incoming_notification(self, message: JSONObject, relay: Relay | None) -> None:
        """Progress and log messages about a request go to its relay; the rest (list_changed,
        resource updates) concern the server as a whole."""
        if relay is not None and message.get("method") in _ABOUT_A_REQUEST:
            relay.notify(message)
        else:
            self._notify(message)

    async def _relayed_answer(self, message: JSONObject, relay: Relay) -> bytes:
        """Ask the downstream client through ``relay``; the answer to send the upstream."""
        try:
            return jsonrpc.encode(await relay.ask(message))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s: relaying a server request failed", self._slug)
            return _wire.answer(message)

    # -- secrets ---------------------------------------------------------------------------

    def _headers(self, base: dict[str, str]) -> dict[str, str]:
        """``base`` plus the injected secret headers, revealed now and for this request only,
        and the trace context of the hop when tracing is on."""
        trace = _tracing.upstream_headers.get()
        if trace is not None:
            base = {**base, **trace}
        if not self._inject:
            return base
        headers = dict(base)
        for name, prefix, ref in self._inject:
            value = self._reveal(ref)
            if "\r" in value or "\n" in value:
                raise errors.UpstreamError(
                    f"{self._slug}: secret {ref.identity} cannot be a header value (line break)"
                )
            headers[name] = prefix + value
        return headers

    def _reveal(self, ref: SecretRef) -> str:
        try:
            return self._secrets.reveal(ref)
        except errors.MCPyardError as exc:
            # Our own errors never carry a value; anything else might, so only its type shows.
            raise errors.UpstreamError(f"{self._slug}: secret {ref.identity}: {exc}") from None
        except Exception as exc:
            raise errors.UpstreamError(
                f"{self._slug}: secret {ref.identity} is not available ({type(exc).__name__})"
            ) from None


def quiet(future: asyncio.Future[T]) -> None:
    """Mark a future's exception as retrieved (nobody may be waiting any more)."""
    if not future.cancelled():
        future.exception()
