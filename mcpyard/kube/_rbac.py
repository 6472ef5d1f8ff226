"""The permissions mcpyard needs, as data: the Helm chart, docs/rbac.md and a test read them.

Each rule is a Kubernetes PolicyRule plus ``scope``: ``cluster`` (a ClusterRole, or a Role in
every watched namespace when the operator runs with ``--namespace``) or ``operator-namespace``
(a Role in the namespace the operator and the gateway run in). The rules follow what
:mod:`mcpyard.kube` and kopf call; tests run the operator (one replica, and two peered) and a
``mcpyard gateway`` process against the emulator and check that every request each made is
covered here, and that docs/rbac.md lists exactly these rules; on a real API server
(tests/cluster) the operator's audit log must show every rule used, except the few named there
with the path that needs them.
"""

from __future__ import annotations

from typing import Literal, TypedDict


class Rule(TypedDict):
    """One RBAC rule, with where it applies (a ClusterRole's or the operator namespace's Role)."""

    scope: Literal["cluster", "operator-namespace"]
    apiGroups: list[str]
    resources: list[str]
    verbs: list[str]


_CRS = ["workspaces", "mcpservers", "members", "encryptedsecrets"]

RBAC_RULES: tuple[Rule, ...] = (
    # kopf lists and watches the four kinds (it never reads one object alone); the sweep of
    # config Secrets lists Workspaces.
    {
        "scope": "cluster",
        "apiGroups": ["mcpyard.io"],
        "resources": _CRS,
        "verbs": ["list", "watch"],
    },
    # The operator removes the finalizer older versions put on Workspaces (kopf's) and
    # MCPServers; it writes nothing else on them. Members and EncryptedSecrets are only read.
    {
        "scope": "cluster",
        "apiGroups": ["mcpyard.io"],
        "resources": ["workspaces", "mcpservers"],
        "verbs": ["patch"],
    },
    # Statuses, conditions and printer columns (written, never read back alone).
    {
        "scope": "cluster",
        "apiGroups": ["mcpyard.io"],
        "resources": [f"{r}/status" for r in _CRS],
        "verbs": ["patch"],
    },
    # Owned objects are written by server-side apply: a PATCH, which the API server also
    # authorizes as create when it creates the object. The master key Secret is created (POST).
    # Hosted servers: Deployments are also watched to learn when a server is available.
    {
        "scope": "cluster",
        "apiGroups": ["apps"],
        "resources": ["deployments"],
        "verbs": ["get", "list", "watch", "create", "patch", "delete"],
    },
    {
        "scope": "cluster",
        "apiGroups": [""],
        "resources": ["services"],
        "verbs": ["get", "create", "patch", "delete"],
    },
    # Env Secrets of hosted servers and member token Secrets: read, written, never listed.
    {
        "scope": "cluster",
        "apiGroups": [""],
        "resources": ["secrets"],
        "verbs": ["get", "create", "patch", "delete"],
    },
    # Capability manifests: a ConfigMap per MCPServer, next to it (read, written, never listed).
    {
        "scope": "cluster",
        "apiGroups": [""],
        "resources": ["configmaps"],
        "verbs": ["get", "create", "patch"],
    },
    # kopf: Kubernetes events about the resources it handles (core v1 events only).
    {
        "scope": "cluster",
        "apiGroups": [""],
        "resources": ["events"],
        "verbs": ["create"],
    },
    # kopf: which CRDs are installed, listed and watched (never read one by one). Namespaces
    # are not listed: cluster-wide kopf needs none, and with named namespaces the operator
    # turns kopf's scanning off (operator/_settings.py).
    {
        "scope": "cluster",
        "apiGroups": ["apiextensions.k8s.io"],
        "resources": ["customresourcedefinitions"],
        "verbs": ["list", "watch"],
    },
    # kopf peering: only one replica writes; the sweeper reads it too (see docs/rbac.md).
    {
        "scope": "cluster",
        "apiGroups": ["kopf.dev"],
        "resources": ["clusterkopfpeerings", "kopfpeerings"],
        "verbs": ["get", "list", "watch", "patch"],
    },
    # The Flux Kustomization or Argo CD Application that applied a workspace's objects: its
    # status names the git revision the call records carry (read one by name, never listed).
    {
        "scope": "cluster",
        "apiGroups": ["kustomize.toolkit.fluxcd.io"],
        "resources": ["kustomizations"],
        "verbs": ["get"],
    },
    {
        "scope": "cluster",
        "apiGroups": ["argoproj.io"],
        "resources": ["applications"],
        "verbs": ["get"],
    },
    # Gateway config Secrets, the age identities and the master key live here; the sweep of
    # config Secrets of deleted workspaces lists them.
    {
        "scope": "operator-namespace",
        "apiGroups": [""],
        "resources": ["secrets"],
        "verbs": ["get", "list", "create", "patch", "delete"],
    },
)
"""What ``mcpyard operator`` needs."""

GATEWAY_RBAC_RULES: tuple[Rule, ...] = (
    # The gateway reads the config Secrets (and the master key) and follows their changes.
    {
        "scope": "operator-namespace",
        "apiGroups": [""],
        "resources": ["secrets"],
        "verbs": ["get", "list", "watch"],
    },
)
"""What the gateway's cluster source needs."""


def allows(
    rules: tuple[Rule, ...],
    *,
    group: str,
    resource: str,
    verb: str,
    in_operator_namespace: bool,
) -> bool:
    """Whether ``rules`` grant ``verb`` on ``group/resource`` (``resource/sub`` for a
    subresource) in the operator's namespace or elsewhere."""
    for rule in rules:
        if rule["scope"] == "operator-namespace" and not in_operator_namespace:
            continue
        if group in rule["apiGroups"] and resource in rule["resources"] and verb in rule["verbs"]:
            return True
    return False
