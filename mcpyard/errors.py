"""Errors of mcpyard, classified by what the caller should do.

    MCPyardError
    ├── InvalidResource        a manifest is wrong: fix it (permanent); carries Problems
    ├── ManifestError          a file cannot be read as manifests (YAML syntax, not a mapping)
    ├── SecretError            a secret cannot be decrypted or verified (wrong key, bad MAC)
    ├── DependencyNotReady     something it needs is not there yet: retry later
    ├── RequestError           a client's request cannot be taken as sent: the client fixes it
    │   ├── BodyTooLarge       the body is over the gateway's limit
    │   └── InvalidCursor      a list cursor the gateway never gave
    ├── RateLimited            a request over a limit: carries its scope and when to retry
    ├── BackendUnavailable     a shared backend (the rate-limit Redis) does not answer
    ├── CannotAsk              the downstream client cannot be asked what an upstream asks
    └── UpstreamError          an upstream MCP server failed or refused (transient)
        ├── UpstreamRPCError   it answered with a JSON-RPC error: passed on as is
        ├── UpstreamTimeout    it did not answer within its time limit
        ├── SessionExpired     it no longer knows the session a request carried
        ├── HandshakeRefused   it refused initialize: maybe not of the handshake era
        └── UpstreamStarting   a spawned server refused the connection: it is (re)starting

Callers tell errors apart by class, never by message. Messages are short, name the resource
or file and field at fault, and never carry a secret value, a token or a URL's query string.
The gateway maps them to JSON-RPC errors in one place
(:func:`mcpyard.gateway._jsonrpc.error_from`); the operator does not map them to kopf
errors: it writes their message (only theirs: anything else is named, not quoted) into the
resource's status (``mcpyard.operator._runtime._sanitised``). ``mcpyard.kube.ApiError``, an
answer of the API server, is an ``MCPyardError`` too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from mcpyard.api._problem import Problem


class MCPyardError(Exception):
    """Base of every error mcpyard raises on purpose."""


class InvalidResource(MCPyardError):
    """One or more problems with a resource's spec."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(str(p) for p in self.problems))


class ManifestError(MCPyardError):
    """A manifest file that cannot be read: ``file:line: message``."""


class SecretError(MCPyardError):
    """A secret that cannot be decrypted or verified."""


class DependencyNotReady(MCPyardError):
    """Something needed is not there yet; retrying later may succeed."""


class UpstreamError(MCPyardError):
    """An upstream MCP server failed, refused, or timed out."""


class RequestError(MCPyardError):
    """A client's request the gateway cannot take as sent."""


class BodyTooLarge(RequestError):
    """A request body over the gateway's limit."""


class InvalidCursor(RequestError, ValueError):
    """A pagination cursor the gateway did not give (or no longer knows)."""


Scope = Literal["workspace", "member"]


class RateLimited(MCPyardError):
    """A request refused by a rate limit: which limit, and when to try again.

    The limiter returns it (refusing is its normal answer, not a failure); the router turns it
    into a JSON-RPC error and the transport into HTTP 429."""

    def __init__(self, scope: Scope, limit: int, retry_after: int, message: str) -> None:
        super().__init__(message)
        self.scope: Scope = scope
        self.limit = limit
        """The limit that was hit, in requests per minute."""
        self.retry_after = retry_after
        """Whole seconds until the window has room again (at least 1)."""
        self.message = message
        """``rate limit of workspace eng exceeded: ...``; safe to show the client."""

    def __repr__(self) -> str:
        return (f"RateLimited(scope={self.scope!r}, limit={self.limit}, "
                f"retry_after={self.retry_after}, message={self.message!r})")


class BackendUnavailable(MCPyardError):
    """A shared backend (the rate limiter's Redis) does not answer."""


class CannotAsk(MCPyardError):
    """The downstream client cannot be asked (the caller answers the upstream with an error)."""


class UpstreamRPCError(UpstreamError):
    """The upstream answered with a JSON-RPC error; passed through to the client as is."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.rpc_message = message
        self.data = data


class UpstreamTimeout(UpstreamError):
    """The upstream did not answer within the time limit of the request."""


class SessionExpired(UpstreamError):
    """The upstream no longer knows the session a request carried (HTTP 404): set it up
    again."""


class HandshakeRefused(UpstreamError):
    """The upstream refused initialize (a 4xx or a JSON-RPC error): maybe it serves only the
    2026-07-28 era. ``error`` is what to raise when it serves that neither."""

    def __init__(self, error: UpstreamError) -> None:
        super().__init__(str(error))
        self.error = error


class UpstreamStarting(UpstreamError):
    """A server the gateway spawned refused the connection: it is (re)starting. ``error`` is
    what to raise when it still does after waiting for its port."""

    def __init__(self, error: UpstreamError) -> None:
        super().__init__(str(error))
        self.error = error
