"""mcpyard.kube.apply on a real API server: server-side apply under the field manager
``mcpyard`` with ``force``. An unchanged object costs a read and no write; a field mcpyard
applies and someone changed is taken back; a field someone else set is kept; a field mcpyard
applied before and no longer applies is removed; a changed key of a list item (which apply
keeps beside mcpyard's item, so the API server refuses the result) is repaired by a merge
patch."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest

from mcpyard import kube
from tests.cluster.apiserver import ApiServer

NS = "apply-test"


@pytest.fixture(scope="module")
def client(apiserver: ApiServer) -> Iterator[kube.Client]:
    apiserver.kubectl("create", "namespace", NS, check=False)
    c = apiserver.client()
    try:
        yield c
    finally:
        c.close()


def _service(**labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "svc", "namespace": NS, "labels": {"app": "mcp", **labels}},
        "spec": {
            "selector": {"app": "mcp"},
            "ports": [{"name": "mcp", "port": 8080, "targetPort": "mcp", "protocol": "TCP"}],
        },
    }


def _managers(obj: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (m["manager"], m["operation"]): m.get("fieldsV1") or {}
        for m in obj["metadata"]["managedFields"]
    }


def test_apply_keeps_others_fields_and_repairs_its_own(
    apiserver: ApiServer, client: kube.Client
) -> None:
    def apply(desired: dict[str, Any]) -> tuple[kube.Outcome, dict[str, Any]]:
        return asyncio.run(kube.apply(client, desired))

    desired = _service(tier="gateway")
    outcome, created = apply(desired)
    assert outcome is kube.Outcome.CREATED
    assert list(_managers(created)) == [("mcpyard", "Apply")]
    version = created["metadata"]["resourceVersion"]
    assert apply(desired)[0] is kube.Outcome.UNCHANGED  # a read, no write

    # A person labels it and edits a field mcpyard does not set: theirs, kept.
    apiserver.kubectl("label", "service", "-n", NS, "svc", "team=platform")
    apiserver.kubectl(
        "patch",
        "service",
        "-n",
        NS,
        "svc",
        "-p",
        json.dumps({"spec": {"sessionAffinity": "ClientIP"}}),
    )
    # ... and changes a field mcpyard applies: taken back (force), in place.
    apiserver.kubectl(
        "patch",
        "service",
        "-n",
        NS,
        "svc",
        "-p",
        json.dumps({"spec": {"selector": {"app": "evil"}}}),
    )
    outcome, repaired = apply(desired)
    assert outcome is kube.Outcome.UPDATED
    assert repaired["spec"]["selector"] == {"app": "mcp"}
    assert repaired["spec"]["sessionAffinity"] == "ClientIP"
    assert repaired["metadata"]["labels"] == {"app": "mcp", "tier": "gateway", "team": "platform"}
    assert repaired["metadata"]["uid"] == created["metadata"]["uid"]
    owners = _managers(repaired)
    assert "f:selector" in owners["mcpyard", "Apply"]["f:spec"]
    assert "f:selector" not in owners["kubectl-patch", "Update"].get("f:spec", {})
    assert repaired["metadata"]["resourceVersion"] != version

    # A label mcpyard applied and applies no more goes; the person's stays.
    outcome, dropped = apply(_service())
    assert outcome is kube.Outcome.UPDATED
    assert dropped["metadata"]["labels"] == {"app": "mcp", "team": "platform"}

    # A port's key changed by hand: apply would keep both ports (refused: same name), so the
    # lists are replaced by a merge patch; the person's fields elsewhere still stay.
    apiserver.kubectl(
        "patch",
        "service",
        "-n",
        NS,
        "svc",
        "--type=json",
        "-p",
        json.dumps([{"op": "replace", "path": "/spec/ports/0/port", "value": 9090}]),
    )
    outcome, ported = apply(_service())
    assert outcome is kube.Outcome.UPDATED
    assert [(p["name"], p["port"]) for p in ported["spec"]["ports"]] == [("mcp", 8080)]
    assert ported["metadata"]["labels"]["team"] == "platform"
    outcome, again = apply(_service())
    assert outcome is kube.Outcome.UNCHANGED
    # The repair's fields are folded into mcpyard's apply: one entry of its own again.
    assert [k for k in _managers(again) if k[0] == "mcpyard"] == [("mcpyard", "Apply")]


def test_fields_written_before_apply_are_adopted(client: kube.Client) -> None:
    """An object a version before server-side apply wrote (a create or merge patch: an
    ``Update`` entry of mcpyard's): its fields become the apply's, so one no longer wanted
    goes."""
    old = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "legacy", "namespace": NS, "labels": {"app": "mcp", "old": "x"}},
        "data": {"a": "1"},
    }
    client.create_sync(old)
    new = copy.deepcopy(old)
    del new["metadata"]["labels"]["old"]
    outcome, stored = asyncio.run(kube.apply(client, new))
    assert outcome is kube.Outcome.UPDATED
    assert stored["metadata"]["labels"] == {"app": "mcp"}
    assert list(_managers(stored)) == [("mcpyard", "Apply")]
    assert asyncio.run(kube.apply(client, new))[0] is kube.Outcome.UNCHANGED


def test_a_secret_key_no_longer_applied_is_removed(client: kube.Client) -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": "env", "namespace": NS},
        "data": {"A": "YQ==", "B": "Yg=="},
    }
    asyncio.run(kube.apply(client, secret))
    fewer = copy.deepcopy(secret)
    del fewer["data"]["B"]
    outcome, stored = asyncio.run(kube.apply(client, fewer))
    assert outcome is kube.Outcome.UPDATED
    assert stored["data"] == {"A": "YQ=="}
