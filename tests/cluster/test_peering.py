"""Peering on a real API server: two `mcpyard operator` replicas (the chart's ServiceAccount)
meet in kopf's peering object and only one writes; without kopf's peering CRDs, an operator
that was not asked to peer runs standalone with a warning, and one that was exits non-zero.

The peering CRDs are applied for this module and deleted at its end (the API server itself
removes a CRD and its objects), so the other modules see a server without them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.helmrender import Rendered
from tests.cluster.apiserver import ApiServer
from tests.cluster.conftest import OPERATOR_NS, OPERATOR_SA, Process, spawn, wait_for
from tests.conftest import manifest

PEERING_CRDS = Path(__file__).with_name("kopf-peering.yaml")
NS = "team-peer"


def _base_args(kubeconfig: Path) -> list[str]:
    return [
        "operator",
        "--kubeconfig",
        str(kubeconfig),
        "--operator-namespace",
        OPERATOR_NS,
        "--namespace",
        NS,
    ]


@pytest.fixture(scope="module")
def operator_kubeconfig(
    apiserver: ApiServer, chart: Rendered, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    apiserver.kubectl("create", "namespace", NS, check=False)
    work = tmp_path_factory.mktemp("peering")
    return apiserver.kubeconfig_for(work / "operator.kubeconfig", OPERATOR_NS, OPERATOR_SA)


def _peering_crds_absent(apiserver: ApiServer) -> None:
    done = apiserver.kubectl("get", "crd", "kopfpeerings.kopf.dev", check=False)
    assert done.returncode != 0, "kopf's peering CRDs are installed"


def test_without_peering_crds_an_unasked_operator_runs_standalone(
    apiserver: ApiServer, operator_kubeconfig: Path, tmp_path: Path
) -> None:
    _peering_crds_absent(apiserver)
    operator = spawn(tmp_path / "operator.log", *_base_args(operator_kubeconfig))
    try:
        apiserver.apply([manifest("Workspace", "lonely", {"plan": "free"}, namespace=NS)])
        status = wait_for(
            lambda: apiserver.get_json("workspace", "-n", NS, "lonely").get("status"),
            what="the standalone operator to serve",
            timeout=120,
        )
        assert status["observedGeneration"] == 1
    finally:
        code = operator.stop()
    log = operator.output()
    assert code == 0, log[-3000:]
    assert "kopf's peering CRD kopfpeerings.kopf.dev is not installed: running standalone" in log


def test_without_peering_crds_an_explicit_peering_exits(
    apiserver: ApiServer, operator_kubeconfig: Path, tmp_path: Path
) -> None:
    _peering_crds_absent(apiserver)
    operator = spawn(
        tmp_path / "operator.log", *_base_args(operator_kubeconfig), "--peering", "mcpyard"
    )
    code = operator.popen.wait(120)
    assert code == 2
    assert (
        "mcpyard operator: --peering mcpyard: kopf's peering CRD kopfpeerings.kopf.dev is not "
        "installed. Install kopf's peering CRDs" in operator.output()
    )


@pytest.fixture
def peering_crds(apiserver: ApiServer) -> Iterator[None]:
    apiserver.kubectl("apply", "-f", str(PEERING_CRDS))
    for name in ("kopfpeerings.kopf.dev", "clusterkopfpeerings.kopf.dev"):
        apiserver.kubectl("wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")
    try:
        yield
    finally:
        apiserver.kubectl("delete", "-f", str(PEERING_CRDS), "--wait=true", "--timeout=120s")


def _peers(apiserver: ApiServer) -> dict[str, Any]:
    found = apiserver.kubectl(
        "get", "kopfpeering", "-n", NS, "ha", "-o", "yaml", check=False
    ).stdout
    return dict((yaml.safe_load(found) or {}).get("status") or {})


TWIN = "mcpyard-operator-twin"


def _twin(apiserver: ApiServer) -> list[dict[str, Any]]:
    """A ServiceAccount bound to the chart's operator ClusterRole and Role."""
    subject = [{"kind": "ServiceAccount", "name": TWIN, "namespace": OPERATOR_NS}]
    rbac = "rbac.authorization.k8s.io"
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": TWIN, "namespace": OPERATOR_NS},
        },
        {
            "apiVersion": f"{rbac}/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": TWIN},
            "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": OPERATOR_SA},
            "subjects": subject,
        },
        {
            "apiVersion": f"{rbac}/v1",
            "kind": "RoleBinding",
            "metadata": {"name": TWIN, "namespace": OPERATOR_NS},
            "roleRef": {"apiGroup": rbac, "kind": "Role", "name": OPERATOR_SA},
            "subjects": subject,
        },
    ]


def _writes(apiserver: ApiServer, account: str) -> list[tuple[str, str, str]]:
    """(verb, resource, name) of every write ``account`` made to objects (not peering)."""
    out = []
    for e in apiserver.audit(f"system:serviceaccount:{OPERATOR_NS}:{account}"):
        ref = e.get("objectRef") or {}
        if (
            e["verb"] in ("create", "patch", "update", "delete")
            and ref.get("apiGroup") != "kopf.dev"
        ):
            resource = ref.get("resource", "") + (
                f"/{ref['subresource']}" if ref.get("subresource") else ""
            )
            out.append((e["verb"], resource, ref.get("name", "")))
    return out


def test_two_replicas_one_writes_then_the_other_takes_over(
    apiserver: ApiServer, operator_kubeconfig: Path, tmp_path: Path, peering_crds: None
) -> None:
    apiserver.apply(
        [
            {
                "apiVersion": "kopf.dev/v1",
                "kind": "KopfPeering",
                "metadata": {"name": "ha", "namespace": NS},
            }
        ]
    )
    # The second replica runs as a twin of the chart's ServiceAccount (same Roles), so that
    # the audit log tells the two replicas apart.
    apiserver.apply(_twin(apiserver))
    twin = apiserver.kubeconfig_for(tmp_path / "twin.kubeconfig", OPERATOR_NS, TWIN)
    high = spawn(
        tmp_path / "high.log",
        *_base_args(operator_kubeconfig),
        "--peering",
        "ha",
        "--priority",
        "100",
    )
    low = spawn(tmp_path / "low.log", *_base_args(twin), "--peering", "ha", "--priority", "10")
    replicas: list[Process] = [high, low]
    try:
        peers = wait_for(
            lambda: len(p := _peers(apiserver)) == 2 and p, what="two peers", timeout=120
        )
        assert sorted(p["priority"] for p in peers.values()) == [10, 100]
        apiserver.apply([manifest("Workspace", "shared", {"plan": "free"}, namespace=NS)])
        wait_for(
            lambda: apiserver.get_json("workspace", "-n", NS, "shared").get("status"),
            what="the leader to serve",
            timeout=120,
        )
        assert _writes(apiserver, OPERATOR_SA)
        assert _writes(apiserver, TWIN) == []  # paused: not one write
        # The leader goes; the other resumes and serves.
        assert high.stop() == 0
        wait_for(lambda: len(_peers(apiserver)) == 1, what="one peer left", timeout=120)
        apiserver.apply([manifest("Workspace", "after", {"plan": "free"}, namespace=NS)])
        wait_for(
            lambda: apiserver.get_json("workspace", "-n", NS, "after").get("status"),
            what="the second replica to serve",
            timeout=120,
        )
        assert ("patch", "workspaces/status", "after") in _writes(apiserver, TWIN)
        # The peering permissions the journey keeps without using (KEPT in test_journey.py)
        # are used here; serving a named namespace, kopf never lists namespaces (no grant).
        used = {
            (e.get("objectRef", {}).get("resource"), e["verb"])
            for account in (OPERATOR_SA, TWIN)
            for e in apiserver.audit(f"system:serviceaccount:{OPERATOR_NS}:{account}")
        }
        wanted = {("kopfpeerings", v) for v in ("get", "list", "watch", "patch")}
        assert wanted <= used, sorted(wanted - used)
        assert not {v for r, v in used if r == "namespaces"}
    finally:
        for r in replicas:
            r.stop()
