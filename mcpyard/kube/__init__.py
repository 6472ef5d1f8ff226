"""The only code that talks to the Kubernetes API (the operator and the gateway's cluster source).

A small client over the official ``kubernetes`` client (:class:`Client`: get, list, create,
merge-patch, delete, status patches; objects as plain dicts), apply-by-patch of owned objects
with owner references (:func:`apply`), and the permissions all of it needs as data
(:data:`RBAC_RULES`). No rule of mcpyard lives here: what to write comes from the compiler.
"""

from __future__ import annotations

from mcpyard.kube._apply import Outcome, apply, covers, owner_reference
from mcpyard.kube._client import PLURALS, ApiError, Client, Connection, path
from mcpyard.kube._rbac import GATEWAY_RBAC_RULES, RBAC_RULES, allows

__all__ = [
    "GATEWAY_RBAC_RULES",
    "PLURALS",
    "RBAC_RULES",
    "ApiError",
    "Client",
    "Connection",
    "Outcome",
    "allows",
    "apply",
    "covers",
    "owner_reference",
    "path",
]
