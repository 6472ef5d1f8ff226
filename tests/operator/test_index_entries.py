"""What the operator's indexes keep of a resource: the body without ``managedFields`` and
kubectl's last-applied copy (which can dwarf the object), the rest intact, the model parsed."""

from __future__ import annotations

import json

from mcpyard.api import v1alpha1
from mcpyard.operator._runtime import LAST_APPLIED, entry, stored


def test_an_entry_drops_what_no_reconcile_reads() -> None:
    body = {
        "apiVersion": "mcpyard.io/v1alpha1",
        "kind": "Member",
        "metadata": {
            "name": "alice",
            "namespace": "team-eng",
            "uid": "u-1",
            "annotations": {LAST_APPLIED: json.dumps({"big": "x" * 4096}), "keep": "me"},
            "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}],
        },
        "spec": {"workspace": "eng", "user": "alice@example.com", "role": "admin"},
    }
    kept = entry(body)
    assert kept == stored(body).load()  # what the indexes keep, as a reconcile reads it
    assert "managedFields" not in kept.body["metadata"]
    assert kept.body["metadata"]["annotations"] == {"keep": "me"}
    assert kept.body["metadata"]["uid"] == "u-1" and kept.body["spec"] == body["spec"]
    assert isinstance(kept.resource, v1alpha1.Member)
    # The watch event's body is left as it was (kopf owns it).
    assert "managedFields" in body["metadata"] and LAST_APPLIED in body["metadata"]["annotations"]
