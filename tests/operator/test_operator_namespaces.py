"""An operator told to serve some namespaces leaves the others alone."""

from __future__ import annotations

from tests.operator.conftest import (
    Cluster,
    every_request_is_allowed,
    example_documents,
    wait_for,
)


def test_only_the_served_namespaces_are_handled(cluster: Cluster) -> None:
    cluster.seed_age_key()
    cluster.start(namespaces=("team-eng",))
    cluster.create(*example_documents())
    wait_for(lambda: cluster.config("eng"), what="the config of eng")
    wait_for(
        lambda: (cluster.resource("Workspace", "team-eng", "eng").get("status") or {}).get("url"),
        what="eng's status",
    )
    wait_for(
        lambda: (cluster.resource("Member", "team-eng", "alice").get("status") or {}).get(
            "conditions"
        ),
        what="alice's status",
    )
    cluster.stop()
    # team-data was never touched: no config, no status, no finalizer, no hosted servers.
    assert cluster.config("data") is None
    data = cluster.resource("Workspace", "team-data", "data")
    assert "status" not in data and not data["metadata"].get("finalizers")
    assert cluster.get("apps/v1", "Deployment", "team-data", "mcp-analytics") is None
    # Nothing was asked of team-data at all, by kopf or by mcpyard.
    assert not [
        r
        for r in cluster.emulator.requests()
        if r.namespace == "team-data" and r.headers.get("User-Agent") != "mcpyard-tests"
    ]
    every_request_is_allowed(cluster)
