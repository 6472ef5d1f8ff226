"""A cold start as a platform team sees it: every workspace's configuration is written before
the first status, without a PATCH of any Workspace (kopf's finalizer and annotations) or a
GET of any config Secret (the list at start says what each holds); a resync of workspaces
that did not change writes nothing (no config Secret, no status: resourceVersions stay); a
restart writes no configuration that did not change; a Workspace deleted while no operator
ran loses its config Secret at the next start; and a finalizer that an older operator left
on an MCPServer or a Workspace is removed (else deleting it would hang)."""

from __future__ import annotations

import re
from typing import Any

from mcpyard.operator._settings import FINALIZER
from tests.operator.conftest import API, OPERATOR_NS, TEST_AGENT, Cluster, wait_for

WORKSPACES = ("w0", "w1", "w2")
CONFIG_WRITE = re.compile(rf"^/api/v1/namespaces/{OPERATOR_NS}/secrets(/mcpyard-ws-[a-z0-9-]+)?$")
STATUS = re.compile(
    r"^/apis/mcpyard\.io/v1alpha1/namespaces/[^/]+/(workspaces|members)/[^/]+/status$"
)


WORKSPACE = re.compile(r"^/apis/mcpyard\.io/v1alpha1/namespaces/[^/]+/workspaces/[^/]+$")
CONFIG = re.compile(rf"^/api/v1/namespaces/{OPERATOR_NS}/secrets/mcpyard-ws-[a-z0-9-]+$")


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


def _cold_config_reads(cluster: Cluster) -> list[str]:
    """The operator's GETs of each config Secret before its first write (the test's own
    reads, with its user agent, left out; a resync's, after, read for drift)."""
    written: set[str] = set()
    reads = []
    for r in cluster.emulator.requests():
        method, path = str(r.method.value), str(r.url.path)
        if not CONFIG.match(path) or r.headers.get("User-Agent") == TEST_AGENT:
            continue
        if method == "PATCH":
            written.add(path)
        elif method == "GET" and path not in written:
            reads.append(path)
    return reads


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
    first_writes: dict[str, int] = {}  # each config Secret's first write
    for i, (method, path, _) in enumerate(answered):
        if method in ("POST", "PATCH", "PUT") and CONFIG_WRITE.match(path):
            first_writes.setdefault(path.split("?")[0], i)
    writes = list(first_writes.values())
    statuses = [
        i
        for i, (method, path, _) in enumerate(answered)
        if method == "PATCH" and STATUS.match(path)
    ]
    assert len(writes) >= len(WORKSPACES) and statuses
    assert max(writes) < min(statuses), "a status was written before every configuration"
    # One status write per resource: the statuses were computed once, not per event.
    assert len(statuses) == len(_docs())
    # No bookkeeping on the Workspaces themselves (kopf's finalizer and progress annotations:
    # two PATCHes per new Workspace), and no read of a config Secret one by one before it is
    # first written (the list at start knew none existed; a resync reads them, for drift).
    assert [a for a in answered if a[0] == "PATCH" and WORKSPACE.match(a[1])] == []
    assert _cold_config_reads(cluster) == []

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


def test_a_restart_writes_nothing_and_a_workspace_deleted_meanwhile_loses_its_config(
    cluster: Cluster,
) -> None:
    cluster.seed_age_key()
    cluster.create(*_docs())
    cluster.start()
    for ws in WORKSPACES:
        wait_for(lambda ws=ws: cluster.config(ws), what=f"the config of {ws}")
    cluster.stop()
    # While no operator runs: w0 is deleted (no finalizer holds it), w1's member m1 too.
    cluster.delete("Workspace", "team-eng", "w0")
    cluster.delete("Member", "team-eng", "w1-m1")
    w2 = cluster.get("v1", "Secret", OPERATOR_NS, "mcpyard-ws-w2")
    assert w2 is not None
    seen = len(cluster.emulator.answered())
    cluster.start()
    wait_for(lambda: cluster.config("w0") is None, what="the config of the deleted w0 to go")
    wait_for(
        lambda: [m["name"] for m in cluster.config("w1")[0]["members"]] == ["w1-m0"],  # type: ignore[index]
        what="w1 without the deleted member",
    )
    answered = cluster.emulator.answered()[seen:]
    # w2 did not change: its config Secret was compared with what the list at start found,
    # neither read again nor written.
    assert not [a for a in answered if a[1].endswith("/secrets/mcpyard-ws-w2")]
    assert cluster.get("v1", "Secret", OPERATOR_NS, "mcpyard-ws-w2") == w2
    assert not [a for a in answered if a[0] == "PATCH" and WORKSPACE.match(a[1])]


def test_a_workspace_with_the_finalizer_of_an_older_operator_is_deleted(
    cluster: Cluster,
) -> None:
    cluster.seed_age_key()
    workspace = _docs()[0]
    workspace["metadata"]["finalizers"] = [FINALIZER]
    cluster.create(workspace)
    cluster.start()
    wait_for(lambda: cluster.config("w0"), what="the config of w0")
    cluster.delete("Workspace", "team-eng", "w0")
    wait_for(lambda: cluster.config("w0") is None, what="the config of w0 to go")
    wait_for(
        lambda: cluster.get(API, "Workspace", "team-eng", "w0") is None,
        what="w0 gone (its finalizer removed)",
    )
