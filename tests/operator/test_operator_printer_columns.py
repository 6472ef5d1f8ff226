"""`kubectl get` shows something true: every printer column that reads the status resolves on
every example resource once the operator has reconciled it, and agrees with the config."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import ROOT
from tests.operator.conftest import Cluster, example_documents, wait_for

CRDS = ROOT / "crds"


def _columns(kind: str) -> list[tuple[str, str]]:
    for path in sorted(Path(CRDS).glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        if crd["spec"]["names"]["kind"] == kind:
            (version,) = crd["spec"]["versions"]
            return [(c["name"], c["jsonPath"]) for c in version["additionalPrinterColumns"]]
    raise AssertionError(f"no CRD for {kind}")


def _resolve(obj: dict[str, Any], json_path: str) -> Any:
    """The few JSONPath forms the CRDs use: `.a.b` and `.a.conditions[?(@.type=="T")].f`."""
    value: Any = obj
    for part in re.findall(r'\.(\w+)(?:\[\?\(@\.type=="(\w+)"\)\])?', json_path):
        name, condition = part
        value = value.get(name) if isinstance(value, dict) else None
        if condition:
            value = next((c for c in value or [] if c.get("type") == condition), None)
    return value


def test_every_status_column_says_something(cluster: Cluster, demo_server: str) -> None:
    docs = example_documents()
    for doc in docs:  # eng's proxied server reachable, so that its tools are counted
        if doc["kind"] == "MCPServer" and "proxy" in doc["spec"]:
            doc["spec"]["proxy"]["url"] = demo_server
    cluster.seed_age_key()
    cluster.start()
    cluster.create(*docs)
    status_columns = {
        kind: [(n, p) for n, p in _columns(kind) if p.startswith(".status.")]
        for kind in ("Workspace", "MCPServer", "Member", "EncryptedSecret")
    }
    assert all(status_columns.values())

    # Hosted servers never run here (the emulator has no pods), so their tools stay unknown,
    # and so do the counts that only they make up: kubectl shows <none>, which is true.
    unknown = {
        *(
            f"MCPServer {server}: {column}"
            for server in ("team-data/analytics", "team-data/clock", "team-eng/notes",
                           "team-eng/time")
            for column in ("Tools", "Protocol")
        ),
        "Workspace team-data/data: Tools",
        "Member team-data/erin: Tools",
    }

    def missing() -> list[str]:
        out = []
        for doc in docs:
            meta = doc["metadata"]
            obj = cluster.resource(doc["kind"], meta["namespace"], meta["name"])
            for name, path in status_columns[doc["kind"]]:
                column = f"{doc['kind']} {meta['namespace']}/{meta['name']}: {name}"
                if _resolve(obj, path) is None and column not in unknown:
                    out.append(column)
        return out

    try:
        wait_for(lambda: not missing(), what="every status column", timeout=60)
    except AssertionError:
        raise AssertionError(f"status columns without a value: {missing()}") from None
    eng = cluster.resource("Workspace", "team-eng", "eng")["status"]
    config, _ = wait_for(lambda: cluster.config("eng"), what="eng's config")
    assert eng["servers"] == len(config["servers"])
    analytics = cluster.resource("MCPServer", "team-eng", "analytics")["status"]
    assert analytics["toolCount"] == len(analytics["tools"]) == 5
    assert analytics["endpoint"] == demo_server
    # The era the discovery spoke, as the gateway would (spec.protocolEra auto: handshake).
    assert analytics["protocol"] == {"era": "handshake", "version": "2025-11-25"}
