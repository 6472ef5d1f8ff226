"""Capability manifests in the cluster: a ConfigMap per MCPServer, and its pin condition.

After each tool discovery the workspace's reconcile builds every discovered server's manifest
with :mod:`mcpyard.discovery.manifest` (the builder the gateway's ``/ws/W/manifest.json`` and
``mcpyard docs`` use), linked across the workspace, and stores it as ``manifest.json`` in the
ConfigMap ``mcp-NAME-manifest`` next to the server (owned by it, labelled like its other
children), written only when its content changes. The server's ``status.manifest`` names the
ConfigMap and the content's digest. When the server pins its tools, ``ToolsPinned`` says
whether every exposed tool still matches its pin.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from datetime import datetime

from mcpyard import compiler, jsontypes, kube
from mcpyard.compiler import children
from mcpyard.compiler.config import ServerConfig
from mcpyard.discovery import manifest, pins
from mcpyard.jsontypes import JSONObject
from mcpyard.operator._runtime import Entry, Runtime, Tools

KEY = "manifest.json"
"""The ConfigMap key holding the manifest."""
MAX_BYTES = 1_000_000
"""A ConfigMap holds at most 1 MiB; a larger manifest is not stored (and said so)."""
log = logging.getLogger("mcpyard.operator")


def config_map_name(server: str) -> str:
    return children.object_name(server, "manifest")


def build(
    rt: Runtime, ws: str, servers: Mapping[tuple[str, str], ServerConfig]
) -> dict[tuple[str, str], manifest.Manifest]:
    """The manifest of each server of ``ws`` whose tools were discovered, linked across them."""
    built = []
    for key, server in sorted(servers.items()):
        found = rt.tools.get(key)
        if found is None:
            continue
        served, _ = pins.split(server, found.reported.tools)
        reported = manifest.Reported(
            tools=served,
            prompts=found.reported.prompts,
            resources=found.reported.resources,
            resource_templates=found.reported.resource_templates,
            server_info=found.reported.server_info,
            instructions=found.reported.instructions,
        )
        entry = rt.catalog.get(server.hub_entry) if server.hub_entry is not None else None
        built.append(manifest.build(ws, server, reported, manifest.hub_info(entry)))
    return {
        (jsontypes.text(m, "server", "namespace"), jsontypes.text(m, "server", "name")): m
        for m in manifest.link(built)
    }


async def store(
    rt: Runtime, owner: Entry, ws: str, built: manifest.Manifest, *, force: bool
) -> dict[str, str] | None:
    """Write the server's manifest ConfigMap when its content changed (or on a resync, which
    repairs drift); its status reference. None when it cannot be stored (too large, or
    refused): the server's other status still applies."""
    name = config_map_name(owner.name)
    text = manifest.dumps(built)
    digest = "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    if len(text.encode()) > MAX_BYTES:
        log.warning(
            "MCPServer %s/%s: its manifest of %d bytes is over the %d a ConfigMap holds; "
            "not stored",
            owner.namespace,
            owner.name,
            len(text.encode()),
            MAX_BYTES,
        )
        return None
    obj: kube.KubeObject = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": owner.namespace,
            "labels": {**children.child_labels(owner.name), kube.WORKSPACE_LABEL: ws},
            "annotations": {"mcpyard.io/manifest-digest": digest},
            "ownerReferences": [kube.owner_reference(owner.body)],
        },
        "data": {KEY: text},
    }
    key = (owner.namespace, owner.name)
    if force or rt.manifests.get(key) != (name, digest, ws):
        try:
            await kube.apply(rt.client, obj)
        except kube.ApiError as exc:
            if exc.transient:
                raise  # the reconcile is retried
            log.warning(
                "MCPServer %s/%s: manifest ConfigMap %s refused: %s",
                owner.namespace,
                owner.name,
                name,
                exc,
            )
            return None
        rt.manifests[key] = (name, digest, ws)
    return {"configMap": name, "digest": digest}


def pinned_condition(
    e: Entry, server: ServerConfig, discovered: Tools, now: datetime
) -> JSONObject | None:
    """``ToolsPinned`` for a server that pins its tools (None when it pins none), by the
    compiler's rule, from the tools the last refresh found."""
    if server.tools.pin is None:
        return None
    _, held = pins.split(server, discovered.reported.tools)
    return compiler.tools_pinned_condition(len(server.tools.pin), held, now, e.generation)
