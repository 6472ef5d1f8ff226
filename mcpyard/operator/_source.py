"""Where a workspace's objects came from: the source revision its configuration (and so every
call record) carries.

Read from the objects' own metadata, first found wins:

1. the annotation ``mcpyard.io/revision`` (a pipeline that applies the manifests states the
   commit itself: the most precise, and it needs no other object);
2. Flux: the labels ``kustomize.toolkit.fluxcd.io/name`` and ``.../namespace`` that Flux puts on
   what it applies -> that Kustomization's ``status.lastAppliedRevision`` (``main@sha1:<sha>``);
3. Argo CD: the annotation ``argocd.argoproj.io/tracking-id`` (``[<ns>_]<app>:<group>/<kind>:
   <ns>/<name>``), else the label ``app.kubernetes.io/instance`` -> that Application's
   ``status.sync.revision``.

The Workspace object is asked first, then the workspace's MCPServers and Members (the Workspace
may have been applied by hand while the rest came from git). A Kustomization or Application
that cannot be read (absent, or not allowed) gives no revision, never an error.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from mcpyard import kube
from mcpyard.compiler.config import Source

log = logging.getLogger("mcpyard.operator")

REVISION_ANNOTATION = "mcpyard.io/revision"
FLUX_NAME = "kustomize.toolkit.fluxcd.io/name"
FLUX_NAMESPACE = "kustomize.toolkit.fluxcd.io/namespace"
ARGO_TRACKING = "argocd.argoproj.io/tracking-id"
ARGO_INSTANCE = "app.kubernetes.io/instance"
KUSTOMIZATION = ("kustomize.toolkit.fluxcd.io/v1", "Kustomization")
APPLICATION = ("argoproj.io/v1alpha1", "Application")


@dataclass(frozen=True)
class Applier:
    """The object that applied a resource, whose status holds the revision."""

    api_version: str
    kind: str
    namespace: str
    name: str

    @property
    def origin(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


def pointer(metadata: Mapping[str, object], *, argocd_namespace: str
            ) -> Source | Applier | None:
    """What one object's metadata says about its source (pure)."""
    annotations = _mapping(metadata.get("annotations"))
    labels = _mapping(metadata.get("labels"))
    stated = str(annotations.get(REVISION_ANNOTATION) or "").strip()
    if stated:
        return Source(revision=stated, origin=f"annotation {REVISION_ANNOTATION}")
    if labels.get(FLUX_NAME) and labels.get(FLUX_NAMESPACE):
        return Applier(*KUSTOMIZATION, str(labels[FLUX_NAMESPACE]), str(labels[FLUX_NAME]))
    tracking = str(annotations.get(ARGO_TRACKING) or "")
    app = tracking.split(":", 1)[0] if ":" in tracking else str(labels.get(ARGO_INSTANCE) or "")
    if app:
        # Applications outside Argo CD's own namespace are tracked as `<namespace>_<name>`.
        namespace, _, name = app.rpartition("_")
        return Applier(*APPLICATION, namespace or argocd_namespace, name)
    return None


def revision_of(applier: Applier, obj: Mapping[str, object]) -> str | None:
    """The revision an applier's status says it last applied (pure)."""
    status = _mapping(obj.get("status"))
    found: object
    if applier.kind == KUSTOMIZATION[1]:
        found = status.get("lastAppliedRevision")
    else:
        sync = _mapping(status.get("sync"))
        revisions = sync.get("revisions") or []
        found = sync.get("revision") or ", ".join(revisions if isinstance(revisions, list)
                                                  else [])
    return str(found) if found else None


def _mapping(value: object) -> Mapping[str, object]:
    # A field of an object the API server sent (an object there, or absent).
    return value if isinstance(value, Mapping) else {}


async def find(
    client: kube.Client,
    bodies: Iterable[Mapping[str, object]],
    *,
    argocd_namespace: str,
    unreadable: set[str],
) -> Source | None:
    """The source of the first of ``bodies`` (Workspace first) whose metadata names one;
    ``unreadable`` remembers the appliers already warned about."""
    asked: set[Applier] = set()
    for body in bodies:
        found = pointer(_mapping(body.get("metadata")), argocd_namespace=argocd_namespace)
        if isinstance(found, Source):
            return found
        if found is None or found in asked:
            continue
        asked.add(found)
        try:
            obj = await client.get(found.api_version, found.kind, found.namespace, found.name)
        except kube.ApiError as exc:  # no permission (a watched namespace only?): no revision
            if found.origin not in unreadable:
                unreadable.add(found.origin)
                log.warning("cannot read %s for the source revision: %s", found.origin, exc)
            continue
        revision = revision_of(found, obj) if obj is not None else None
        if revision:
            return Source(revision=revision, origin=found.origin)
    return None
