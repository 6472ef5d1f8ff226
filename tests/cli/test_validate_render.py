"""`mcpyard validate` and `mcpyard render`, driven as a user runs them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import EXAMPLES, ROOT


def mcpyard(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mcpyard", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=60)


def test_examples_are_valid() -> None:
    done = mcpyard("validate", str(EXAMPLES))
    assert (done.returncode, done.stdout) == (0, ""), done.stdout + done.stderr


def test_problems_are_one_line_each_and_exit_1(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLES, tmp_path / "repo")
    bob = tmp_path / "repo" / "team-eng" / "members" / "bob.yaml"
    bob.write_text(bob.read_text().replace("workspace: eng", "workspace: engg"))
    (tmp_path / "repo" / "broken.yaml").write_text("kind: Workspace\nmetadata: [\n")
    (tmp_path / "repo" / "typo.yaml").write_text(
        "apiVersion: mcpyard.io/v1alpha1\nkind: Member\nmetadata: {name: zed, namespace: x}\n"
        "spec: {workspace: eng, user: z, tokenHash: nope}\n")
    done = mcpyard("validate", str(tmp_path / "repo"))
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert f"{tmp_path}/repo/broken.yaml:3: invalid YAML: " in lines[0]
    # Each names the file (and line), the resource and the field.
    assert any(line.startswith(f"{bob}:") and line.endswith(
        ": team-eng/Member/bob: spec.workspace: Workspace engg not found in namespace team-eng")
        for line in lines)
    assert f"{tmp_path}/repo/typo.yaml:1: x/Member/zed: spec.tokenHash: String should match " \
           "pattern '^sha256:[0-9a-f]{64}$'" in lines
    assert len(lines) == 3


def test_other_tools_manifests_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: []\n")
    (tmp_path / "cm.yml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")
    assert mcpyard("validate", str(tmp_path)).returncode == 0


def test_unknown_mcpyard_kind_is_named(tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text(
        "apiVersion: mcpyard.io/v1alpha1\nkind: Tool\nmetadata: {name: a, namespace: n}\n")
    done = mcpyard("validate", str(tmp_path))
    assert done.returncode == 1
    assert done.stdout.startswith(
        f"{tmp_path}/x.yaml:1: n/Tool/a: kind: mcpyard.io/v1alpha1/Tool is not a mcpyard kind")


def test_render_prints_config_and_children_but_no_secret() -> None:
    done = mcpyard("render", str(EXAMPLES))
    assert done.returncode == 0, done.stderr
    data = yaml.safe_load(done.stdout)
    assert sorted(w["name"] for w in data["workspaces"]) == ["data", "eng"]
    eng = next(w for w in data["workspaces"] if w["name"] == "eng")
    analytics = next(s for s in eng["servers"] if s["slug"] == "analytics")
    assert analytics["injections"][0]["ref"] == {"namespace": "team-eng",
                                                  "name": "analytics-key", "key": "token"}
    kinds = sorted({o["kind"] for o in data["objects"]})
    assert kinds == ["Deployment", "Secret", "Service"]
    assert "demo-analytics-key-0001" not in done.stdout  # the example secret's plaintext
    assert "ENC[" not in done.stdout
    as_json = json.loads(mcpyard("render", str(EXAMPLES), "-o", "json").stdout)
    assert as_json["workspaces"] == data["workspaces"]
