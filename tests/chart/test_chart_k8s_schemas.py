"""Every manifest the chart renders is valid against the Kubernetes API schemas (strict mode:
an unknown field fails), for the oldest Kubernetes the chart supports and a recent one.

ServiceMonitor (Prometheus Operator) and KopfPeering/ClusterKopfPeering (kopf) are custom
resources whose schemas are not part of Kubernetes: each is checked against a schema of the
fields the chart sets, written from its monitoring.coreos.com/v1 or kopf.dev/v1 API, with
unknown fields refused.
"""

from __future__ import annotations

from typing import Any

import jsonschema
import kubernetes_validate
import pytest
from helmrender import Rendered

# Chart.yaml: kubeVersion >=1.25 (CEL validation rules in the CRDs); and a recent release.
KUBERNETES_VERSIONS = ["1.25", "1.33"]

_LABELS = {"type": "object", "additionalProperties": {"type": "string"}}
SERVICE_MONITOR = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": {
            "type": "object",
            "required": ["name", "namespace"],
            "properties": {
                "name": {"type": "string"},
                "namespace": {"type": "string"},
                "labels": _LABELS,
            },
        },
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["selector", "endpoints"],
            "properties": {
                "selector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"matchLabels": _LABELS},
                },
                "namespaceSelector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "matchNames": {"type": "array", "items": {"type": "string"}},
                        "any": {"type": "boolean"},
                    },
                },
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["port"],
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string", "pattern": "^/"},
                            "interval": {"type": "string", "pattern": "^(0|([0-9]+(ms|s|m|h))+)$"},
                            "scrapeTimeout": {
                                "type": "string",
                                "pattern": "^(0|([0-9]+(ms|s|m|h))+)$",
                            },
                        },
                    },
                },
            },
        },
    },
}


def _peering(kind: str, namespaced: bool) -> dict[str, Any]:
    """kopf's peering objects: a name (and a namespace), nothing else; kopf writes status."""
    meta_required = ["name", "namespace"] if namespaced else ["name"]
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["apiVersion", "kind", "metadata"],
        "properties": {
            "apiVersion": {"const": "kopf.dev/v1"},
            "kind": {"const": kind},
            "metadata": {
                "type": "object",
                "required": meta_required,
                "properties": {
                    "name": {"type": "string"},
                    "namespace": {"type": "string"},
                    "labels": _LABELS,
                },
                **({} if namespaced else {"not": {"required": ["namespace"]}}),
            },
        },
    }


CUSTOM = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): SERVICE_MONITOR,
    ("kopf.dev/v1", "ClusterKopfPeering"): _peering("ClusterKopfPeering", namespaced=False),
    ("kopf.dev/v1", "KopfPeering"): _peering("KopfPeering", namespaced=True),
}


def _validate(doc: dict[str, Any], version: str) -> None:
    custom = CUSTOM.get((doc["apiVersion"], doc["kind"]))
    if custom is not None:
        jsonschema.validate(doc, custom)
        return
    kubernetes_validate.validate(doc, version, strict=True)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_rendered_manifests_are_valid(option_render: tuple[str, Rendered], version: str) -> None:
    name, r = option_render
    failures = []
    for doc in r.docs:
        try:
            _validate(doc, version)
        except kubernetes_validate.ValidationError as exc:
            failures.append(
                f"{doc['kind']}/{doc['metadata']['name']}: {exc.message} "
                f"at {'/'.join(map(str, exc.absolute_path))}"
            )
        except kubernetes_validate.SchemaNotFoundError as exc:
            failures.append(f"{doc['kind']}/{doc['metadata']['name']}: {exc.message}")
        except jsonschema.ValidationError as exc:
            failures.append(f"{doc['kind']}/{doc['metadata']['name']}: {exc.message}")
    assert not failures, f"{name} on Kubernetes {version}:\n" + "\n".join(failures)


def test_the_validator_is_strict() -> None:
    # Guard: a misspelt field must fail, or the test above proves nothing.
    bad = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "x"},
        "spec": {"sesionAffinity": "ClientIP"},
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, KUBERNETES_VERSIONS[-1], strict=True)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(
            {
                "apiVersion": "monitoring.coreos.com/v1",
                "kind": "ServiceMonitor",
                "metadata": {"name": "x", "namespace": "y"},
                "spec": {"selector": {}, "endpoints": [{"port": "http", "intervall": "1m"}]},
            },
            SERVICE_MONITOR,
        )
