"""The only code that talks to the Kubernetes API (the operator and the gateway's cluster source).

A small client over the official ``kubernetes`` client (:class:`Client`: get, list, watch,
create, server-side apply, merge-patch, delete, status patches; objects as plain dicts), the
apply of owned objects with owner references (:func:`apply`), the config Secret that carries
a workspace's configuration from the operator to the gateway (:func:`config_secret`,
:func:`read_config`), and the permissions all of it needs as data (:data:`RBAC_RULES`,
:data:`GATEWAY_RBAC_RULES`).
No rule of mcpyard lives here: what to write comes from the compiler.
"""

from __future__ import annotations

from mcpyard.kube._apply import Outcome, apply, covers, owner_reference
from mcpyard.kube._client import PLURALS, ApiError, Client, Connection, KubeObject, Watch, path
from mcpyard.kube._config import (
    CONFIG_LABEL,
    CONFIG_PREFIX,
    WORKSPACE_LABEL,
    ConfigSecret,
    config_secret,
    config_secret_name,
)
from mcpyard.kube._config import read as read_config
from mcpyard.kube._config import workspace_of as config_workspace
from mcpyard.kube._rbac import GATEWAY_RBAC_RULES, RBAC_RULES, allows

__all__ = [
    "CONFIG_LABEL",
    "CONFIG_PREFIX",
    "GATEWAY_RBAC_RULES",
    "PLURALS",
    "RBAC_RULES",
    "WORKSPACE_LABEL",
    "ApiError",
    "Client",
    "ConfigSecret",
    "Connection",
    "KubeObject",
    "Outcome",
    "Watch",
    "allows",
    "apply",
    "config_secret",
    "config_secret_name",
    "config_workspace",
    "covers",
    "owner_reference",
    "path",
    "read_config",
]
