"""values.schema.json refuses wrong values through Helm's own schema validation, with a message
that names the value; and every value is documented in the chart's README."""

from __future__ import annotations

import json
import re
from typing import Any

import helm_python as helm
import pytest
import yaml
from helmrender import CHART, Render

VALUES = yaml.safe_load((CHART / "values.yaml").read_text())
SCHEMA = json.loads((CHART / "values.schema.json").read_text())


@pytest.mark.parametrize(
    ("values", "path", "says"),
    [
        pytest.param(
            {"gateway": {"replicas": "three"}}, "/gateway/replicas", "want integer", id="wrong-type"
        ),
        pytest.param(
            {"crds": {"install": "yes"}}, "/crds/install", "want boolean", id="wrong-type-bool"
        ),
        pytest.param({"replicaCount": 2}, "", "'replicaCount' not allowed", id="unknown-top-key"),
        pytest.param(
            {"gateway": {"replica": 2}},
            "/gateway",
            "'replica' not allowed",
            id="unknown-nested-key",
        ),
        pytest.param(
            {"gateway": {"service": {"sessionAffinity": "Cookie"}}},
            "/gateway/service/sessionAffinity",
            "must be one of",
            id="bad-enum",
        ),
        pytest.param(
            {"gateway": {"service": {"type": "ExternalName"}}},
            "/gateway/service/type",
            "must be one of",
            id="bad-service-type",
        ),
        pytest.param(
            {"image": {"pullPolicy": "Sometimes"}},
            "/image/pullPolicy",
            "must be one of",
            id="bad-pull-policy",
        ),
        pytest.param(
            {"gateway": {"logLevel": "verbose"}},
            "/gateway/logLevel",
            "must be one of",
            id="bad-log-level",
        ),
        pytest.param(
            {"operator": {"replicas": 2}},
            "/operator/replicas",
            "maximum: got 2, want 1",
            id="two-operators-without-peering",
        ),
        pytest.param(
            {"operator": {"namespaces": ["Team_Eng"]}},
            "/operator/namespaces/0",
            "does not match pattern",
            id="bad-namespace",
        ),
        pytest.param(
            {"gateway": {"redis": {"url": "http://redis:6379"}}},
            "/gateway/redis/url",
            "does not match pattern",
            id="bad-redis-url",
        ),
        pytest.param(
            {"image": {"digest": "latest"}},
            "/image/digest",
            "does not match pattern",
            id="bad-digest",
        ),
        pytest.param(
            {"age": {"existingSecret": ""}}, "/age/existingSecret", "", id="empty-age-secret"
        ),
        pytest.param({"gateway": {"port": 80}}, "/gateway/port", "minimum", id="privileged-port"),
    ],
)
def test_bad_values_are_refused_by_helm(
    chart_render: Render, values: dict[str, Any], path: str, says: str
) -> None:
    with pytest.raises(helm.HelmValuesError) as caught:
        chart_render(values)
    message = str(caught.value)
    assert f"at '{path}'" in message, message
    assert says in message, message


def test_the_defaults_pass_the_schema() -> None:
    with helm.Chart.load(CHART) as chart:
        chart.validate_schema(None)
        assert chart.schema == SCHEMA


def _leaf_paths(value: Any, prefix: str = "") -> list[str]:
    """Dotted paths of every documented key: objects with free-form content (labels,
    resources, probes) are one entry, not one per default key inside them."""
    if isinstance(value, dict) and value and not prefix.endswith(FREE_FORM):
        out = []
        for k, v in value.items():
            out += _leaf_paths(v, f"{prefix}.{k}" if prefix else k)
        return out
    return [prefix]


FREE_FORM = (
    "resources",
    "livenessProbe",
    "readinessProbe",
    "podSecurityContext",
    "containerSecurityContext",
    "labels",
    "annotations",
)


def test_every_value_is_documented_in_the_readme() -> None:
    readme = (CHART / "README.md").read_text()
    documented = set(re.findall(r"^\| `([^`]+)` \|", readme, flags=re.M))
    keys = _leaf_paths(VALUES)
    missing = [k for k in keys if k not in documented]
    assert not missing, f"values.yaml keys missing from charts/mcpyard/README.md: {missing}"
    stale = sorted(d for d in documented if d not in keys)
    assert not stale, f"README documents values that values.yaml does not have: {stale}"


def _schema_paths(schema: dict[str, Any], prefix: str = "") -> list[str]:
    """Every dotted path the schema describes, inner objects included."""
    out = [prefix]
    for k, v in schema.get("properties", {}).items():
        out += _schema_paths(v, f"{prefix}.{k}" if prefix else k)
    return out


def test_every_value_is_in_the_schema() -> None:
    schema_paths = set(_schema_paths(SCHEMA))
    missing = [k for k in _leaf_paths(VALUES) if k not in schema_paths]
    assert not missing, f"values.yaml keys the schema does not describe: {missing}"


def test_objects_refuse_unknown_keys() -> None:
    # additionalProperties: false wherever the keys are the chart's own.
    def walk(schema: dict[str, Any], path: str) -> list[str]:
        out = []
        if "properties" in schema and schema.get("additionalProperties") is not False:
            out.append(path or "<top>")
        for k, v in schema.get("properties", {}).items():
            out += walk(v, f"{path}.{k}" if path else k)
        items = schema.get("items")
        if isinstance(items, dict):
            out += walk(items, f"{path}[]")
        return out

    assert walk(SCHEMA, "") == []
