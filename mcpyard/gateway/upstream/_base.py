"""The contract between the router and the upstream clients.

One :class:`Upstream` per server of a workspace. The router calls :meth:`Upstream.request` with
a JSON-RPC method and params already renamed for the upstream (original tool name), and gets
back the JSON-RPC ``result`` object untouched. A JSON-RPC error from the upstream raises
:class:`mcpyard.errors.UpstreamRPCError` (the router passes code, message and data through);
a timeout raises :class:`mcpyard.errors.UpstreamTimeout`, any other transport failure
:class:`mcpyard.errors.UpstreamError`, each with a message fit for a client (no secret, no
URL query string).

Sessions: a stateful upstream session belongs to one :class:`Owner` (member, downstream session)
and is never shared between members. ``owner=None`` is the gateway's own session, used for
discovery (tools/list for the cache). An expired upstream session (HTTP 404 on a request that
carried ``Mcp-Session-Id``) is re-established and the request retried once, transparently.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import NamedTuple, Protocol, TypedDict

from mcpyard.compiler.config import SecretRef, ServerConfig
from mcpyard.errors import UpstreamRPCError as UpstreamRPCError  # where clients import it
from mcpyard.mcp.jsonrpc import JSONObject


class Owner(NamedTuple):
    """Who an upstream session belongs to."""

    member: str
    """``namespace/name`` of the Member."""
    session: str
    """The downstream session id (or a per-request id for sessionless clients)."""


class SecretSource(Protocol):
    """Reveals a secret value just in time (the gateway's vault)."""

    def reveal(self, ref: SecretRef) -> str: ...


RESTARTED = "mcpyard/upstream/restarted"
"""The method of the notification an upstream client delivers (to ``on_notification``) when
the server's process was started again: what it serves may have changed with it."""

# (server slug, JSON-RPC notification message) for notifications the upstream sends outside a
# request, e.g. notifications/tools/list_changed.
NotificationHandler = Callable[[str, JSONObject], Awaitable[None]]


class Wiring(TypedDict):
    """What every upstream client is given besides its server: the gateway's parts it uses
    (a client's constructor takes them as keywords, ``**wiring: Unpack[Wiring]``)."""

    secrets: SecretSource
    on_notification: NotificationHandler


class Relay(Protocol):
    """The way back to the downstream client of one request (see ``gateway._relay``).

    Given to :meth:`Upstream.request` when the client can hear what the upstream sends while
    it works: notifications (progress, log messages) and requests (sampling, elicitation,
    roots). The HTTP client knows exactly which request a message belongs to (it arrives on
    that request's response stream); the SSE and stdio clients attribute a message to a
    request only when it is the one request in flight on that stream (else a notification goes
    to ``on_notification`` and a request is refused, as without a relay).
    """

    def notify(self, message: JSONObject) -> None: ...

    async def ask(self, message: JSONObject) -> JSONObject:
        """The JSON-RPC response (with the upstream's id) to the upstream's request."""
        ...


class Upstream(Protocol):
    server: ServerConfig

    @property
    def last_error(self) -> str | None:
        """None while the server serves; otherwise why not (the last attempt to reach it
        failed, or it was never started), fit for /readyz and logs (no secrets)."""
        ...

    @property
    def capabilities(self) -> JSONObject | None:
        """What the server advertised (``initialize``), None until it answered."""
        ...

    async def start(self) -> None:
        """Connect or spawn; never raises: failure shows in ``last_error``."""
        ...

    async def request(
        self,
        method: str,
        params: JSONObject | None,
        *,
        owner: Owner | None,
        timeout: float | None = None,
        relay: Relay | None = None,
    ) -> JSONObject:
        """Send one request and return its ``result``; see the module docstring for errors.

        With a ``relay``, what the server sends about this request before answering goes there.
        """
        ...

    async def notify(
        self, method: str, params: JSONObject | None, *, owner: Owner | None
    ) -> None:
        """Send one notification (e.g. notifications/cancelled) on the owner's session."""
        ...

    async def release(self, owner: Owner) -> None:
        """Close the owner's upstream session (the downstream session ended)."""
        ...

    async def close(self) -> None:
        """Close every session and stop any process; leaves no child behind."""
        ...
