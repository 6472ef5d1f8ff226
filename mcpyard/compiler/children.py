"""The Kubernetes objects a hosted server needs in a cluster: Deployment, Service, env Secret.

Secret values are never here: the env Secret lists its values by reference (annotation
``mcpyard.io/secret-refs``) and the operator fills ``data`` from the vault when it applies it.
"""

from __future__ import annotations

import hashlib
import json

from mcpyard import __version__
from mcpyard.compiler.config import ServerConfig
from mcpyard.jsontypes import JSONObject, JSONValue

BRIDGE_PORT = 8080
RUNNER_IMAGE = f"ghcr.io/mcpyard/mcpyard-runner:{__version__}"
"""The image hosted stdio servers run in when they name none (docker/runner.Dockerfile); the
chart's ``runnerImage`` default is the same (its appVersion is the package's version)."""
SECRET_REFS_ANNOTATION = "mcpyard.io/secret-refs"
CONFIG_HASH_ANNOTATION = "mcpyard.io/config-hash"
MANAGED_BY = {"app.kubernetes.io/managed-by": "mcpyard"}


def object_name(name: str, suffix: str = "") -> str:
    """A DNS-1035 label for a child object: ``mcp-NAME[-SUFFIX]``, hashed past 63 chars."""
    full = f"mcp-{name}{'-' + suffix if suffix else ''}"
    if len(full) <= 63:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:8]
    return f"{full[:54].rstrip('-')}-{digest}"


def child_labels(name: str) -> dict[str, str]:
    """The labels of every child object of the MCPServer ``name``."""
    return {**MANAGED_BY, "app.kubernetes.io/name": "mcp-server",
            "app.kubernetes.io/instance": object_name(name), "mcpyard.io/server": name}


def service_url(name: str, namespace: str, port: int, path: str) -> str:
    return f"http://{object_name(name)}.{namespace}.svc.cluster.local:{port}{path}"


def hosted(
    server: ServerConfig,
    *,
    image: str | None,
    command: tuple[str, ...] | None,
    transport: str,
    port: int,
    replicas: int,
    runner_image: str,
) -> list[JSONObject]:
    """Deployment + Service (+ env Secret) for one hosted server."""
    name, ns = server.name, server.namespace
    labels = child_labels(name)
    env: list[JSONValue] = [{"name": k, "value": v} for k, v in sorted(server.env.items())]
    refs = {i.target: i.ref.identity for i in server.injections if i.as_ == "env"}
    objects: list[JSONObject] = []
    if refs:
        secret_name = object_name(name, "env")
        objects.append({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": secret_name, "namespace": ns, "labels": dict(labels),
                         "annotations": {SECRET_REFS_ANNOTATION: json.dumps(refs,
                                                                            sort_keys=True)}},
            "type": "Opaque",
        })
        env += [{"name": var, "valueFrom": {"secretKeyRef": {"name": secret_name, "key": var}}}
                for var in sorted(refs)]
    if transport == "stdio":
        args: list[JSONValue] = ["mcpyard", "bridge", "--port", str(port), "--", *(command or ())]
        container: JSONObject = {"image": image or runner_image, "args": args}
    else:
        container = {"image": image or runner_image}
        if command:
            container["args"] = list(command)
    container.update({
        "name": "server", "env": env,
        "ports": [{"name": "mcp", "containerPort": port, "protocol": "TCP"}],
        "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True,
                            "capabilities": {"drop": ["ALL"]}},
    })
    spec_hash = hashlib.sha256(json.dumps([container, refs], sort_keys=True).encode())
    objects.append({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": object_name(name), "namespace": ns, "labels": dict(labels)},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app.kubernetes.io/instance": object_name(name)}},
            "template": {
                "metadata": {"labels": dict(labels),
                             "annotations": {CONFIG_HASH_ANNOTATION: spec_hash.hexdigest()[:16]}},
                "spec": {"containers": [container], "automountServiceAccountToken": False},
            },
        },
    })
    objects.append({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": object_name(name), "namespace": ns, "labels": dict(labels)},
        "spec": {"selector": {"app.kubernetes.io/instance": object_name(name)},
                 # protocol is a key of the ports list: a server-side apply without it
                 # fails on Kubernetes 1.20 (it has no default there for apply).
                 "ports": [{"name": "mcp", "port": port, "targetPort": "mcp",
                            "protocol": "TCP"}]},
    })
    return objects
