"""The GitOps wiring under examples/: Argo CD (Application + Lua health checks), Flux
(GitRepository + Kustomization) and the CI job of a config repository."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from helmrender import ROOT
from lupa import lua51  # Lua 5.1, as Argo CD's gopher-lua speaks

EXAMPLES = ROOT / "examples"
WORKSPACES = EXAMPLES / "workspaces"
KINDS = ["Workspace", "MCPServer", "Member", "EncryptedSecret"]


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _one(folder: str, kind: str) -> dict[str, Any]:
    found = [
        d
        for p in sorted((EXAMPLES / folder).glob("*.yaml"))
        for d in _docs(p)
        if d.get("kind") == kind
    ]
    assert len(found) == 1, f"one {kind} in examples/{folder}"
    return found[0]


@pytest.mark.parametrize(
    "path",
    sorted(
        p.relative_to(EXAMPLES).as_posix()
        for folder in ("argocd", "flux", "ci")
        for p in (EXAMPLES / folder).glob("*.y*ml")
    ),
)
def test_every_yaml_parses(path: str) -> None:
    docs = _docs(EXAMPLES / path)
    assert docs and all(isinstance(d, dict) for d in docs)


def _workspaces() -> set[tuple[str, str]]:
    return {
        (d["metadata"]["namespace"], d["metadata"]["name"])
        for p in WORKSPACES.rglob("*.yaml")
        if not p.name.startswith(".")
        for d in _docs(p)
        if d.get("kind") == "Workspace"
    }


# -- Argo CD ---------------------------------------------------------------------------------


def test_argocd_application_points_at_the_workspaces() -> None:
    app = _one("argocd", "Application")
    assert app["apiVersion"] == "argoproj.io/v1alpha1"
    source = app["spec"]["source"]
    assert (ROOT / source["path"]).resolve() == WORKSPACES.resolve()
    assert source["directory"]["recurse"] is True
    assert ".sops.yaml" in source["directory"]["exclude"]  # sops settings, not a manifest


def test_argocd_health_checks_cover_every_kind_with_one_script() -> None:
    cm = _one("argocd", "ConfigMap")
    assert cm["metadata"]["name"] == "argocd-cm"
    script = (EXAMPLES / "argocd" / "health.lua").read_text()
    keys = {f"resource.customizations.health.mcpyard.io_{k}" for k in KINDS}
    assert set(cm["data"]) == keys
    for key in keys:
        assert cm["data"][key] == script, f"{key} differs from examples/argocd/health.lua"


def test_argocd_cm_is_a_valid_configmap() -> None:
    kubernetes_validate.validate(_one("argocd", "ConfigMap"), "1.33", strict=True)


def _condition(status: str, reason: str = "Serving", message: str = "") -> dict[str, Any]:
    return {"type": "Ready", "status": status, "reason": reason, "message": message}


def _obj(
    *conditions: dict[str, Any], generation: int = 1, observed: int | None = 1, status: bool = True
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "mcpyard.io/v1alpha1",
        "kind": "Workspace",
        "metadata": {"name": "eng", "namespace": "team-eng", "generation": generation},
    }
    if status:
        obj["status"] = {
            "conditions": [
                {"type": "Accepted", "status": "True", "reason": "Valid", "message": ""},
                *conditions,
            ]
        }
        if observed is not None:
            obj["status"]["observedGeneration"] = observed
    return obj


@pytest.mark.parametrize(
    ("obj", "health"),
    [
        pytest.param(_obj(_condition("True")), "Healthy", id="ready"),
        pytest.param(
            _obj(_condition("False", "Degraded", "github is down")), "Degraded", id="not-ready"
        ),
        pytest.param(
            _obj(_condition("False", "Invalid", "spec.plan: bad")), "Degraded", id="invalid"
        ),
        pytest.param(_obj(_condition("False", "DecryptionFailed")), "Degraded", id="decryption"),
        pytest.param(_obj(_condition("False", "Pending")), "Progressing", id="pending"),
        pytest.param(
            _obj(_condition("False", "DependenciesNotReady")), "Progressing", id="dependencies"
        ),
        pytest.param(
            _obj(_condition("False", "Disabled", "disabled")),
            "Healthy",
            id="member-disabled-in-git",
        ),
        pytest.param(_obj(_condition("Unknown", "Pending")), "Progressing", id="unknown"),
        pytest.param(_obj(), "Progressing", id="ready-absent"),
        pytest.param(_obj(status=False), "Progressing", id="no-status"),
        pytest.param(
            _obj(_condition("True"), generation=3, observed=2), "Progressing", id="stale-generation"
        ),
        pytest.param(_obj(_condition("True"), observed=None), "Healthy", id="no-observed"),
    ],
)
def test_argocd_health_lua(obj: dict[str, Any], health: str) -> None:
    lua = lua51.LuaRuntime(unpack_returned_tuples=True)
    script = (EXAMPLES / "argocd" / "health.lua").read_text()
    check = lua.eval(f"function(obj)\n{script}\nend")
    result = check(_to_lua(lua, obj))
    assert result["status"] == health
    assert isinstance(result["message"], str)
    ready = [c for c in obj.get("status", {}).get("conditions", []) if c["type"] == "Ready"]
    if ready and ready[0]["message"] and health != "Progressing":
        assert result["message"] == ready[0]["message"]


def _to_lua(lua: Any, value: Any) -> Any:
    """JSON-like Python data as Lua tables, as Argo CD hands objects to its scripts."""
    if isinstance(value, dict):
        return lua.table_from({k: _to_lua(lua, v) for k, v in value.items()})
    if isinstance(value, list):
        return lua.table_from([_to_lua(lua, v) for v in value])
    return value


# -- Flux ------------------------------------------------------------------------------------


def test_flux_kustomization_points_at_the_workspaces() -> None:
    repo = _one("flux", "GitRepository")
    ks = _one("flux", "Kustomization")
    assert ks["apiVersion"] == "kustomize.toolkit.fluxcd.io/v1"
    assert ks["spec"]["sourceRef"] == {"kind": "GitRepository", "name": repo["metadata"]["name"]}
    assert (ROOT / ks["spec"]["path"]).resolve() == WORKSPACES.resolve()
    assert ks["spec"]["prune"] is True
    assert ".sops.yaml" in repo["spec"]["ignore"]
    checked = {
        (h["namespace"], h["name"]) for h in ks["spec"]["healthChecks"] if h["kind"] == "Workspace"
    }
    assert checked == _workspaces()


def test_encrypted_secrets_are_applied_still_encrypted_by_flux() -> None:
    # The Kustomization may decrypt other SOPS files; mcpyard's opt out, one by one.
    secrets = [
        d
        for p in WORKSPACES.rglob("*.yaml")
        for d in _docs(p)
        if d.get("kind") == "EncryptedSecret"
    ]
    assert secrets
    for s in secrets:
        assert s["metadata"]["annotations"]["kustomize.toolkit.fluxcd.io/decrypt"] == "Disabled", s[
            "metadata"
        ]["name"]
    assert (
        "kustomize.toolkit.fluxcd.io/decrypt: Disabled"
        in (EXAMPLES / "flux" / "kustomization.yaml").read_text()
    )


# -- CI --------------------------------------------------------------------------------------


def _run_lines(workflow: dict[str, Any]) -> list[str]:
    return [
        line.strip()
        for job in workflow["jobs"].values()
        for step in job["steps"]
        for line in step.get("run", "").splitlines()
        if line.strip()
    ]


def test_ci_job_validates_and_comments_the_access_diff() -> None:
    workflow = yaml.safe_load((EXAMPLES / "ci" / "github-actions.yaml").read_text())
    assert "pull_request" in workflow[True]  # YAML 1.1 reads the key `on` as True
    assert workflow["permissions"]["pull-requests"] == "write"
    lines = _run_lines(workflow)
    commands = [shlex.split(line) for line in lines if line.startswith("mcpyard ")]
    assert ["mcpyard", "validate", "$WORKSPACES"] in commands
    (diff,) = [c for c in commands if c[1:3] == ["access", "diff"]]
    assert diff[diff.index("--format") + 1] == "markdown"
    assert any("issues/comments" in line or "/comments" in line for line in lines)
    # The commands parse with the real CLI.
    from mcpyard import cli

    parser = cli.build_parser()
    for command in commands:
        parser.parse_args([a.replace("$", "") for a in command[1:]])
    checkout = [
        s
        for job in workflow["jobs"].values()
        for s in job["steps"]
        if s.get("uses", "").startswith("actions/checkout")
    ]
    assert checkout[0]["with"]["fetch-depth"] == 0  # the diff reads the base revision
