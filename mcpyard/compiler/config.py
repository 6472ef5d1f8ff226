"""The compiled gateway configuration: what one workspace looks like to the gateway.

This is a wire format (the operator stores it in a Secret, ``serve`` builds it in memory), so it
is pydantic, frozen, and carries no secret value: secrets are referenced by identity
(namespace/secret/key) and resolved by the gateway's vault at request time.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def secret_identity(namespace: str, name: str, key: str) -> str:
    """``namespace/name/key``: how one value of an EncryptedSecret is named everywhere (the
    vault, the config Secret's sealed values, the associated data of its AES-GCM envelope)."""
    return f"{namespace}/{name}/{key}"


def secret_of(identity: str) -> tuple[str, str]:
    """The (namespace, name) of the EncryptedSecret holding the value ``identity`` names."""
    namespace, name, _ = identity.split("/", 2)
    return namespace, name


class SecretRef(_Frozen):
    """A secret value by identity; the associated data of its AES-GCM envelope."""

    namespace: str
    name: str
    key: str

    @property
    def identity(self) -> str:
        return secret_identity(self.namespace, self.name, self.key)


class Injection(_Frozen):
    """Where a secret value goes on the upstream hop."""

    ref: SecretRef
    as_: Literal["bearer", "header", "env"]
    target: str
    """The header name (``Authorization`` for bearer) or the environment variable."""


class ToolFilter(_Frozen):
    include: tuple[str, ...] = ("*",)
    exclude: tuple[str, ...] = ()
    pin: dict[str, str] | None = None
    """Tool name -> ``sha256:HEX`` of its pinned definition; None when nothing is pinned."""


class ServerConfig(_Frozen):
    """One upstream MCP server of a workspace."""

    slug: str
    name: str
    """The MCPServer's metadata.name."""
    namespace: str
    mode: Literal["proxy", "hosted", "hub"]
    transport: Literal["streamable-http", "sse", "stdio"]
    url: str | None = None
    """Where to reach an HTTP server (proxy, or hosted in a cluster / on a local port)."""
    command: tuple[str, ...] | None = None
    """The stdio command `serve` spawns (or that runs a local streamable-http server)."""
    env: dict[str, str] = Field(default_factory=dict)
    """Plain environment of a spawned server."""
    timeout_seconds: float = 30
    tools: ToolFilter = ToolFilter()
    injections: tuple[Injection, ...] = ()
    hub_entry: str | None = None
    protocol_era: Literal["auto", "handshake", "modern"] = "auto"
    """The era the gateway speaks to the server (spec.protocolEra)."""


class MemberConfig(_Frozen):
    """A member of the workspace; the gateway refuses disabled and expired ones per request."""

    name: str
    user: str
    role: Literal["admin", "member"]
    token_hash: str | None
    """sha256:HEX, or None until the operator mints a token."""
    allow: tuple[str, ...] = ("*",)
    deny: tuple[str, ...] = ()
    requests_per_minute: int | None
    """The member's effective limit, None for no per-member limit."""
    expires: datetime | None = None
    disabled: bool = False

    def active(self, now: datetime) -> bool:
        """Whether the member is accepted at ``now``: not disabled, not expired.

        The one rule of member activity: the compiler's statuses and counts, the gateway's
        check of every request and its counts all call it (``now`` is timezone-aware)."""
        return not self.disabled and (self.expires is None or now < self.expires)

    def can_sign_in(self, now: datetime) -> bool:
        """Active at ``now`` and holding a token (a cluster member may wait for the operator
        to mint one)."""
        return self.token_hash is not None and self.active(now)


class OidcConfig(_Frozen):
    """An OpenID Connect provider members may sign in through (Workspace spec.signIn.oidc)."""

    issuer: str
    client_id: str
    client_secret: SecretRef
    claim: str = "email"
    """The ID token claim matched to a member's ``user``."""


class SignInConfig(_Frozen):
    """How members sign in to an OAuth client of the workspace (MCP authorization)."""

    token: bool = True
    """With their mwt_ token."""
    oidc: OidcConfig | None = None

    @property
    def enabled(self) -> bool:
        """Whether the workspace is an OAuth protected resource at all."""
        return self.token or self.oidc is not None


class Source(_Frozen):
    """Where the resources of a compilation came from, for the audit trail (call records).

    Adapters find it (``serve``: the manifests' git checkout; the operator: the Flux
    Kustomization, Argo CD Application or pipeline annotation that applied the objects); the
    compiler only copies it into each workspace's configuration.
    """

    revision: str
    """The revision as its source states it: a commit (``<sha>``, ``<sha>-dirty`` for a
    checkout with uncommitted changes below the manifests), Flux's ``main@sha1:<sha>``, Argo
    CD's ``<sha>``, or what a pipeline wrote in ``mcpyard.io/revision``."""
    origin: str
    """Who applied it: ``git <folder>``, ``Kustomization <ns>/<name>``, ``Application
    <ns>/<name>`` or ``annotation mcpyard.io/revision``."""


class WorkspaceConfig(_Frozen):
    """Everything the gateway needs to serve one workspace at /ws/NAME/mcp."""

    name: str
    namespace: str
    display_name: str
    plan: str
    requests_per_minute: int
    """The workspace's effective limit (plan, or the override)."""
    tool_search: bool | Literal["only"] = False
    """Whether find_tools / call_tool are added (True) or are the only tools listed ("only")."""
    servers: tuple[ServerConfig, ...] = ()
    members: tuple[MemberConfig, ...] = ()
    sign_in: SignInConfig = SignInConfig()
    """How members sign in through OAuth (default: with their token)."""
    source: Source | None = None
    """Where the resources came from (None when unknown); call records carry its revision."""
    revision: str = ""
    """A hash of everything above; equal configurations have equal revisions."""

    @property
    def path(self) -> str:
        return f"/ws/{self.name}/mcp"

    def secret_refs(self) -> list[SecretRef]:
        """Every secret value the gateway needs for this workspace: the servers' injections
        and the OpenID Connect client secret."""
        refs = [i.ref for s in self.servers for i in s.injections]
        if self.sign_in.oidc is not None:
            refs.append(self.sign_in.oidc.client_secret)
        return refs
