"""The rendered chart, every option set, sent to the real API server as a server-side dry run:
the server validates each object against its own schemas (defaults, enums, required fields,
RBAC escalation checks). The server is 1.20; the kinds it lacks are named below and checked
to be refused for that reason alone ("no matches for kind")."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.chart.helmrender import VALUE_SETS, render
from tests.cluster.apiserver import ApiServer
from tests.cluster.conftest import OPERATOR_NS, strip_cel

# Kinds the 1.20 server does not serve: policy/v1 PodDisruptionBudget (1.21+), autoscaling/v2
# HorizontalPodAutoscaler (1.23+), kopf's peering kinds and the Prometheus operator's
# ServiceMonitor (CRDs of other projects, not installed on this server).
NOT_ON_1_20 = {
    ("policy/v1", "PodDisruptionBudget"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("kopf.dev/v1", "ClusterKopfPeering"),
    ("kopf.dev/v1", "KopfPeering"),
}


def _dry_run(apiserver: ApiServer, docs: list[dict[str, Any]]) -> str:
    done = apiserver.kubectl(
        "apply",
        "--server-side",
        "--dry-run=server",
        "--field-manager=helm",
        "-f",
        "-",
        stdin=yaml.safe_dump_all(docs),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_the_rendered_chart_is_admitted(
    apiserver: ApiServer, crds: list[dict[str, Any]], name: str
) -> None:
    rendered = render(VALUE_SETS[name], namespace=OPERATOR_NS)
    for ns in ["monitoring", "team-eng", "team-data", OPERATOR_NS]:
        apiserver.kubectl("create", "namespace", ns, check=False)
    docs, lacking = [], []
    for doc in rendered.docs:
        if doc["kind"] == "CustomResourceDefinition":
            doc = strip_cel(doc)[0]  # the 1.25+ field, checked by test_crds_and_examples
        if (doc["apiVersion"], doc["kind"]) in NOT_ON_1_20:
            lacking.append(doc)
        else:
            docs.append(doc)
    out = _dry_run(apiserver, docs)
    for doc in docs:
        assert f"/{doc['metadata']['name']} serverside-applied (server dry run)" in out, doc[
            "metadata"
        ]["name"]
    for doc in lacking:
        done = apiserver.kubectl(
            "apply",
            "--server-side",
            "--dry-run=server",
            "-f",
            "-",
            stdin=yaml.safe_dump(doc),
            check=False,
        )
        assert done.returncode != 0
        assert "no matches for kind" in done.stderr, done.stderr
