"""mcpyard.io/v1alpha1: Workspace, MCPServer, Member, EncryptedSecret.

:func:`parse` turns one decoded manifest into its model, or raises
:class:`~mcpyard.errors.InvalidResource` with every problem named by field path.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ValidationError

from mcpyard import errors
from mcpyard.api._problem import Problem, validation_messages
from mcpyard.api.v1alpha1 import conditions
from mcpyard.api.v1alpha1._base import API_VERSION, GROUP, VERSION, Condition, ObjectMeta, Resource
from mcpyard.api.v1alpha1.encryptedsecret import EncryptedSecret, EncryptedSecretSpec
from mcpyard.api.v1alpha1.mcpserver import (
    HostedSource,
    HubSource,
    MCPServer,
    MCPServerSpec,
    ProxySource,
    SecretInjection,
    SecretKeyRef,
    ToolFilter,
)
from mcpyard.api.v1alpha1.member import Access, Member, MemberRateLimit, MemberSpec
from mcpyard.api.v1alpha1.workspace import (
    PLAN_REQUESTS_PER_MINUTE,
    OidcSignIn,
    SignIn,
    Workspace,
    WorkspaceRateLimit,
    WorkspaceSpec,
)

KINDS: dict[str, type[Resource]] = {
    cls.KIND: cls for cls in (Workspace, MCPServer, Member, EncryptedSecret)
}


def parse(obj: Mapping[str, object]) -> Resource:
    """Validate one manifest of a mcpyard kind; raise InvalidResource naming each field."""
    kind = obj.get("kind")
    raw_meta = obj.get("metadata")
    meta: Mapping[str, object] = raw_meta if isinstance(raw_meta, dict) else {}
    namespace = str(meta.get("namespace") or "default")
    name = str(meta.get("name") or "<unnamed>")
    if obj.get("apiVersion") != API_VERSION or not isinstance(kind, str) or kind not in KINDS:
        raise errors.InvalidResource(
            [Problem(namespace, str(kind), name, "kind",
                     f"{obj.get('apiVersion')}/{kind} is not a mcpyard kind "
                     f"(expected {API_VERSION} {', '.join(sorted(KINDS))})")]
        )
    cls = KINDS[str(kind)]
    try:
        return cls.model_validate(obj)
    except ValidationError as exc:
        raise errors.InvalidResource([
            Problem(namespace, str(kind), name, path, message)
            for path, message in validation_messages(exc)
        ]) from None


__all__ = [
    "API_VERSION",
    "GROUP",
    "KINDS",
    "PLAN_REQUESTS_PER_MINUTE",
    "VERSION",
    "Access",
    "Condition",
    "EncryptedSecret",
    "EncryptedSecretSpec",
    "HostedSource",
    "HubSource",
    "MCPServer",
    "MCPServerSpec",
    "Member",
    "MemberRateLimit",
    "MemberSpec",
    "ObjectMeta",
    "OidcSignIn",
    "ProxySource",
    "Resource",
    "SecretInjection",
    "SecretKeyRef",
    "SignIn",
    "ToolFilter",
    "Workspace",
    "WorkspaceRateLimit",
    "WorkspaceSpec",
    "conditions",
    "parse",
]
