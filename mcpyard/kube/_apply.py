"""Apply owned objects: read, compare, then server-side apply, or leave alone.

Writes are server-side apply (``application/apply-patch+yaml``) under the field manager
``mcpyard``, with ``force``: mcpyard owns, by design, every field it applies, so a field someone
else changed (``kubectl edit``, ``kubectl set image``) is taken back and put right at the next
resync, while a field mcpyard does not apply (a label a person added, a default the API server
filled in) stays theirs and is kept. A field mcpyard applied before and applies no more (a
Secret key, a label a newer version drops) is removed by the API server.

The read comes first so that an unchanged object costs a read, not a write: a resync of
thousands of objects writes nothing when nothing drifted. The object is written when it does
not hold what mcpyard wants (:func:`covers`) or when it holds a field that mcpyard owns
(``metadata.managedFields``) and no longer wants (:func:`stale`). An apply the API server
refuses as invalid because someone changed the key of a list item (a Service port: apply keeps
their item beside mcpyard's) is followed by a merge patch that replaces the lists whole. The
fields mcpyard wrote by merge patch (that repair, and every write of the versions before
server-side apply) are folded into its apply's fields at the next write (:func:`_adopted`).

kmock's emulator, which the operator suite runs on, has no server-side apply; the test helper
``tests/operator/_emulator.py`` approximates it (docs/kubernetes.md, "How the operator writes
what it owns"). ``tests/cluster`` shows the real behaviour on a real API server.
"""

from __future__ import annotations

import enum
import json
import logging
from collections.abc import Mapping

from mcpyard import jsontypes
from mcpyard.kube._client import FIELD_MANAGER, ApiError, Client, KubeObject

log = logging.getLogger("mcpyard.kube")


class Outcome(enum.Enum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


def owner_reference(owner: KubeObject) -> KubeObject:
    """A controller owner reference to ``owner`` (a body with apiVersion, kind, metadata)."""
    return {
        "apiVersion": jsontypes.text(owner, "apiVersion"),
        "kind": jsontypes.text(owner, "kind"),
        "name": jsontypes.text(owner, "metadata", "name"),
        "uid": jsontypes.text(owner, "metadata", "uid"),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def covers(current: object, desired: object) -> bool:
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


def owned(current: KubeObject, manager: str = FIELD_MANAGER) -> KubeObject:
    """The fields ``manager`` applied (its ``Apply`` entries of ``metadata.managedFields``,
    in the API server's ``FieldsV1`` form), merged."""
    out: KubeObject = {}
    for entry in jsontypes.objects(current, "metadata", "managedFields"):
        if entry.get("manager") == manager and entry.get("operation") == "Apply":
            _merge(out, jsontypes.obj(entry, "fieldsV1"))
    return out


def _merge(into: KubeObject, more: KubeObject) -> None:
    for k, v in more.items():
        if isinstance(v, dict):
            sub = into.get(k)
            if not isinstance(sub, dict):  # absent: ``into`` holds only what this put there
                sub = into[k] = {}
            _merge(sub, v)


def stale(fields: Mapping[str, object], desired: object) -> bool:
    """True when ``fields`` (a FieldsV1 set) names a field ``desired`` does not hold.

    FieldsV1 keys: ``f:NAME`` a map field, ``k:{JSON}`` a list item by its keys, ``v:JSON`` a
    set's value, ``i:N`` a list item by index, ``.`` the node itself. A key field the API
    server defaulted (a port's ``protocol``) is not in ``desired``: items match on the keys
    ``desired`` gives.
    """
    for key, sub in fields.items():
        kind, _, rest = key.partition(":")
        if kind == "f":
            if not isinstance(desired, Mapping) or rest not in desired:
                return True
            found = desired[rest]
        elif kind == "k":
            keys = json.loads(rest)
            items = [
                i
                for i in (desired if isinstance(desired, list) else [])
                if isinstance(i, Mapping) and all(i.get(k, v) == v for k, v in keys.items())
            ]
            if not items:
                return True
            found = items[0]
        elif kind == "v":
            if not isinstance(desired, list) or json.loads(rest) not in desired:
                return True
            continue
        elif kind == "i":
            if not isinstance(desired, list) or int(rest) >= len(desired):
                return True
            found = desired[int(rest)]
        else:  # ".": the node itself, present since its parent is
            continue
        if isinstance(sub, Mapping) and stale(sub, found):
            return True
    return False


def _adopted(current: KubeObject) -> KubeObject | None:
    """A merge patch that folds mcpyard's ``Update`` entries of ``managedFields`` (its merge
    patches: writes of versions before server-side apply, and the repair below) into its
    ``Apply`` entry, so that a field only they owned is removed once no longer applied;
    None when there is none. It carries the object's resourceVersion: a write in between
    fails it (409) instead of losing someone's entry."""
    meta = jsontypes.obj(current, "metadata")
    entries = jsontypes.objects(meta, "managedFields")

    def ours(e: KubeObject, operation: str) -> bool:
        return (
            e.get("manager") == FIELD_MANAGER
            and e.get("operation") == operation
            and not e.get("subresource")
            and e.get("fieldsType") == "FieldsV1"
        )

    legacy = [e for e in entries if ours(e, "Update")]
    if not legacy:
        return None
    applied = [e for e in entries if ours(e, "Apply")]
    fields: KubeObject = {}
    for e in applied + legacy:
        _merge(fields, jsontypes.obj(e, "fieldsV1"))
    first = (applied or legacy)[0]
    entry: KubeObject = {
        "manager": FIELD_MANAGER,
        "operation": "Apply",
        "apiVersion": first.get("apiVersion") or current.get("apiVersion"),
        **({"time": first["time"]} if first.get("time") else {}),
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
    }
    kept = [e for e in entries if not ours(e, "Update") and not ours(e, "Apply")]
    return {
        "metadata": {
            "resourceVersion": meta.get("resourceVersion"),
            "managedFields": [*kept, entry],
        }
    }


async def apply(
    client: Client,
    desired: KubeObject,
    current: KubeObject | None = None,
    *,
    known: bool = False,
) -> tuple[Outcome, KubeObject]:
    """Make the cluster hold ``desired``; ``current`` when the caller has just read it
    (``known=True`` also when it knows the object is absent)."""
    api_version, kind = jsontypes.text(desired, "apiVersion"), jsontypes.text(desired, "kind")
    namespace = jsontypes.text(desired, "metadata", "namespace")
    name = jsontypes.text(desired, "metadata", "name")
    if not known:
        current = await client.get(api_version, kind, namespace, name)
    if current is not None and (legacy := _adopted(current)) is not None:
        current = await client.patch(api_version, kind, namespace, name, legacy)
    if current is not None and covers(current, desired) and not stale(owned(current), desired):
        return Outcome.UNCHANGED, dict(current)
    try:
        created, applied = await client.apply(desired)
    except ApiError as exc:
        if exc.status != 422 or current is None:
            raise
        # Refused as invalid: someone changed the key of a list item (a Service's port), which
        # server-side apply keeps as their item beside ours (two ports named alike). The
        # object is mcpyard's: a merge patch replaces its lists whole, as the spec says.
        body = {k: v for k, v in desired.items() if k not in ("apiVersion", "kind")}
        patched = await client.patch(api_version, kind, namespace, name, body)
        if patched is None:
            raise
        log.info(
            "%s %s/%s: apply refused (%s); lists replaced by a merge patch",
            kind, namespace, name, exc,
        )
        return Outcome.UPDATED, patched
    return (Outcome.CREATED if created else Outcome.UPDATED), applied
