"""Capability manifests in a cluster: the operator stores each server's manifest in a
ConfigMap referenced from its status, refreshes it with tool discovery, and reports a tool
whose definition no longer matches its pin (against the demo server, a real MCP server)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from mcpyard.operator import _manifests
from mcpyard.operator._runtime import Entry, Runtime
from tests.conftest import manifest
from tests.gateway.gwtools import upstream_process
from tests.operator.conftest import Cluster, example_documents, wait_for

SCHEMA = json.loads(
    (Path(__file__).parents[2] / "docs" / "schemas" / "manifest.schema.json").read_text()
)
NS = "team-eng"
CONFIG_MAP = "mcp-demo-manifest"


def _eng_secret() -> dict[str, Any]:
    return next(
        d
        for d in example_documents()
        if d["kind"] == "EncryptedSecret" and d["metadata"]["namespace"] == NS
    )


def _status(cluster: Cluster) -> dict[str, Any]:
    return cluster.resource("MCPServer", NS, "demo").get("status") or {}


def _stored(cluster: Cluster) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(the ConfigMap, its manifest) once the status references it with its digest."""
    ref = _status(cluster).get("manifest")
    found = cluster.get("v1", "ConfigMap", NS, CONFIG_MAP)
    if not ref or found is None:
        return None
    text = found["data"]["manifest.json"]
    if ref != {"configMap": CONFIG_MAP, "digest": _digest(text)}:
        return None
    return found, json.loads(text)


def _digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _condition(cluster: Cluster, type_: str) -> tuple[str, str, str] | None:
    cond = cluster.condition("MCPServer", NS, "demo", type_)
    return (cond["status"], cond["reason"], cond["message"]) if cond else None


def test_the_manifest_configmap_follows_discovery_and_pins(
    cluster: Cluster, demo_server: str
) -> None:
    cluster.seed_age_key()
    cluster.start(discovery_interval=1.0)
    inject = [{"secretRef": {"name": "analytics-key", "key": "token"}, "as": "bearer"}]
    cluster.create(
        manifest("Workspace", "eng", namespace=NS),
        _eng_secret(),
        manifest(
            "MCPServer",
            "demo",
            {"workspace": "eng", "proxy": {"url": demo_server}, "secrets": inject},
            namespace=NS,
        ),
    )

    # The ConfigMap next to the server, owned by it, with a manifest the schema accepts.
    config_map, first = wait_for(lambda: _stored(cluster), what="the manifest ConfigMap")
    jsonschema.validate(first, SCHEMA)
    server = cluster.resource("MCPServer", NS, "demo")
    assert config_map["metadata"]["ownerReferences"][0]["uid"] == server["metadata"]["uid"]
    labels = config_map["metadata"]["labels"]
    assert labels["mcpyard.io/server"] == "demo" and labels["mcpyard.io/workspace"] == "eng"
    assert labels["app.kubernetes.io/managed-by"] == "mcpyard"
    assert first["workspace"] == "eng" and first["server"]["slug"] == "demo"
    tools = {t["originalName"]: t for t in first["tools"]}
    assert tools["echo"]["name"] == "demo__echo"
    assert tools["echo"]["description"] == "Return the text unchanged."
    assert "analytics-key" in json.dumps(first["needs"]["secrets"])
    assert "demo-analytics-key" not in config_map["data"]["manifest.json"]  # never the value
    assert _condition(cluster, "ToolsPinned") is None  # nothing pinned, nothing said

    # Refreshes that find the same tools write nothing.
    version = config_map["metadata"]["resourceVersion"]
    wait_for(
        lambda: (_condition(cluster, "ToolsChanged") or ("",))[:2] == ("False", "ToolsUnchanged"),
        what="a refresh that found the same tools",
    )
    again = cluster.get("v1", "ConfigMap", NS, CONFIG_MAP)
    assert again is not None and again["metadata"]["resourceVersion"] == version

    with upstream_process("beta") as beta:
        # Another server behind the URL: echo's definition changed, hello is new.
        cluster.patch("MCPServer", NS, "demo", {"spec": {"proxy": {"url": beta.url}}})
        changed = wait_for(
            lambda: cluster.ever_true("MCPServer", "demo", "ToolsChanged"),
            what="ToolsChanged",
        )
        assert "definition changed: echo" in changed[2] and "added hello" in changed[2], changed
        _, second = wait_for(
            lambda: (s := _stored(cluster)) and s[1]["tools"] != first["tools"] and s,
            what="the manifest refreshed",
        )
        jsonschema.validate(second, SCHEMA)
        tools = {t["originalName"]: t for t in second["tools"]}
        assert sorted(tools) == ["echo", "hello"]
        assert tools["echo"]["description"] == "Echo the text."

        # Pinned to the definitions reviewed before: echo is withheld, and said so.
        pin = {"echo": first_echo_hash(first), "hello": tools["hello"]["hash"]}
        cluster.patch("MCPServer", NS, "demo", {"spec": {"tools": {"pin": pin}}})
        mismatch = wait_for(
            lambda: (c := _condition(cluster, "ToolsPinned")) and c[0] == "False" and c,
            what="ToolsPinned False",
        )
        assert mismatch[1] == "PinMismatch"
        assert "echo (changed)" in mismatch[2] and "hello" not in mismatch[2], mismatch
        _, pinned = wait_for(
            lambda: (s := _stored(cluster)) and len(s[1]["tools"]) == 1 and s,
            what="the manifest without the withheld tool",
        )
        assert [t["originalName"] for t in pinned["tools"]] == ["hello"]

        # The pin updated in git: every tool matches again.
        pin["echo"] = tools["echo"]["hash"]
        cluster.patch("MCPServer", NS, "demo", {"spec": {"tools": {"pin": pin}}})
        matched = wait_for(
            lambda: (c := _condition(cluster, "ToolsPinned")) and c[0] == "True" and c,
            what="ToolsPinned True",
        )
        assert matched[1] == "PinsMatch"
        wait_for(
            lambda: (s := _stored(cluster)) and len(s[1]["tools"]) == 2,
            what="echo served again",
        )


def first_echo_hash(first: dict[str, Any]) -> str:
    return str(next(t["hash"] for t in first["tools"] if t["originalName"] == "echo"))


def test_a_manifest_too_large_for_a_configmap_is_not_stored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rt = Runtime(settings=None, client=None, store=None, catalog={}, indexes={})  # type: ignore[arg-type]
    owner = Entry(
        {
            "apiVersion": "mcpyard.io/v1alpha1",
            "kind": "MCPServer",
            "metadata": {"name": "big", "namespace": NS, "uid": "u-1"},
        },
        None,
    )
    built = {"tools": [{"description": "x" * 1_100_000}]}
    # Nothing is written (the client would fail if asked), the status names no ConfigMap.
    assert asyncio.run(_manifests.store(rt, owner, "eng", built, force=False)) is None
    assert rt.manifests == {}
    assert "over the 1000000 a ConfigMap holds" in caplog.text
