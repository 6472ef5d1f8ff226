"""A cold start as a platform team sees it: every workspace's configuration is written before
the first status, a resync of workspaces that did not change writes nothing (no config Secret,
no status: resourceVersions stay), and a finalizer that an older operator left on an
MCPServer is removed (else deleting the server would hang)."""

from __future__ import annotations

import re
from typing import Any

from mcpyard.operator._settings import FINALIZER
from tests.operator.conftest import API, OPERATOR_NS, Cluster, wait_for

WORKSPACES = ("w0", "w1", "w2")
CONFIG_WRITE = re.compile(rf"^/api/v1/namespaces/{OPERATOR_NS}/secrets(/mcpyard-ws-[a-z0-9-]+)?$")
STATUS = re.compile(
    r"^/apis/mcpyard\.io/v1alpha1/namespaces/[^/]+/(workspaces|members)/[^/]+/status$"
)


def _docs() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for ws in WORKSPACES:
        meta = {"namespace": "team-eng"}
        out.append(
            {
                "apiVersion": API,
                "kind": "Workspace",
                "metadata": {**meta, "name": ws},
                "spec": {"plan": "pro"},
            }
        )
        for m in range(2):
            out.append(
                {
                    "apiVersion": API,
                    "kind": "Member",
                    "metadata": {**meta, "name": f"{ws}-m{m}"},
                    "spec": {
                        "workspace": ws,
                        "user": f"m{m}@{ws}.example.com",
                        "tokenHash": "sha256:" + f"{m}".ljust(64, "0"),
                    },
                }
            )
    return out


def _ready(cluster: Cluster, kind: str, name: str) -> bool:
    cond = cluster.condition(kind, "team-eng", name, "Ready")
    return bool(cond and cond["status"] == "True")


def _versions(cluster: Cluster) -> dict[str, str]:
    out = {}
    for doc in _docs():
        name = doc["metadata"]["name"]
        out[f"{doc['kind']}/{name}"] = cluster.resource(doc["kind"], "team-eng", name)["metadata"][
            "resourceVersion"
        ]
    for ws in WORKSPACES:
        secret = cluster.get("v1", "Secret", OPERATOR_NS, f"mcpyard-ws-{ws}")
        assert secret is not None
        out[f"Secret/{ws}"] = secret["metadata"]["resourceVersion"]
    return out


def _sweeps(cluster: Cluster) -> int:
    """Lists of Workspaces that are not the informer's (the sweep's, before each resync)."""
    return sum(
        1
        for r in cluster.emulator.requests()
        if str(r.url.path).endswith("/workspaces")
        and r.params.get("watch") != "true"
        and "limit" not in r.params
    )


def test_configurations_first_then_statuses_then_nothing(cluster: Cluster) -> None:
    cluster.seed_age_key()
    cluster.create(*_docs())  # all there before the operator starts: a cold start
    cluster.start(resync_interval=1.0)
    for ws in WORKSPACES:
        wait_for(lambda ws=ws: cluster.config(ws), what=f"the config of {ws}")
    for doc in _docs():
        name = doc["metadata"]["name"]
        wait_for(lambda d=doc, n=name: _ready(cluster, d["kind"], n), what=f"{name} Ready")

    answered = cluster.emulator.answered()
    writes = [
        i
        for i, (method, path, _) in enumerate(answered)
        if method in ("POST", "PATCH", "PUT") and CONFIG_WRITE.match(path)
    ]
    statuses = [
        i
        for i, (method, path, _) in enumerate(answered)
        if method == "PATCH" and STATUS.match(path)
    ]
    assert len(writes) >= len(WORKSPACES) and statuses
    assert max(writes) < min(statuses), "a status was written before every configuration"
    # One status write per resource: the statuses were computed once, not per event.
    assert len(statuses) == len(_docs())

    before = _versions(cluster)
    seen = len(cluster.emulator.answered())
    sweeps = _sweeps(cluster)
    wait_for(lambda: _sweeps(cluster) >= sweeps + 3, what="three more sweeps and resyncs")
    assert _versions(cluster) == before  # nothing rewritten: no config Secret, no status
    later = cluster.emulator.answered()[seen:]
    assert [a for a in later if a[0] == "PATCH" and STATUS.match(a[1])] == []


def test_a_finalizer_left_on_a_server_by_an_older_operator_is_removed(cluster: Cluster) -> None:
    cluster.seed_age_key()
    cluster.create(
        {
            "apiVersion": API,
            "kind": "Workspace",
            "metadata": {"name": "w", "namespace": "team-eng"},
            "spec": {},
        },
        {
            "apiVersion": API,
            "kind": "MCPServer",
            "metadata": {"name": "old", "namespace": "team-eng", "finalizers": [FINALIZER]},
            "spec": {"workspace": "w", "proxy": {"url": "http://127.0.0.1:9/mcp"}},
        },
    )
    cluster.start()
    wait_for(
        lambda: not cluster.resource("MCPServer", "team-eng", "old")["metadata"].get("finalizers"),
        what="the finalizer removed",
    )
