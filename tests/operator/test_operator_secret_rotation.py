"""A new value of an EncryptedSecret reaches the gateway config and restarts the hosted servers
that read it from their environment (the hash annotation on their pod template changes)."""

from __future__ import annotations

import base64
from typing import Any

import yaml

from mcpyard.crypto import sops
from mcpyard.crypto.vault import Vault
from tests.conftest import DEMO_AGE_KEY
from tests.operator.conftest import OPERATOR_NS, Cluster, example_documents, wait_for

NEW_VALUE = "rotated-analytics-key-0002"
HASH = "mcpyard.io/env-secret-hash"


def _recipient() -> str:
    for line in DEMO_AGE_KEY.read_text().splitlines():
        if line.startswith("# public key: "):
            return line.removeprefix("# public key: ").strip()
    raise AssertionError("no public key in the demo key file")


def _template_annotations(cluster: Cluster) -> dict[str, str] | None:
    found = cluster.get("apps/v1", "Deployment", "team-data", "mcp-analytics")
    if found is None:
        return None
    annotations: dict[str, str] = found["spec"]["template"]["metadata"]["annotations"]
    return annotations if HASH in annotations else None


def _env_value(cluster: Cluster) -> str | None:
    found = cluster.get("v1", "Secret", "team-data", "mcp-analytics-env")
    raw = ((found or {}).get("data") or {}).get("ANALYTICS_TOKEN")
    return base64.b64decode(raw).decode() if raw else None


def test_a_new_secret_value_reaches_config_and_restarts_its_server(cluster: Cluster) -> None:
    cluster.seed_age_key()
    cluster.start()
    cluster.create(*example_documents())
    before = wait_for(lambda: _template_annotations(cluster), what="the hosted Deployment")
    wait_for(lambda: _env_value(cluster) == "demo-analytics-key-0001", what="the env Secret")

    document: dict[str, Any] = yaml.safe_load(
        sops.encrypt_secret("analytics-key", "team-data", {"token": NEW_VALUE}, [_recipient()])
    )
    cluster.patch(
        "EncryptedSecret",
        "team-data",
        "analytics-key",
        {"spec": document["spec"], "sops": document["sops"]},
    )

    after = wait_for(
        lambda: (a := _template_annotations(cluster)) and a[HASH] != before[HASH] and a,
        what="a new env hash on the pod template",
    )
    assert after["mcpyard.io/config-hash"] == before["mcpyard.io/config-hash"]
    wait_for(lambda: _env_value(cluster) == NEW_VALUE, what="the new value in the env Secret")

    master = cluster.get("v1", "Secret", OPERATOR_NS, "mcpyard-master-key")
    assert master is not None
    vault = Vault(base64.b64decode(master["data"]["master.key"]))
    identity = "team-data/analytics-key/token"

    def sealed_value() -> str | None:
        found = cluster.config("data")
        if found is None or identity not in found[1]:
            return None
        vault.import_sealed(identity, found[1][identity])
        return vault.reveal(identity)

    wait_for(lambda: sealed_value() == NEW_VALUE, what="the new value sealed in the config")
    for line in cluster.records.lines:
        assert NEW_VALUE not in line
