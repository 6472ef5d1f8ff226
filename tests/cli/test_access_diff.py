"""`mcpyard access diff` between two real git revisions of a repository of manifests."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from tests.cli.test_validate_render import mcpyard
from tests.conftest import EXAMPLES


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True).stdout


def test_diff_between_two_commits(tmp_path: Path) -> None:
    repo = tmp_path / "config"
    shutil.copytree(EXAMPLES, repo / "workspaces")
    git(repo, "init", "-q")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@x", "add", ".")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@x", "commit", "-qm", "base")
    members = repo / "workspaces" / "team-eng" / "members"
    bob = members / "bob.yaml"
    bob.write_text(bob.read_text().replace('allow: ["notes__*", "time__*"]',
                                           'allow: ["notes__*"]'))
    (members / "alice.yaml").write_text((members / "alice.yaml").read_text()
                                        .replace("role: admin", "role: admin\n  disabled: true"))
    ws = repo / "workspaces" / "team-data" / "workspace.yaml"
    ws.write_text(ws.read_text().replace("plan: starter", "plan: pro"))
    git(repo, "-c", "user.name=t", "-c", "user.email=t@x", "commit", "-qam", "change")

    done = mcpyard("access", "diff", "HEAD~1", "HEAD", "--format", "json", cwd=repo)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    by_name = {w["name"]: w for w in result["workspaces"]}
    assert by_name["data"]["details"] == ["plan: starter -> pro",
                                          "workspace rate limit: 300 -> 1200 requests/min"]
    eng = {m["name"]: m for m in by_name["eng"]["members"]}
    assert eng["alice"]["change"] == "deactivated"
    assert eng["bob"]["change"] == "changed"
    assert "time: all tools -> no access" in eng["bob"]["details"]

    md = mcpyard("access", "diff", "HEAD~1", "HEAD", "--format", "markdown", cwd=repo).stdout
    assert md.startswith("## Access changes")
    assert "- **alice** (alice@example.com): deactivated" in md

    same = mcpyard("access", "diff", "HEAD", "HEAD", "--exit-code", cwd=repo)
    assert (same.returncode, same.stdout) == (0, "No access changes.\n")
    changed = mcpyard("access", "diff", "HEAD~1", "HEAD", "--exit-code", cwd=repo)
    assert changed.returncode == 1


def test_diff_of_folders_with_known_tools(tmp_path: Path) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    shutil.copytree(EXAMPLES, old)
    shutil.copytree(EXAMPLES, new)
    bob = new / "team-eng" / "members" / "bob.yaml"
    bob.write_text(bob.read_text().replace('deny: ["notes__word_count"]', "deny: []"))
    tools = tmp_path / "tools.yaml"
    tools.write_text("team-eng/notes: [echo, add, word_count, fail]\n")
    done = mcpyard("access", "diff", str(old), str(new), "--tools", str(tools))
    assert done.returncode == 0, done.stderr
    assert "bob <bob@example.com>: changed" in done.stdout
    assert "+ notes__word_count" in done.stdout


def test_unknown_revision_is_a_clear_error(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    done = mcpyard("access", "diff", "nope", "HEAD", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("access diff: nope: ")
