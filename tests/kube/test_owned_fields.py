"""kube.apply's write decision: which of the fields mcpyard applied (``managedFields``, FieldsV1)
the desired object no longer holds. The forms are those the API server writes; a real server
shows them in tests/cluster/test_apply.py."""

from __future__ import annotations

from typing import Any

import pytest

from mcpyard import kube
from mcpyard.kube import _apply

DESIRED: dict[str, Any] = {
    "metadata": {"labels": {"app": "mcp"}},
    "spec": {
        "ports": [{"name": "mcp", "port": 8080, "targetPort": "mcp"}],
        "finalizers": ["a"],
        "args": ["x", "y"],
    },
}


@pytest.mark.parametrize(
    ("fields", "stale"),
    [
        pytest.param({"f:metadata": {"f:labels": {"f:app": {}}}}, False, id="label-kept"),
        pytest.param({"f:metadata": {"f:labels": {"f:tier": {}}}}, True, id="label-dropped"),
        pytest.param(
            {"f:spec": {"f:ports": {'k:{"port":8080,"protocol":"TCP"}': {".": {}, "f:name": {}}}}},
            False,
            id="list-item-by-key-defaulted-protocol",
        ),
        pytest.param(
            {"f:spec": {"f:ports": {'k:{"port":9090,"protocol":"TCP"}': {".": {}}}}},
            True,
            id="list-item-gone",
        ),
        pytest.param(
            {"f:spec": {"f:ports": {'k:{"port":8080}': {"f:nodePort": {}}}}},
            True,
            id="field-of-list-item-dropped",
        ),
        pytest.param({"f:spec": {"f:finalizers": {'v:"a"': {}}}}, False, id="set-value-kept"),
        pytest.param({"f:spec": {"f:finalizers": {'v:"b"': {}}}}, True, id="set-value-gone"),
        pytest.param({"f:spec": {"f:args": {"i:1": {}}}}, False, id="index-kept"),
        pytest.param({"f:spec": {"f:args": {"i:2": {}}}}, True, id="index-gone"),
        pytest.param({"f:data": {"f:B": {}}}, True, id="secret-key-dropped"),
    ],
)
def test_stale(fields: dict[str, Any], stale: bool) -> None:
    assert _apply.stale(fields, DESIRED) is stale


def test_owned_merges_only_mcpyards_apply_entries() -> None:
    current = {
        "metadata": {
            "managedFields": [
                {"manager": "mcpyard", "operation": "Apply", "fieldsV1": {"f:a": {"f:b": {}}}},
                {"manager": "mcpyard", "operation": "Apply", "fieldsV1": {"f:a": {"f:c": {}}}},
                {"manager": "mcpyard", "operation": "Update", "fieldsV1": {"f:d": {}}},
                {"manager": "kubectl-edit", "operation": "Update", "fieldsV1": {"f:e": {}}},
            ]
        }
    }
    assert _apply.owned(current) == {"f:a": {"f:b": {}, "f:c": {}}}
    assert kube.covers({"a": 1, "extra": 2}, {"a": 1})
