"""Rendering the Helm chart with Helm's own engine, offline (helpers of tests/chart).

``helm-python-sdk`` (import ``helm_python``) binds Helm's Go library, so ``render`` is what
``helm template`` does (``lookup`` sees no cluster) and ``lint`` is ``helm lint``; no ``helm``
binary is needed. Its wheel is large (about 75 MB): CI installs it with the test extras.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "mcpyard"
RELEASE = "mcpyard"
NAMESPACE = "mcpyard-system"


@dataclass(frozen=True)
class Rendered:
    """One render of the chart: its manifests, parsed, and its NOTES."""

    files: Mapping[str, str]
    """Template path (``mcpyard/templates/...``) -> rendered text."""
    docs: tuple[dict[str, Any], ...]
    """Every manifest, in template order."""

    @property
    def notes(self) -> str:
        return self.files.get(f"{CHART.name}/templates/NOTES.txt", "")

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if d["kind"] == kind]

    def one(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        found = [
            d
            for d in self.of_kind(kind)
            if d["metadata"]["name"] == name
            and (namespace is None or d["metadata"].get("namespace") == namespace)
        ]
        assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
        return found[0]

    def pod_specs(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """(``Kind/name``, pod spec) of every workload."""
        for d in self.docs:
            if d["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
                yield f"{d['kind']}/{d['metadata']['name']}", d["spec"]["template"]["spec"]


def render(
    values: dict[str, Any] | None = None, *, namespace: str = NAMESPACE, name: str = RELEASE
) -> Rendered:
    """Render the chart as ``helm template`` would (schema validation included)."""
    import helm_python

    with helm_python.Chart.load(CHART) as chart:
        files = chart.render(values=values, name=name, namespace=namespace)
    docs: list[dict[str, Any]] = []
    for path in sorted(files, key=_template_order):
        if not path.endswith((".yaml", ".yml")):
            continue
        docs.extend(d for d in yaml.safe_load_all(files[path]) if d)
    return Rendered(files=files, docs=tuple(docs))


def _template_order(path: str) -> tuple[int, str]:
    return (0 if path.endswith("/crds.yaml") else 1, path)


Render = Callable[..., Rendered]


# -- RBAC: charts/mcpyard/files/rbac.yaml is mcpyard.kube's rules, as YAML -------------------

RBAC_FILE = CHART / "files" / "rbac.yaml"
RBAC_HEADER = """\
# Generated from mcpyard.kube.RBAC_RULES and GATEWAY_RBAC_RULES: do not edit by hand.
# Regenerate: python tests/chart/helmrender.py write-rbac
# (a test fails when this file and the package differ).
#
# Each rule is a PolicyRule plus `scope`: `cluster` (the operator's ClusterRole when it serves
# every namespace; else cluster-scoped resources in a ClusterRole and the rest in a Role in each
# served namespace) or `operator-namespace` (a Role in the release namespace).
"""


def rbac_document(operator: Any, gateway: Any) -> dict[str, list[dict[str, Any]]]:
    def plain(rules: Any) -> list[dict[str, Any]]:
        return [
            {k: list(v) if isinstance(v, list | tuple) else v for k, v in dict(r).items()}
            for r in rules
        ]

    return {"operator": plain(operator), "gateway": plain(gateway)}


def write_rbac_file() -> None:
    """Write files/rbac.yaml from the package's rules (how the file is made)."""
    from mcpyard import kube

    doc = rbac_document(kube.RBAC_RULES, kube.GATEWAY_RBAC_RULES)
    RBAC_FILE.write_text(
        RBAC_HEADER + yaml.safe_dump(doc, sort_keys=False, default_flow_style=None, width=100)
    )


# -- Value sets: every option of the chart, each rendered by the tests that take option_render

VALUE_SETS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "ingress": {
        "gateway": {
            "ingress": {
                "enabled": True,
                "className": "nginx",
                "annotations": {"nginx.ingress.kubernetes.io/upstream-hash-by": "$remote_addr"},
                "tls": [{"secretName": "mcp-tls", "hosts": ["mcp.example.com"]}],
            }
        }
    },
    "hpa": {
        "gateway": {
            "autoscaling": {"enabled": True, "targetMemoryUtilizationPercentage": 80},
            "redis": {"url": "redis://redis:6379/0"},
        }
    },
    "pdb": {
        "gateway": {
            "replicas": 2,
            "podDisruptionBudget": {"enabled": True},
            "redis": {"url": "redis://redis:6379/0"},
        }
    },
    "pdb-max-unavailable": {
        "gateway": {"podDisruptionBudget": {"enabled": True, "maxUnavailable": "50%"}}
    },
    "service-monitor": {
        "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}}}
    },
    "dashboard": {"metrics": {"dashboard": {"enabled": True, "namespace": "monitoring"}}},
    "network-policy": {
        "networkPolicy": {
            "enabled": True,
            "apiServer": {"cidrs": ["10.96.0.1/32"]},
            "gatewayFrom": [
                {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}
                    }
                }
            ],
        }
    },
    "served-namespaces": {
        "operator": {"namespaces": ["team-eng", "team-data"]},
        "networkPolicy": {"enabled": True},
    },
    "redis-url": {"gateway": {"replicas": 3, "redis": {"url": "redis://redis:6379/0"}}},
    "redis-secret": {
        "gateway": {
            "replicas": 3,
            "redis": {"existingSecret": "mcpyard-redis", "existingSecretKey": "url"},
        }
    },
    "replicas-without-redis": {"gateway": {"replicas": 3}},
    "peering": {"operator": {"replicas": 2, "peering": {"enabled": True}}},
    "peering-namespaced": {
        "operator": {
            "replicas": 2,
            "namespaces": ["team-eng"],
            "peering": {"enabled": True, "name": "mcpyard-ha"},
        }
    },
    "no-crds": {"crds": {"install": False}},
    "crds-not-kept": {"crds": {"keep": False}},
    "no-master-key": {"masterKey": {"create": False}},
    "gateway-only": {"operator": {"enabled": False}},
    "operator-only": {"gateway": {"enabled": False}},
    "existing-service-accounts": {
        "operator": {"serviceAccount": {"create": False, "name": "ops"}},
        "gateway": {"serviceAccount": {"create": False, "name": "gw"}},
    },
    "digest-and-pull-secrets": {
        "image": {"digest": "sha256:" + "a" * 64},
        "imagePullSecrets": [{"name": "regcred"}],
    },
    "scheduling": {
        "gateway": {
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "tolerations": [{"key": "mcp", "operator": "Exists", "effect": "NoSchedule"}],
            "topologySpreadConstraints": [
                {
                    "maxSkew": 1,
                    "topologyKey": "kubernetes.io/hostname",
                    "whenUnsatisfiable": "ScheduleAnyway",
                    "labelSelector": {"matchLabels": {"app.kubernetes.io/component": "gateway"}},
                }
            ],
            "extraEnv": [{"name": "EXTRA", "value": "1"}],
            "allowedOrigins": ["https://app.example.com"],
            "podAnnotations": {"a": "b"},
            "podLabels": {"team": "platform"},
            "priorityClassName": "high",
        },
        "operator": {
            "livenessProbe": {"tcpSocket": {"port": 8080}},
            "verbose": True,
            "extraArgs": ["--resync-interval", "120"],
            "gatewayUrl": "https://mcp.example.com/",
        },
        "commonLabels": {"cost-center": "42"},
    },
}


if __name__ == "__main__":
    import sys

    if sys.argv[1:] != ["write-rbac"]:
        sys.exit("usage: python tests/chart/helmrender.py write-rbac")
    sys.path.insert(0, str(ROOT))
    write_rbac_file()
    print(f"wrote {RBAC_FILE.relative_to(ROOT)}")
