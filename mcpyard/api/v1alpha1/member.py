"""Member: a person or agent allowed to use a workspace, with a personal token."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import AwareDatetime, Field

from mcpyard.api.v1alpha1._base import Condition, Glob, Model, Name, Resource

TOKEN_HASH_PATTERN = r"^sha256:[0-9a-f]{64}$"


class Access(Model):
    allow: list[Glob] = Field(default_factory=lambda: ["*"])
    """Globs over what the member may use: namespaced tool and prompt names (slug__name) and
    resource URIs (mcpyard://slug/...); default all."""
    deny: list[Glob] = Field(default_factory=list)
    """Globs over namespaced names and resource URIs the member may not use; deny wins over
    allow."""


class MemberRateLimit(Model):
    requests_per_minute: int = Field(ge=1)
    """Gateway requests per minute for this member; overrides the workspace's per-member limit."""


class MemberSpec(Model):
    workspace: Name
    """A Workspace in the same namespace."""
    user: str = Field(min_length=1, max_length=254)
    """Who this is (an email address or an agent's name); recorded with every call."""
    role: Literal["admin", "member"] = "member"
    """admin or member."""
    token_hash: str | None = Field(default=None, pattern=TOKEN_HASH_PATTERN)
    """sha256:HEX of the member's mwt_ token, from `mcpyard token new`; omit it in a cluster
    and the operator mints a token into a Secret."""
    access: Access | None = None
    """Optional per-tool access rules; without them the member may use every tool."""
    rate_limit: MemberRateLimit | None = None
    """Optional limit of this member's own."""
    expires: AwareDatetime | None = None
    """RFC 3339 time after which the token stops working, e.g. 2027-01-01T00:00:00Z."""
    disabled: bool = False
    """Revoke access without deleting the member."""


class MemberStatus(Model):
    observed_generation: int | None = None
    """The metadata.generation the status was computed from."""
    active: bool | None = None
    """Whether the member's token is accepted now (not disabled, not expired)."""
    expires: datetime | None = None
    """When the token stops working."""
    token_secret: str | None = None
    """The Secret holding a token the operator minted (key `token`)."""
    tools: int | None = None
    """How many of the workspace's known tools the member may use."""
    tool_names: list[str] | None = None
    """The namespaced names of those tools (slug__tool), sorted; at most 50, the rest counted
    in toolsNotListed."""
    tools_not_listed: int | None = None
    """How many usable tools toolNames leaves out (0 when it lists them all)."""
    conditions: list[Condition] = Field(default_factory=list)
    """Accepted, ResolvedRefs, Programmed and Ready."""


class Member(Resource):
    """A person or agent allowed to use a workspace, with a personal mwt_ token."""

    KIND: ClassVar[str] = "Member"
    PLURAL: ClassVar[str] = "members"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("mmb",)

    kind: Literal["Member"] = "Member"
    spec: MemberSpec
