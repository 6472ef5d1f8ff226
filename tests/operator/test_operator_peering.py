"""Two operator replicas in kopf peering: only the one with the higher priority writes; when
it stops, the other takes over."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from mcpyard.operator._peering import leads
from tests.conftest import manifest
from tests.operator.conftest import (
    OPERATOR_NS,
    Cluster,
    every_request_is_allowed,
    example_documents,
    wait_for,
)

WRITES = {"POST", "PATCH", "PUT", "DELETE"}


def _writes(cluster: Cluster, agent: str) -> list[tuple[str, str]]:
    return [
        (str(r.method.value), str(r.url.path))
        for r in cluster.emulator.requests()
        if r.headers.get("User-Agent") == agent and str(r.method.value) in WRITES
    ]


def _checks(cluster: Cluster, agent: str) -> int:
    """How often ``agent`` read the peering object (before each sweep)."""
    return sum(
        1
        for r in cluster.emulator.requests()
        if r.headers.get("User-Agent") == agent
        and str(r.url.path).endswith("/clusterkopfpeerings/mcpyard")
    )


def _peers(cluster: Cluster) -> dict[str, Any]:
    found = cluster.client.request("GET", "/apis/kopf.dev/v1/clusterkopfpeerings/mcpyard")
    return dict((found or {}).get("status") or {})


def _peering(*peers: tuple[int, datetime]) -> dict[str, Any]:
    return {"status": {f"peer-{i}": {"priority": priority, "lastseen": seen.isoformat(),
                                     "lifetime": 60}
                       for i, (priority, seen) in enumerate(peers)}}


def test_a_replica_leads_once_it_is_in_the_peering_and_nobody_outranks_it() -> None:
    now = datetime.now(UTC)
    stale = now - timedelta(minutes=5)
    assert not leads([], 10, now)  # no peering object: kopf waits for it, so does the writer
    assert not leads([_peering()], 10, now)  # itself not written yet: others may be starting
    assert leads([_peering((10, now))], 10, now)
    assert leads([_peering((10, now), (100, stale))], 10, now)  # the higher one is dead
    assert not leads([_peering((10, now), (100, now))], 10, now)
    assert not leads([_peering((10, now), (10, now))], 10, now)  # a tie pauses both, as kopf
    assert not leads([_peering((10, now)), _peering()], 10, now)  # every namespace's object


def test_only_the_highest_priority_replica_writes(cluster: Cluster) -> None:
    cluster.seed_age_key()
    cluster.client.request(
        "POST",
        "/apis/kopf.dev/v1/clusterkopfpeerings",
        {
            "apiVersion": "kopf.dev/v1",
            "kind": "ClusterKopfPeering",
            "metadata": {"name": "mcpyard"},
        },
    )
    # A config Secret whose workspace is gone (deleted while no operator ran): swept.
    cluster.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": "mcpyard-ws-ghost",
                "namespace": OPERATOR_NS,
                "labels": {"mcpyard.io/config": "true", "mcpyard.io/workspace": "ghost"},
            },
            "data": {},
        }
    )
    # Resync (and sweep) every second, in both replicas.
    first = cluster.start(
        peering="mcpyard", priority=100, user_agent="replica-a", resync_interval=1.0
    )
    # The second replica starts while the first leads: once the first is in the peering
    # (kopf's keep-alive writes it after the watches start; before, neither knows the other).
    wait_for(lambda: len(_peers(cluster)) == 1, what="replica-a in the peering")
    cluster.start(
        peering="mcpyard", priority=10, user_agent="replica-b", wait=False, resync_interval=1.0
    )
    peers = wait_for(lambda: len(p := _peers(cluster)) == 2 and p, what="two peers")
    assert sorted(p["priority"] for p in peers.values()) == [10, 100]

    cluster.create(*example_documents())
    wait_for(lambda: cluster.config("eng"), what="the config of eng")
    wait_for(lambda: cluster.config("data"), what="the config of data")
    wait_for(
        lambda: cluster.get("v1", "Secret", OPERATOR_NS, "mcpyard-ws-ghost") is None,
        what="the stray config Secret swept",
    )
    # The paused replica's sweeper finds it is not the leader and leaves the sweep to the
    # other (whose index is full); it writes nothing at all.
    wait_for(lambda: _checks(cluster, "replica-b") >= 3, what="three sweeps of replica-b")
    assert cluster.config("eng") and cluster.config("data")
    assert _writes(cluster, "replica-a")
    assert _writes(cluster, "replica-b") == []

    # The writer goes (it leaves the peering as it stops); the other one resumes and serves.
    cluster.stop(first)
    wait_for(lambda: len(_peers(cluster)) == 1, what="one peer left")
    cluster.create(
        manifest("Member", "dave", {"workspace": "eng", "user": "dave@x"}, namespace="team-eng")
    )
    wait_for(
        lambda: cluster.get("v1", "Secret", "team-eng", "mcpyard-member-dave"),
        what="dave's token minted by the second replica",
    )
    assert _writes(cluster, "replica-b")
    cluster.stop()
    every_request_is_allowed(cluster)
