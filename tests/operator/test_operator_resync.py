"""The periodic resync: drift is repaired, and secrets that failed are decrypted again once the
age identities are rotated, without a restart of the operator."""

from __future__ import annotations

import base64

from mcpyard.crypto import sops
from tests.conftest import DEMO_AGE_KEY
from tests.operator.conftest import OPERATOR_NS, Cluster, example_documents, wait_for


def _ready(cluster: Cluster, kind: str, ns: str, name: str) -> tuple[str, str]:
    c = cluster.condition(kind, ns, name, "Ready")
    return (c["status"], c["reason"]) if c else ("", "")


def test_resync_repairs_drift_and_retries_failed_secrets(cluster: Cluster) -> None:
    wrong, _ = sops.age_keygen()
    cluster.seed_age_key(wrong)
    cluster.start(resync_interval=1.0)
    cluster.create(*example_documents())
    wait_for(
        lambda: (
            _ready(cluster, "EncryptedSecret", "team-data", "analytics-key")
            == ("False", "DecryptionFailed")
        ),
        what="the failure with the wrong key",
    )
    wait_for(lambda: cluster.config("data"), what="the config of data")
    assert cluster.config("data")[1] == {}  # type: ignore[index]

    # Rotation: the right identity joins the age Secret; no restart, no change to the secret.
    cluster.patch(
        "Secret",
        OPERATOR_NS,
        "mcpyard-age",
        {"data": {"new.agekey": base64.b64encode(DEMO_AGE_KEY.read_bytes()).decode()}},
        api_version="v1",
    )
    wait_for(
        lambda: (
            _ready(cluster, "EncryptedSecret", "team-data", "analytics-key") == ("True", "Serving")
        ),
        what="decrypted at a resync",
    )
    wait_for(
        lambda: set((cluster.config("data") or ({}, {}))[1]) == {"team-data/analytics-key/token"},
        what="the sealed value in data's config",
    )
    wait_for(
        lambda: _ready(cluster, "MCPServer", "team-eng", "analytics")[1] != "DecryptionFailed",
        what="the server that uses it to recover",
    )

    # Drift: objects deleted behind the operator's back come back at the next resync.
    deployment = wait_for(
        lambda: cluster.get("apps/v1", "Deployment", "team-eng", "mcp-notes"),
        what="the notes Deployment",
    )
    cluster.delete("Secret", OPERATOR_NS, "mcpyard-ws-eng", api_version="v1")
    cluster.delete("Deployment", "team-eng", "mcp-notes", api_version="apps/v1")
    wait_for(lambda: cluster.config("eng"), what="eng's config Secret back")
    again = wait_for(
        lambda: cluster.get("apps/v1", "Deployment", "team-eng", "mcp-notes"),
        what="the notes Deployment back",
    )
    assert again["metadata"]["uid"] != deployment["metadata"]["uid"]
    assert again["spec"] == deployment["spec"]
