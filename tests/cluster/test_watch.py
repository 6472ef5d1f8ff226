"""mcpyard.kube's list and watch on a real API server, as the gateway's cluster source uses
them: label selectors applied by the server, a watch resumed from a list's resourceVersion
replays nothing older, and a resourceVersion the watch cache no longer holds is 410 Gone
(etcd compacted under a ConfigMap watch: tools/kube-apiserver/start.sh)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from mcpyard import kube
from tests.cluster.apiserver import ApiServer

NS = "watch-test"
LABELS = {"mcpyard.io/config": "true"}


def _secret(name: str, labels: dict[str, str] | None = None, value: str = "eA==") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": NS, "labels": labels or {}},
        "data": {"x": value},
    }


@pytest.fixture(scope="module")
def client(apiserver: ApiServer) -> Iterator[kube.Client]:
    apiserver.kubectl("create", "namespace", NS, check=False)
    c = apiserver.client()
    try:
        yield c
    finally:
        c.close()


def _events(watch: kube.Watch, count: int) -> list[tuple[str, str]]:
    """The first ``count`` non-bookmark events, as (type, name); stops the watch after."""
    out: list[tuple[str, str]] = []
    timer = threading.Timer(60, watch.stop)  # a deadline, not a pause: fails the count below
    timer.start()
    try:
        for kind, obj in watch:
            if kind == "BOOKMARK":
                continue
            out.append((kind, obj["metadata"]["name"]))
            if len(out) == count:
                break
    finally:
        timer.cancel()
        watch.stop()
    return out


def test_selector_list_and_resumed_watch(client: kube.Client) -> None:
    client.create_sync(_secret("cfg-a", LABELS))
    client.create_sync(_secret("other-a"))
    items, version = client.list_versioned_sync("v1", "Secret", NS, LABELS)
    assert [i["metadata"]["name"] for i in items] == ["cfg-a"]
    assert version
    # Changes after the list: only the selected ones come, none from before it.
    client.create_sync(_secret("other-b"))
    client.create_sync(_secret("cfg-b", LABELS))
    client.patch_sync("v1", "Secret", NS, "cfg-a", {"data": {"x": "eQ=="}})
    # A label removed: the server ends the object's membership with a DELETED event.
    client.patch_sync(
        "v1", "Secret", NS, "cfg-b", {"metadata": {"labels": {"mcpyard.io/config": None}}}
    )
    watch = client.watch(
        "v1", "Secret", NS, labels=LABELS, resource_version=version, timeout_seconds=60
    )
    assert _events(watch, 3) == [("ADDED", "cfg-b"), ("MODIFIED", "cfg-a"), ("DELETED", "cfg-b")]


def test_an_expired_resource_version_is_410_gone(client: kube.Client) -> None:
    # ConfigMaps are watched from etcd, compacted every 10 s (tools/kube-apiserver/start.sh).
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "churn", "namespace": NS, "labels": LABELS},
        "data": {"x": "0"},
    }
    client.create_sync(cm)
    _, version = client.list_versioned_sync("v1", "ConfigMap", NS, LABELS)
    deadline = time.monotonic() + 120
    while True:  # until compaction has passed the old version: 410, never stale events
        client.patch_sync("v1", "ConfigMap", NS, "churn", {"data": {"x": str(time.time())}})
        watch = client.watch(
            "v1", "ConfigMap", NS, labels=LABELS, resource_version=version, timeout_seconds=30
        )
        try:
            events = _events(watch, 1)
        except kube.ApiError as exc:
            assert exc.status == 410, exc
            break
        assert events and events[0][0] == "MODIFIED", events
        assert time.monotonic() < deadline, "etcd was never compacted"
        time.sleep(1)
    # The cure: list again and watch from there.
    _, fresh = client.list_versioned_sync("v1", "ConfigMap", NS, LABELS)
    client.patch_sync("v1", "ConfigMap", NS, "churn", {"data": {"x": "final"}})
    again = client.watch(
        "v1", "ConfigMap", NS, labels=LABELS, resource_version=fresh, timeout_seconds=30
    )
    assert _events(again, 1) == [("MODIFIED", "churn")]
