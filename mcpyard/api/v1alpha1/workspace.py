"""Workspace: a named set of MCP servers exposed at one gateway URL."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, StrictBool, WithJsonSchema

from mcpyard.api.v1alpha1._base import Condition, Model, Resource
from mcpyard.api.v1alpha1.mcpserver import SecretKeyRef

Plan = Literal["free", "starter", "pro", "business"]

PLAN_REQUESTS_PER_MINUTE: dict[str, int] = {
    "free": 60,
    "starter": 300,
    "pro": 1200,
    "business": 6000,
}


ToolSearch = Annotated[
    StrictBool | Literal["only"],
    # A boolean-or-string field has no structural schema of its own: the API server takes any
    # scalar and the CEL rule keeps it to the three values.
    WithJsonSchema({"x-kubernetes-preserve-unknown-fields": True, "x-kubernetes-validations": [
        {"rule": "type(self) == bool || (type(self) == string && self == 'only')",
         "message": "toolSearch must be true, false or \"only\""}]}),
]


class WorkspaceRateLimit(Model):
    requests_per_minute: int | None = Field(default=None, ge=1)
    """Gateway requests per minute for the whole workspace; overrides the plan's figure."""
    per_member_requests_per_minute: int | None = Field(default=None, ge=1)
    """Gateway requests per minute for each member, unless the Member sets its own limit."""


class OidcSignIn(Model):
    issuer: str = Field(pattern=r"^https://[^\s?#]+$", max_length=2048)
    """The OpenID Connect provider's issuer URL (HTTPS), as its discovery document names it."""
    client_id: str = Field(min_length=1, max_length=512)
    """The client id the provider registered for this gateway."""
    client_secret: SecretKeyRef
    """The client secret: a key of an EncryptedSecret in the workspace's namespace."""
    claim: str = Field(default="email", min_length=1, max_length=128)
    """The ID token claim matched to Member.spec.user (default email)."""


class SignIn(Model):
    token: StrictBool = True
    """Members may sign in to an OAuth client (MCP authorization) with their mwt_ token."""
    oidc: OidcSignIn | None = None
    """Members may sign in through this OpenID Connect provider instead."""


class WorkspaceSpec(Model):
    display_name: str | None = Field(default=None, max_length=128)
    """A human-readable name shown to clients as the server's title."""
    plan: Plan = "free"
    """free, starter, pro or business: 60, 300, 1200 or 6000 requests per minute."""
    rate_limit: WorkspaceRateLimit | None = None
    """Optional overrides of the plan's limits."""
    tool_search: ToolSearch = False
    """Tool search: true adds the gateway's own find_tools(query, limit) and call_tool(name,
    arguments) to the workspace's tools; "only" lists just those two (every tool stays callable
    through call_tool), so that clients get a short list; false (the default) adds neither."""
    sign_in: SignIn | None = None
    """How members sign in when an MCP client connects through OAuth (MCP authorization):
    absent means token sign-in only; {token: false} without oidc turns OAuth off for the
    workspace. mwt_ bearer tokens work whatever this says."""


class SourceStatus(Model):
    revision: str
    """The revision the configuration was compiled from: what the Flux Kustomization or Argo
    CD Application last applied, or the mcpyard.io/revision annotation; call records carry it."""
    origin: str
    """Where it was read: Kustomization NS/NAME, Application NS/NAME or annotation
    mcpyard.io/revision."""


class WorkspaceStatus(Model):
    observed_generation: int | None = None
    """The metadata.generation the status was computed from."""
    url: str | None = None
    """The workspace's MCP endpoint path on the gateway, /ws/NAME/mcp."""
    servers: int | None = None
    """How many MCP servers are accepted in the workspace."""
    members: int | None = None
    """How many members can use the workspace now (not disabled, not expired)."""
    tools: int | None = None
    """How many namespaced tools the workspace exposes (known ones)."""
    source: SourceStatus | None = None
    """Where the served configuration came from, when its objects say (see docs/audit.md)."""
    conditions: list[Condition] = Field(default_factory=list)
    """Accepted, ResolvedRefs, Programmed and Ready."""


class Workspace(Resource):
    """A named set of MCP servers exposed at one gateway URL, /ws/NAME/mcp."""

    KIND: ClassVar[str] = "Workspace"
    PLURAL: ClassVar[str] = "workspaces"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("mws",)

    kind: Literal["Workspace"] = "Workspace"
    spec: WorkspaceSpec = Field(default_factory=WorkspaceSpec)
