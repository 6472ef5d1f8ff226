"""The chart carries the CRDs of crds/ unchanged, as templates (installed AND upgraded), kept on
uninstall."""

from __future__ import annotations

import copy
from typing import Any

import yaml
from helmrender import CHART, ROOT, Render, Rendered

CRDS = ROOT / "crds"
CHART_CRDS = CHART / "files" / "crds"
REGENERATE = (
    "regenerate both with `mcpyard crds --out-dir crds && "
    "mcpyard crds --out-dir charts/mcpyard/files/crds`"
)


def _repo_crds() -> dict[str, dict[str, Any]]:
    return {p.name: yaml.safe_load(p.read_text()) for p in sorted(CRDS.glob("*.yaml"))}


def test_chart_files_are_byte_for_byte_the_repository_crds() -> None:
    repo = {p.name: p.read_bytes() for p in CRDS.glob("*.yaml")}
    chart = {p.name: p.read_bytes() for p in CHART_CRDS.glob("*.yaml")}
    assert sorted(chart) == sorted(repo), f"the chart's CRD files differ from crds/: {REGENERATE}"
    for name in repo:
        assert chart[name] == repo[name], f"{name} differs from crds/{name}: {REGENERATE}"


def test_the_chart_has_no_install_only_crds_folder() -> None:
    # Helm installs crds/ once and never upgrades it; and the same CRD in crds/ and in the
    # templates would make the install fail.
    assert not (CHART / "crds").exists()


def _strip_chart_metadata(doc: dict[str, Any], original: dict[str, Any]) -> dict[str, Any]:
    """The rendered CRD less what the chart adds: its labels and the keep annotation."""
    doc = copy.deepcopy(doc)
    meta = doc["metadata"]
    meta["labels"] = {
        k: v
        for k, v in meta.get("labels", {}).items()
        if k in original["metadata"].get("labels", {})
    }
    annotations = {
        k: v for k, v in meta.pop("annotations", {}).items() if k != "helm.sh/resource-policy"
    }
    if annotations or "annotations" in original["metadata"]:
        meta["annotations"] = annotations
    return doc


def test_rendered_crds_equal_the_repository_crds(default_render: Rendered) -> None:
    repo = {d["metadata"]["name"]: d for d in _repo_crds().values()}
    rendered = {
        d["metadata"]["name"]: d for d in default_render.of_kind("CustomResourceDefinition")
    }
    assert sorted(rendered) == sorted(repo)
    for name, doc in rendered.items():
        assert _strip_chart_metadata(doc, repo[name]) == repo[name], name
        # The chart only adds to metadata: nothing of the CRD's own is lost or changed.
        assert repo[name]["metadata"]["labels"].items() <= doc["metadata"]["labels"].items()


def test_crds_are_kept_on_uninstall(default_render: Rendered, chart_render: Render) -> None:
    for doc in default_render.of_kind("CustomResourceDefinition"):
        assert doc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        assert doc["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    for doc in chart_render({"crds": {"keep": False}}).of_kind("CustomResourceDefinition"):
        assert "helm.sh/resource-policy" not in doc["metadata"].get("annotations", {})


def test_crds_render_before_everything_else(default_render: Rendered) -> None:
    # Helm orders CustomResourceDefinition first on install; the template is also first.
    kinds = [d["kind"] for d in default_render.docs]
    assert kinds[:4] == ["CustomResourceDefinition"] * 4
