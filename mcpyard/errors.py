"""Errors of mcpyard, classified by what the caller should do.

    MCPyardError
    ├── InvalidResource        a manifest is wrong: fix it (permanent); carries Problems
    ├── ManifestError          a file cannot be read as manifests (YAML syntax, not a mapping)
    ├── SecretError            a secret cannot be decrypted or verified (wrong key, bad MAC)
    │   └── MalformedIdentity  an age identity given is not an age secret key
    ├── UsageError             a command line the CLI cannot take: exit 2 with the message
    ├── DependencyNotReady     something it needs is not there yet: retry later
    ├── ApiError               the Kubernetes API refused or failed a request: carries status
    ├── RequestError           a client's request cannot be taken as sent: the client fixes it
    │   ├── BodyTooLarge       the body is over the endpoint's limit
    │   ├── InvalidCursor      a list cursor the gateway never gave
    │   ├── MetadataError      an OAuth client's metadata document cannot be used
    │   └── (InvalidTarget)    an OAuth request for a resource not served (Authlib's error
    │                          class too: gateway.oauth._server, where Authlib is imported)
    ├── OidcError              sign-in through an OpenID Connect provider failed
    │   ├── OidcUnavailable    the provider cannot be used (unreachable, wrong metadata)
    │   └── OidcRefused        this sign-in is refused (the answer or ID token does not hold)
    ├── RateLimited            a request over a limit: carries its scope and when to retry
    ├── BackendUnavailable     a shared backend (the rate-limit Redis) does not answer
    ├── CannotAsk              the downstream client cannot be asked what an upstream asks
    ├── UnavailableError       the bridge's MCP server process is not serving (yet)
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
resource's status (``mcpyard.operator._runtime._sanitised``); the CLI's commands print the
message (a ``UsageError`` exits 2).

Every class is defined here, whatever layer raises it (this module imports nothing of
mcpyard at run time), and keeps the name it is known by where it is raised:
``mcpyard.kube.ApiError``, ``mcpyard.mcp.asgi.BodyTooLarge``,
``mcpyard.bridge._child.UnavailableError``, ``mcpyard.gateway.oauth.oidc.OidcError`` and
``..._metadata.MetadataError`` are these classes.
The one exception is ``InvalidTargetError``: Authlib renders only its own error classes, so it
subclasses Authlib's ``OAuth2Error`` and :class:`RequestError`, in the module that imports
Authlib.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from mcpyard.api._problem import Problem
    from mcpyard.jsontypes import JSONValue


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
    """A secret that cannot be decrypted or verified. The message names the secret and the
    cause (``secret ns/name: wrong key: ...``); ``cause`` is the cause alone (the whole message
    when the raiser gave none)."""

    def __init__(self, message: str, *, cause: str | None = None) -> None:
        super().__init__(message)
        self.cause = message if cause is None else cause


class MalformedIdentity(SecretError):
    """The age identity given is not an age secret key (sops then refuses every identity given
    with it: try them one by one)."""


class UsageError(MCPyardError):
    """A mistake in the command line: the CLI exits 2 with the message."""


class DependencyNotReady(MCPyardError):
    """Something needed is not there yet; retrying later may succeed."""


class ApiError(MCPyardError):
    """The Kubernetes API refused or failed a request; ``status`` is the HTTP status (0: no
    answer)."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)

    @property
    def transient(self) -> bool:
        return self.status in (0, 409, 429) or self.status >= 500


class UpstreamError(MCPyardError):
    """An upstream MCP server failed, refused, or timed out."""


class RequestError(MCPyardError):
    """A client's request the gateway cannot take as sent."""


class BodyTooLarge(RequestError):
    """A request body over the endpoint's limit (the gateway's, the bridge's)."""


class InvalidCursor(RequestError, ValueError):
    """A pagination cursor the gateway did not give (or no longer knows)."""


class MetadataError(RequestError):
    """Why an OAuth client's metadata document cannot be used (safe to show: no secrets in
    it)."""


class OidcError(MCPyardError):
    """Sign-in through an OpenID Connect provider failed: ``OIDC <issuer>: <cause>``. The cause
    names no secret (safe to show the member signing in)."""

    def __init__(self, issuer: str, cause: str) -> None:
        super().__init__(f"OIDC {issuer}: {cause}")
        self.issuer = issuer
        self.cause = cause


class OidcUnavailable(OidcError):
    """The provider cannot be used: unreachable, failing, or its metadata is wrong."""


class OidcRefused(OidcError):
    """This sign-in is refused: the provider's answer or the ID token does not hold."""


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


class UnavailableError(MCPyardError):
    """The bridge's child (its MCP server process) is not running or not initialized within
    the wait bound."""


class UpstreamRPCError(UpstreamError):
    """The upstream answered with a JSON-RPC error; passed through to the client as is."""

    # data: the JSON an upstream sent with its error, as it was sent
    def __init__(self, code: int, message: str, data: JSONValue = None) -> None:
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
