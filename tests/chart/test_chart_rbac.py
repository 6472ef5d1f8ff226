"""The chart grants the operator and the gateway exactly the permissions mcpyard.kube says they
need: no less (a call would fail) and no more (least privilege).

charts/mcpyard/files/rbac.yaml is mcpyard.kube.RBAC_RULES and GATEWAY_RBAC_RULES as YAML; the
templates build every Role and ClusterRole from it, and docs/rbac.md lists the same rules.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from helmrender import NAMESPACE, RBAC_FILE, ROOT, VALUE_SETS, Render, Rendered, rbac_document

Triple = tuple[str, str, str]  # (apiGroup, resource, verb)

CLUSTER_SCOPED = {"namespaces", "customresourcedefinitions", "clusterkopfpeerings"}


def _package_rules() -> dict[str, list[dict[str, Any]]]:
    from mcpyard import kube

    return rbac_document(kube.RBAC_RULES, kube.GATEWAY_RBAC_RULES)


def _chart_rules() -> dict[str, list[dict[str, Any]]]:
    doc: dict[str, list[dict[str, Any]]] = yaml.safe_load(RBAC_FILE.read_text())
    return doc


def _triples(rules: list[dict[str, Any]], scope: str | None = None) -> set[Triple]:
    return {
        (g, r, v)
        for rule in rules
        if scope is None or rule.get("scope") == scope
        for g in rule["apiGroups"]
        for r in rule["resources"]
        for v in rule["verbs"]
    }


def test_chart_rules_are_the_package_rules() -> None:
    package = _package_rules()
    chart = _chart_rules()
    for who in ("operator", "gateway"):
        for scope in ("cluster", "operator-namespace"):
            missing = _triples(package[who], scope) - _triples(chart[who], scope)
            extra = _triples(chart[who], scope) - _triples(package[who], scope)
            assert not missing and not extra, (
                f"charts/mcpyard/files/rbac.yaml differs from mcpyard.kube for the {who}, "
                f"scope {scope}: the chart lacks {sorted(missing)} and grants {sorted(extra)} "
                f"beyond it. Regenerate: python tests/chart/helmrender.py write-rbac"
            )
    assert chart == package, (
        "charts/mcpyard/files/rbac.yaml is not mcpyard.kube's rules as "
        "written; regenerate: python tests/chart/helmrender.py write-rbac"
    )


def _granted(r: Rendered, kind: str, namespace: str | None, sa: str) -> set[Triple]:
    """What the RoleBindings/ClusterRoleBindings of ``kind`` grant ServiceAccount ``sa``."""
    binding_kind = {"ClusterRole": "ClusterRoleBinding", "Role": "RoleBinding"}[kind]
    roles = {(d["metadata"].get("namespace"), d["metadata"]["name"]): d for d in r.of_kind(kind)}
    out: set[Triple] = set()
    for b in r.of_kind(binding_kind):
        if namespace is not None and b["metadata"].get("namespace") != namespace:
            continue
        if not any(
            s["kind"] == "ServiceAccount" and s["name"] == sa and s["namespace"] == NAMESPACE
            for s in b["subjects"]
        ):
            continue
        role = roles[
            (b["metadata"].get("namespace") if kind == "Role" else None, b["roleRef"]["name"])
        ]
        out |= _triples(role["rules"])
    return out


def _split(triples: set[Triple]) -> tuple[set[Triple], set[Triple]]:
    cluster = {t for t in triples if t[1].split("/")[0] in CLUSTER_SCOPED}
    return cluster, triples - cluster


def test_cluster_wide_operator_gets_exactly_its_rules(default_render: Rendered) -> None:
    rules = _chart_rules()["operator"]
    assert _granted(default_render, "ClusterRole", None, "mcpyard-operator") == _triples(
        rules, "cluster"
    )
    assert _granted(default_render, "Role", NAMESPACE, "mcpyard-operator") == _triples(
        rules, "operator-namespace"
    )


def test_namespaced_operator_gets_roles_in_its_namespaces(chart_render: Render) -> None:
    r = chart_render(VALUE_SETS["served-namespaces"])
    rules = _chart_rules()["operator"]
    cluster_scoped, namespaced = _split(_triples(rules, "cluster"))
    # Only what a Role cannot grant stays cluster-wide.
    assert _granted(r, "ClusterRole", None, "mcpyard-operator") == cluster_scoped
    for ns in ("team-eng", "team-data"):
        assert _granted(r, "Role", ns, "mcpyard-operator") == namespaced, ns
    assert _granted(r, "Role", NAMESPACE, "mcpyard-operator") == _triples(
        rules, "operator-namespace"
    )


def test_gateway_reads_secrets_in_the_release_namespace_only(default_render: Rendered) -> None:
    rules = _chart_rules()["gateway"]
    assert (
        _granted(default_render, "Role", NAMESPACE, "mcpyard-gateway")
        == _triples(rules, "operator-namespace")
        == {("", "secrets", v) for v in ("get", "list", "watch")}
    )
    assert not _granted(default_render, "ClusterRole", None, "mcpyard-gateway")


def test_no_wildcards(option_render: tuple[str, Rendered]) -> None:
    _, r = option_render
    for role in r.of_kind("ClusterRole") + r.of_kind("Role"):
        for g, res, v in _triples(role["rules"]):
            assert "*" not in (g, res, v), role["metadata"]["name"]


@pytest.mark.parametrize("component", ["operator", "gateway"])
def test_service_accounts_are_bound(default_render: Rendered, component: str) -> None:
    dep = default_render.one("Deployment", f"mcpyard-{component}")
    sa = dep["spec"]["template"]["spec"]["serviceAccountName"]
    assert default_render.one("ServiceAccount", sa)
    assert _granted(default_render, "Role", NAMESPACE, sa)


def _doc_rules(section: str) -> set[tuple[str, str, str, str]]:
    """(scope, group, resource, verb) of the table under ``## section`` in docs/rbac.md."""
    text = (ROOT / "docs" / "rbac.md").read_text()
    body = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    out = set()
    for line in body.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 5 or cells[0] in ("scope", "---"):
            continue
        groups = [g.split("`")[1] if "`" in g else g for g in cells[1].split(", ")]
        groups = ["" if g == '""' else g for g in groups]
        for g in groups:
            for r in cells[2].split(", "):
                for v in cells[3].split(", "):
                    out.add((cells[0], g, r, v))
    return out


@pytest.mark.parametrize("section", ["Operator", "Gateway"])
def test_the_rbac_page_lists_the_package_rules(section: str) -> None:
    from mcpyard import kube

    rules = kube.RBAC_RULES if section == "Operator" else kube.GATEWAY_RBAC_RULES
    expected = {
        (rule["scope"], g, r, v)
        for rule in rules
        for g in rule["apiGroups"]
        for r in rule["resources"]
        for v in rule["verbs"]
    }
    assert _doc_rules(section) == expected
