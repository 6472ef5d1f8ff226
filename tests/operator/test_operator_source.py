"""The operator records where each workspace's objects came from: the revision a Flux
Kustomization or an Argo CD Application last applied (read through their labels and
annotations), or the one a pipeline wrote in ``mcpyard.io/revision``; the gateway config
carries it."""

from __future__ import annotations

from typing import Any

import kmock
import pytest

from mcpyard.operator import _source
from tests.conftest import manifest
from tests.operator.conftest import Cluster, every_request_is_allowed, wait_for

SHA1, SHA2, SHA3 = "1" * 40, "2" * 40, "3" * 40
FLUX = {_source.FLUX_NAME: "apps", _source.FLUX_NAMESPACE: "flux-system"}
HASH = "sha256:" + "ab" * 32


def _register_gitops_kinds(cluster: Cluster) -> None:
    """Flux's and Argo CD's kinds, as their CRDs would install them."""
    emulator = cluster.emulator.emulator
    assert emulator is not None
    for key, kind in [("kustomize.toolkit.fluxcd.io/v1/kustomizations", "Kustomization"),
                      ("argoproj.io/v1alpha1/applications", "Application")]:
        emulator.resources[key] = kmock.ResourceInfo(
            kind=kind, singular=kind.lower(), namespaced=True,
            verbs={"create", "delete", "get", "list", "patch", "update", "watch"},
            subresources={"status"})


def _workspace(name: str, namespace: str, **metadata: Any) -> dict[str, Any]:
    doc = manifest("Workspace", name, {"plan": "pro"}, namespace=namespace)
    doc["metadata"].update(metadata)
    return doc


def _source_of(cluster: Cluster, workspace: str) -> Any:
    found = cluster.config(workspace)
    return found[0].get("source", "absent") if found else "absent"


def test_the_config_names_the_revision_that_applied_it(cluster: Cluster) -> None:
    _register_gitops_kinds(cluster)
    cluster.create(
        {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
         "metadata": {"name": "apps", "namespace": "flux-system"},
         "spec": {"path": "./workspaces", "sourceRef": {"kind": "GitRepository", "name": "x"}},
         "status": {"lastAppliedRevision": f"main@sha1:{SHA1}"}},
        {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
         "metadata": {"name": "data", "namespace": "argocd"},
         "spec": {"project": "default"},
         "status": {"sync": {"status": "Synced", "revision": SHA2}}},
        _workspace("eng", "team-eng", labels=FLUX),
        manifest("Member", "alice", {"workspace": "eng", "user": "a@x", "tokenHash": HASH},
                 namespace="team-eng", metadata={"name": "alice", "namespace": "team-eng",
                                                 "labels": FLUX}),
        _workspace("data", "team-data", annotations={
            _source.ARGO_TRACKING: "data:mcpyard.io/Workspace:team-data/data"}),
        # A pipeline's annotation wins over the Flux labels of the same object.
        _workspace("ops", "team-ops", labels=FLUX,
                   annotations={_source.REVISION_ANNOTATION: SHA3}),
        # Flux labels naming a Kustomization that does not exist: no revision, no error.
        _workspace("lab", "team-lab", labels={_source.FLUX_NAME: "gone",
                                              _source.FLUX_NAMESPACE: "flux-system"}),
        _workspace("plain", "team-plain"),
    )
    cluster.start()
    expected = {
        "eng": {"revision": f"main@sha1:{SHA1}", "origin": "Kustomization flux-system/apps"},
        "data": {"revision": SHA2, "origin": "Application argocd/data"},
        "ops": {"revision": SHA3, "origin": "annotation mcpyard.io/revision"},
        "lab": None,
        "plain": None,
    }
    for ws, source in expected.items():
        wait_for(lambda ws=ws, source=source: _source_of(cluster, ws) == source,  # type: ignore[misc]
                 what=f"the source of {ws}")
    # ... and the Workspace's status says so, for `kubectl get workspace -o yaml`.
    wait_for(lambda: (cluster.resource("Workspace", "team-eng", "eng").get("status") or {})
             .get("source") == expected["eng"], what="eng's status.source")

    # Flux applies a new commit: the Kustomization's status moves on, the objects change.
    cluster.patch("Kustomization", "flux-system", "apps",
                  {"status": {"lastAppliedRevision": f"main@sha1:{SHA2}"}},
                  api_version="kustomize.toolkit.fluxcd.io/v1", subresource="status")
    cluster.patch("Member", "team-eng", "alice", {"spec": {"access": {"deny": ["x__*"]}}})
    wait_for(lambda: _source_of(cluster, "eng") == {
        "revision": f"main@sha1:{SHA2}", "origin": "Kustomization flux-system/apps"},
        what="eng's new revision")
    # A pipeline's new annotation alone is a new revision.
    cluster.patch("Workspace", "team-ops", "ops",
                  {"metadata": {"annotations": {_source.REVISION_ANNOTATION: SHA1}}})
    wait_for(lambda: (_source_of(cluster, "ops") or {}).get("revision") == SHA1,
             what="ops's new revision")
    cluster.stop()
    every_request_is_allowed(cluster)


@pytest.mark.parametrize(("metadata", "found"), [
    pytest.param({"annotations": {_source.REVISION_ANNOTATION: " v1.2 "}, "labels": FLUX},
                 ("annotation", "v1.2"), id="annotation-first"),
    pytest.param({"labels": FLUX}, ("Kustomization", "flux-system", "apps"), id="flux"),
    pytest.param({"labels": {_source.FLUX_NAME: "apps"}}, None, id="flux-without-namespace"),
    pytest.param({"annotations": {_source.ARGO_TRACKING: "eng:mcpyard.io/Member:team/a"}},
                 ("Application", "argocd", "eng"), id="argo-tracking-id"),
    pytest.param({"annotations": {_source.ARGO_TRACKING: "apps_eng:mcpyard.io/Member:team/a"}},
                 ("Application", "apps", "eng"), id="argo-app-in-any-namespace"),
    pytest.param({"labels": {_source.ARGO_INSTANCE: "eng"}}, ("Application", "argocd", "eng"),
                 id="argo-instance-label"),
    pytest.param({"labels": FLUX | {_source.ARGO_INSTANCE: "eng"}},
                 ("Kustomization", "flux-system", "apps"), id="flux-before-argo"),
    pytest.param({}, None, id="nothing"),
])
def test_precedence(metadata: dict[str, Any], found: tuple[str, ...] | None) -> None:
    got = _source.pointer(metadata, argocd_namespace="argocd")
    if isinstance(got, _source.Applier):
        assert (got.kind, got.namespace, got.name) == found
    elif got is not None:
        assert ("annotation", got.revision) == found
    else:
        assert found is None


def test_revision_of_multi_source_application() -> None:
    app = _source.Applier(*_source.APPLICATION, "argocd", "eng")
    assert _source.revision_of(app, {"status": {"sync": {"revisions": ["a", "b"]}}}) == "a, b"
    assert _source.revision_of(app, {"status": {}}) is None
