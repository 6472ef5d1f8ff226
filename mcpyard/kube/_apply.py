"""Apply owned objects by patch: read, compare, then create, merge-patch, or leave alone.

Server-side apply would be the natural verb, but read-compare-patch does the same job for
objects mcpyard alone owns, works on every API server (and on the test emulator), and writes
nothing when nothing changed, so a resync of thousands of objects costs reads, not writes.
The emulator the operator suite runs on (kmock) has no server-side apply: it merges any PATCH
body as JSON. docs/kubernetes.md ("How the operator writes what it owns") has the reasons.
"""

from __future__ import annotations

import copy
import enum
from collections.abc import Mapping
from typing import Any

from mcpyard.kube._client import Client


class Outcome(enum.Enum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


def owner_reference(owner: Mapping[str, Any]) -> dict[str, Any]:
    """A controller owner reference to ``owner`` (a body with apiVersion, kind, metadata)."""
    meta = owner["metadata"]
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def covers(current: Any, desired: Any) -> bool:
    """True when ``current`` already holds everything ``desired`` says.

    Maps may carry more keys (defaults the API server filled in, other controllers' labels);
    lists must have the same length and each item must cover its counterpart.
    """
    if isinstance(desired, Mapping):
        return isinstance(current, Mapping) and all(
            k in current and covers(current[k], v) for k, v in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(current, list)
            and len(current) == len(desired)
            and all(covers(c, d) for c, d in zip(current, desired, strict=True))
        )
    return bool(current == desired)


def _patch_for(current: Mapping[str, Any], desired: Mapping[str, Any]) -> dict[str, Any]:
    patch = copy.deepcopy(dict(desired))
    patch.pop("apiVersion", None)
    patch.pop("kind", None)
    if desired.get("kind") == "Secret":
        # A merge patch merges maps: drop the keys of `data` that are no longer wanted.
        stale = set(current.get("data") or {}) - set(desired.get("data") or {})
        if stale:
            patch.setdefault("data", {}).update(dict.fromkeys(sorted(stale)))
    return patch


def _secret_data_matches(current: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    if desired.get("kind") != "Secret":
        return True
    return set(current.get("data") or {}) == set(desired.get("data") or {})


async def apply(
    client: Client,
    desired: Mapping[str, Any],
    current: Mapping[str, Any] | None = None,
    *,
    known: bool = False,
) -> tuple[Outcome, dict[str, Any]]:
    """Make the cluster hold ``desired``; ``current`` when the caller has just read it
    (``known=True`` also when it knows the object is absent)."""
    meta = desired["metadata"]
    api_version, kind = desired["apiVersion"], desired["kind"]
    if not known:
        current = await client.get(api_version, kind, meta["namespace"], meta["name"])
    if current is None:
        return Outcome.CREATED, await client.create(desired)
    if covers(current, desired) and _secret_data_matches(current, desired):
        return Outcome.UNCHANGED, dict(current)
    patched = await client.patch(
        api_version, kind, meta["namespace"], meta["name"], _patch_for(current, desired)
    )
    if patched is None:  # deleted between the read and the patch
        return Outcome.CREATED, await client.create(desired)
    return Outcome.UPDATED, patched
