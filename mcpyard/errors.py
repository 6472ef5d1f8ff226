"""Errors of mcpyard, classified by what the caller should do.

    MCPyardError
    ├── InvalidResource      a manifest is wrong: fix it (permanent); carries Problems
    ├── ManifestError        a file cannot be read as manifests (YAML syntax, not a mapping)
    ├── SecretError          a secret cannot be decrypted or verified (wrong key, bad MAC)
    ├── DependencyNotReady   something it needs is not there yet: retry later
    └── UpstreamError        an upstream MCP server failed or timed out (transient)

Messages are short, name the resource or file and field at fault, and never carry a secret
value, a token or a URL's query string. ``operator/`` maps these once to kopf errors and
``gateway/`` once to HTTP / JSON-RPC errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

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
