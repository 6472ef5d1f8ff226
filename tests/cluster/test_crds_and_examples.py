"""`kubectl apply -f crds/`, then the examples, against a real API server (1.20).

The server validates every custom resource against the CRD's openAPIV3Schema, prunes unknown
fields and serves the printer columns. It is 1.20: the CEL rules of the MCPServer and
Workspace CRDs (``x-kubernetes-validations``, 1.25+) are stripped to install there, so those
rules are checked here with a CEL evaluator (cel-python) on every example and on values that
break them.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import celpy
import pytest
import yaml

from tests.cluster.apiserver import ApiServer
from tests.cluster.conftest import apply_examples, crd_documents, strip_cel
from tests.conftest import EXAMPLES, manifest

CLUSTER_EXAMPLES = EXAMPLES.parent / "cluster"


def _docs(root: Path) -> list[dict[str, Any]]:
    out = []
    for path in sorted(root.rglob("*.yaml")):
        if not any(p.startswith(".") for p in path.relative_to(root).parts):
            out.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return out


def _refused(apiserver: ApiServer, doc: dict[str, Any]) -> str:
    """The server's own message for ``doc``: kubectl's client-side validation is off, so what
    refuses it is the API server."""
    done = apiserver.kubectl(
        "apply", "--validate=false", "-f", "-", stdin=yaml.safe_dump(doc), check=False
    )
    assert done.returncode != 0, f"the server admitted {doc}"
    return done.stderr


def test_crds_need_their_cel_rule_stripped_on_1_20(apiserver: ApiServer) -> None:
    # As the user runs it: on 1.20 the CEL rule is an unknown field of the CRD schema.
    done = apiserver.kubectl("apply", "--dry-run=server", "-f", "crds/", check=False)
    assert done.returncode != 0
    assert "x-kubernetes-validations" in done.stderr
    stripped = {crd["spec"]["names"]["kind"]: strip_cel(crd)[1] for crd in crd_documents()}
    counts = {kind: len(rules) for kind, rules in stripped.items() if rules}
    # One rule each, both tested below with a CEL evaluator.
    assert counts == {"MCPServer": 1, "Workspace": 1}, counts


def test_examples_are_admitted(apiserver: ApiServer, crds: list[dict[str, Any]]) -> None:
    applied = apply_examples(apiserver)
    for doc in _docs(EXAMPLES) + _docs(CLUSTER_EXAMPLES):
        kind, name = doc["kind"].lower(), doc["metadata"]["name"]
        assert f"{kind}.mcpyard.io/{name}" in applied, f"{kind} {name} not applied"
    # The standalone-only proxy stayed out; its cluster variant is what the server holds.
    server = apiserver.get_json("mcpserver", "-n", "team-eng", "analytics")
    assert server["spec"]["proxy"]["url"].startswith("http://mcp-analytics.team-data.svc")
    # Stored as written: the server pruned nothing of the examples (every field is in the
    # schema) and kept the sops block of the EncryptedSecrets.
    for doc in _docs(EXAMPLES):
        if doc["metadata"].get("labels", {}).get("mcpyard.io/example") == "standalone-only":
            continue
        meta = doc["metadata"]
        stored = apiserver.get_json(
            f"{doc['kind'].lower()}.mcpyard.io", "-n", meta["namespace"], meta["name"]
        )
        for key in ("spec", "sops"):
            assert stored.get(key) == doc.get(key), f"{doc['kind']} {meta['name']}: {key}"
    # Printer columns and short names, as `kubectl get` shows them.
    table = apiserver.kubectl("get", "mcpyard", "-A").stdout
    assert "workspace.mcpyard.io/eng" in table and "member.mcpyard.io/carol" in table
    header = apiserver.kubectl("get", "mws", "-A").stdout.splitlines()[0].split()
    assert header[:4] == ["NAMESPACE", "NAME", "URL", "PLAN"], header


BAD = [
    pytest.param(
        manifest("Workspace", "gold", {"plan": "gold"}, namespace="team-eng"),
        'spec.plan: Unsupported value: "gold"',
        id="workspace-unknown-plan",
    ),
    pytest.param(
        manifest("Member", "nobody", {"user": "x@example.com"}, namespace="team-eng"),
        "spec.workspace: Required value",
        id="member-without-workspace",
    ),
    pytest.param(
        manifest(
            "MCPServer",
            "Bad",
            {"workspace": "eng", "slug": "Not A Slug", "hub": {"name": "time"}},
            namespace="team-eng",
        ),
        "spec.slug: Invalid value",
        id="server-bad-slug",
    ),
    pytest.param(
        manifest(
            "Member",
            "dave",
            {"workspace": "eng", "user": "d@x", "role": "owner"},
            namespace="team-eng",
        ),
        'spec.role: Unsupported value: "owner"',
        id="member-unknown-role",
    ),
]


@pytest.mark.parametrize(("doc", "message"), BAD)
def test_bad_resources_are_refused_by_the_server(
    apiserver: ApiServer, crds: list[dict[str, Any]], doc: dict[str, Any], message: str
) -> None:
    apiserver.kubectl("create", "namespace", "team-eng", check=False)
    error = _refused(apiserver, doc)
    assert message in error, error
    assert f'"{doc["metadata"]["name"]}" is invalid' in error


# -- the CEL rule the 1.20 server cannot run ---------------------------------------------------


def _evaluate(rule: str, spec: Any) -> bool:
    env = celpy.Environment()
    program = env.program(env.compile(rule))
    return bool(program.evaluate({"self": celpy.json_to_cel(spec)}))


def test_the_cel_rule_holds_for_every_example_and_breaks_on_bad_ones(
    crds: list[dict[str, Any]],
) -> None:
    (rule,) = [r for r in crds if r["message"] == "set exactly one of proxy, hosted, hub"]
    servers = [d for d in _docs(EXAMPLES) + _docs(CLUSTER_EXAMPLES) if d["kind"] == "MCPServer"]
    assert len(servers) >= 5
    for doc in servers:
        assert _evaluate(rule["rule"], doc["spec"]), doc["metadata"]["name"]
    hosted = next(d["spec"] for d in servers if "hosted" in d["spec"])
    proxy = next(d["spec"] for d in servers if "proxy" in d["spec"])
    both = {**copy.deepcopy(hosted), "proxy": proxy["proxy"]}
    none = {k: v for k, v in hosted.items() if k != "hosted"}
    three = {**both, "hub": {"name": "time"}}
    for spec in (both, none, three):
        assert not _evaluate(rule["rule"], spec), spec


def test_the_workspace_tool_search_rule(crds: list[dict[str, Any]]) -> None:
    """Workspace spec.toolSearch: true, false or "only" (the rule's self is that field)."""
    (rule,) = [r for r in crds if r["message"] == 'toolSearch must be true, false or "only"']
    for value in (True, False, "only"):
        assert _evaluate(rule["rule"], value), value
    for value in ("yes", "", 1, None):
        assert not _evaluate(rule["rule"], value), value
    for doc in _docs(EXAMPLES) + _docs(CLUSTER_EXAMPLES):
        if doc["kind"] == "Workspace" and "toolSearch" in doc["spec"]:
            assert _evaluate(rule["rule"], doc["spec"]["toolSearch"]), doc["metadata"]["name"]
