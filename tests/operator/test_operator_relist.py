"""The operator's own informer (``mcpyard/operator/_informer.py``) when its watch is gone long
enough for the API server to have compacted its resourceVersion: the next watch answers 410
Gone, the informer lists again, and what changed meanwhile is applied, nothing lost: an edit
and a creation seen in the new list, a deletion seen as what the new list no longer holds.

The emulator ends the Member watch (as a dropped connection does) and holds the watcher's
next request while the test edits, deletes and creates Members; then answers it with 410.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tests.operator.conftest import API, Cluster, wait_for

NS = "team-eng"


def _member(name: str) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "Member",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "workspace": "w",
            "user": f"{name}@example.com",
            "tokenHash": "sha256:" + name.encode().hex().ljust(64, "0"),
        },
    }


def _members(cluster: Cluster) -> dict[str, bool] | None:
    """Member name -> disabled, as the config Secret of workspace w says."""
    found = cluster.config("w")
    if found is None:
        return None
    return {m["name"]: bool(m["disabled"]) for m in found[0]["members"]}


def _member_requests(cluster: Cluster, *, watch: bool) -> int:
    return sum(
        1
        for r in cluster.emulator.requests()
        if str(r.url.path).endswith("/members") and (r.params.get("watch") == "true") == watch
        and str(r.method.value) == "GET"
    )


def test_a_watch_gone_410_lists_again_and_applies_what_changed_meanwhile(
    cluster: Cluster,
) -> None:
    cluster.seed_age_key()
    workspace = {"apiVersion": API, "kind": "Workspace", "metadata": {"name": "w", "namespace": NS}}
    cluster.create({**workspace, "spec": {}}, _member("ann"), _member("bob"))
    cluster.start()
    wait_for(
        lambda: _members(cluster) == {"ann": False, "bob": False}, what="ann and bob served"
    )
    emulator = cluster.emulator.emulator
    assert emulator is not None
    back = cluster.emulator.call(lambda: emulator.gone.setdefault("members", asyncio.Event()))
    lists = _member_requests(cluster, watch=False)

    cluster.emulator.cut("members")  # the watch is gone; the next one waits for `back`
    wait_for(
        lambda: cluster.emulator.call(lambda: "members" in emulator.holding),
        what="the watcher to ask again",
    )
    cluster.patch("Member", NS, "ann", {"spec": {"disabled": True}})
    cluster.delete("Member", NS, "bob")
    cluster.create(_member("cid"))
    # Nothing seen yet: no watch, and the next list has not happened.
    assert _members(cluster) == {"ann": False, "bob": False}
    assert _member_requests(cluster, watch=False) == lists

    cluster.emulator.call(back.set)  # ...and it answers 410 Gone
    wait_for(
        lambda: _members(cluster) == {"ann": True, "cid": False},
        what="ann disabled, bob gone, cid served",
    )
    assert _member_requests(cluster, watch=False) == lists + 1  # one list again, after the 410
    assert any("410 Gone" in line for line in cluster.records.lines)
    # The informer watches again from the new list (and the operator keeps serving changes).
    cluster.patch("Member", NS, "cid", {"spec": {"disabled": True}})
    wait_for(
        lambda: _members(cluster) == {"ann": True, "cid": True}, what="cid disabled by a watch"
    )
    assert cluster.server_errors() == []
