"""``mcpyard audit log``: every access change of a git history, with commit, author and date,
from the same access diff as ``mcpyard access diff``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mcpyard import cli
from mcpyard.crypto import tokens
from tests.conftest import ROOT
from tests.gittools import Repo

ANN, BOB = "Ann Admin <ann@example.com>", "Bob Builder <bob@example.com>"


def _ws(plan: str, display: str = "Engineering") -> str:
    return f"""apiVersion: mcpyard.io/v1alpha1
kind: Workspace
metadata: {{name: eng, namespace: team}}
spec: {{displayName: {display}, plan: {plan}}}
"""


def _server(name: str) -> str:
    return f"""apiVersion: mcpyard.io/v1alpha1
kind: MCPServer
metadata: {{name: {name}, namespace: team}}
spec:
  workspace: eng
  proxy: {{url: "https://{name}.example.com/mcp"}}
"""


def _member(name: str, extra: str = "") -> str:
    return f"""apiVersion: mcpyard.io/v1alpha1
kind: Member
metadata: {{name: {name}, namespace: team}}
spec:
  workspace: eng
  user: {name}@example.com
  tokenHash: {tokens.hash(tokens.new())}
{extra}"""


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A repository built commit by commit; the manifests live in workspaces/."""
    repo = Repo(tmp_path_factory.mktemp("audit") / "repo")
    repo.write("README.md", "not a manifest\n")
    repo.write("workspaces/eng.yaml", _ws("free"))
    repo.write("workspaces/time.yaml", _server("time"))
    repo.write("workspaces/alice.yaml", _member("alice"))
    repo.write("workspaces/bob.yaml", _member(
        "bob", "  access: {allow: ['time__*'], deny: ['time__convert*']}\n"))
    shas = [repo.commit("eng with time, alice and bob", author=ANN,
                        date="2026-01-01T10:00:00+00:00")]
    repo.write("workspaces/eng.yaml", _ws("pro"))
    repo.write("workspaces/github.yaml", _server("github"))
    repo.write("workspaces/alice.yaml", _member(
        "alice", "  access: {deny: ['github__delete_*']}\n"))
    shas.append(repo.commit("pro plan, github for everyone but deletes", author=BOB,
                            date="2026-01-02T10:00:00+00:00"))
    repo.write("workspaces/bob.yaml", _member(
        "bob", "  access: {allow: ['time__*'], deny: ['time__convert*']}\n  disabled: true\n"))
    repo.write("workspaces/carol.yaml", _member(
        "carol", "  expires: '2026-01-04T00:00:00Z'\n"))
    shas.append(repo.commit("revoke bob; carol for one day", author=ANN,
                            date="2026-01-03T10:00:00+00:00"))
    repo.write("README.md", "outside the manifests: no entry\n")
    repo.commit("docs", author=BOB, date="2026-01-04T10:00:00+00:00")
    repo.remove("workspaces/alice.yaml")
    repo.remove("workspaces/github.yaml")
    repo.write("workspaces/eng.yaml", _ws("pro", "Eng"))  # no access change in it
    shas.append(repo.commit("alice left; github goes", author=BOB,
                            date="2026-01-05T10:00:00+00:00"))
    return repo.path, shas


def _log(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert cli.main(["audit", "log", *args]) == 0
    return capsys.readouterr().out


def _json(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = json.loads(_log(capsys, *args, "--format", "json"))
    return entries


def _flat(entries: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    """(commit, date, who or what, change) for every change of every entry."""
    out = []
    for e in entries:
        for ws in e["workspaces"]:
            if ws["change"] != "changed":
                out.append((e["commit"][:7], e["date"][:10], f"workspace {ws['name']}",
                            ws["change"]))
            out += [(e["commit"][:7], e["date"][:10], ws["name"], d) for d in ws["details"]]
            out += [(e["commit"][:7], e["date"][:10], m["name"], m["change"])
                    for m in ws["members"]]
    return out


def test_every_access_change_with_commit_author_and_date(
        history: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str]) -> None:
    repo, (c1, c2, c3, c4) = history
    entries = _json(capsys, str(repo / "workspaces"))
    assert [(e["commit"], e["event"], e["author"]) for e in entries] == [
        (c1, "commit", ANN), (c2, "commit", BOB), (c3, "commit", ANN), (c3, "expired", ANN),
        (c4, "commit", BOB)]
    assert _flat(entries) == [
        (c1[:7], "2026-01-01", "workspace eng", "added"),
        (c1[:7], "2026-01-01", "eng", "plan: free"),
        (c1[:7], "2026-01-01", "eng", "server added: time"),
        (c1[:7], "2026-01-01", "alice", "added"),
        (c1[:7], "2026-01-01", "bob", "added"),
        (c2[:7], "2026-01-02", "eng", "plan: free -> pro"),
        (c2[:7], "2026-01-02", "eng", "workspace rate limit: 60 -> 1200 requests/min"),
        (c2[:7], "2026-01-02", "eng", "server added: github"),
        (c2[:7], "2026-01-02", "alice", "changed"),
        (c3[:7], "2026-01-03", "bob", "deactivated"),
        (c3[:7], "2026-01-03", "carol", "added"),
        (c3[:7], "2026-01-04", "carol", "expired"),  # at its expiry, not at a commit
        (c4[:7], "2026-01-05", "eng", "server removed: github"),
        (c4[:7], "2026-01-05", "alice", "removed"),
        (c4[:7], "2026-01-05", "carol", "changed"),  # github goes: the rules say so (expired)
    ]
    alice = entries[1]["workspaces"][0]["members"][0]
    assert alice["details"] == [
        "github: no access -> all tools except github__delete_*"]
    # The text form says the same, one commit per block.
    text = _log(capsys, str(repo / "workspaces"))
    assert f"2026-01-02T10:00:00+00:00  {c2[:12]}  {BOB}  pro plan, github" in text
    assert "      alice <alice@example.com>: changed\n" \
           "        github: no access -> all tools except github__delete_*\n" in text
    assert f"2026-01-04T00:00:00Z  {c3[:12]}  {ANN}  expired\n" in text


def test_known_tools_name_the_grants(history: tuple[Path, list[str]], tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    repo, (c1, *_) = history
    tools = tmp_path / "tools.yaml"
    tools.write_text("team/time: [get_current_time, convert_time]\n")
    entries = _json(capsys, str(repo / "workspaces"), "--tools", str(tools), "--member", "bob")
    first = entries[0]["workspaces"][0]["members"][0]
    assert (entries[0]["commit"], first["gains"]) == (c1, ["time__get_current_time"])
    assert entries[1]["workspaces"][0]["members"][0]["loses"] == ["time__get_current_time"]


@pytest.mark.parametrize(("args", "expected"), [
    pytest.param(["--member", "carol"],
                 [("carol", "added"), ("carol", "expired"), ("carol", "changed")], id="member"),
    pytest.param(["--member", "bob@example.com"],  # bob came with the workspace
                 [("workspace eng", "added"), ("bob", "added"), ("bob", "deactivated")],
                 id="member-by-user"),
    pytest.param(["--since", "2026-01-02T12:00:00Z"],
                 [("bob", "deactivated"), ("carol", "added"), ("carol", "expired"),
                  ("eng", "server removed: github"), ("alice", "removed"), ("carol", "changed")],
                 id="since"),
    pytest.param(["--workspace", "nope"], [], id="other-workspace"),
])
def test_filters(history: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str],
                 args: list[str], expected: list[tuple[str, str]]) -> None:
    repo, _ = history
    got = [(who, change) for _, _, who, change in _flat(_json(capsys, str(repo), *args))]
    assert got == expected
    if not expected:
        assert _log(capsys, str(repo), *args) == "No access changes.\n"


def test_outside_a_checkout_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["audit", "log", str(tmp_path)]) == 2
    assert "not a git repository" in capsys.readouterr().err
    assert cli.main(["audit", "log", str(tmp_path / "missing")]) == 2
    assert "no such file or directory" in capsys.readouterr().err


def test_this_repositorys_examples_history(capsys: pytest.CaptureFixture[str]) -> None:
    """The examples' own history (CI clones it whole: a shallow clone fails here, loudly)."""
    out = capsys.readouterr()
    assert cli.main(["audit", "log", str(ROOT / "examples" / "workspaces"), "--format",
                     "json"]) == 0
    out = capsys.readouterr()
    assert "shallow" not in out.err, "this test needs the full git history: " + out.err
    entries = json.loads(out.out)
    first, second = entries[0], entries[1]
    assert first["commit"].startswith("c388202") and first["event"] == "commit"
    eng = next(w for w in first["workspaces"] if w["name"] == "eng")
    assert eng["change"] == "added"
    assert {(m["name"], m["change"]) for m in eng["members"]} >= {
        ("alice", "added"), ("bob", "added"), ("carol", "added")}
    assert next(m for m in eng["members"] if m["name"] == "carol")["details"] == ["disabled"]
    # The example secrets came a commit later: the servers that need them were left out.
    assert any("analytics-key not found" in p for p in first["problems"])
    assert second["commit"].startswith("1718dfe")
    assert {w["name"]: w["details"] for w in second["workspaces"]} == {
        "data": ["server added: analytics"], "eng": ["server added: analytics"]}


def test_branch_commits_and_merges(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = Repo(tmp_path / "repo")
    repo.write("w/eng.yaml", _ws("free"))
    base = repo.commit("base", date="2026-02-01T10:00:00+00:00")
    repo.git("checkout", "-q", "-b", "feat")
    repo.write("w/zed.yaml", _member("zed"))
    zed = repo.commit("add zed", author=BOB, date="2026-02-02T10:00:00+00:00")
    repo.git("checkout", "-q", "main")
    repo.write("README.md", "elsewhere\n")
    repo.commit("readme", date="2026-02-03T10:00:00+00:00")
    repo.git("merge", "-q", "--no-edit", "feat", date="2026-02-04T10:00:00+00:00")
    # Only the folder changed on the branch: the merge brings nothing of its own.
    got = [(e["commit"], who, change)
           for e in _json(capsys, str(repo.path / "w"))
           for who, change in [(m["name"], m["change"]) for w in e["workspaces"]
                               for m in w["members"]] or [("-", "-")]]
    assert got == [(base, "-", "-"), (zed, "zed", "added")]
    # Both lines change the manifests: the merge is listed with what it brought to main.
    repo.git("checkout", "-q", "-b", "yan")
    repo.write("w/yan.yaml", _member("yan"))
    yan = repo.commit("add yan", author=BOB, date="2026-02-05T10:00:00+00:00")
    repo.git("checkout", "-q", "main")
    repo.write("w/eng.yaml", _ws("pro"))
    pro = repo.commit("pro", date="2026-02-06T10:00:00+00:00")
    repo.git("merge", "-q", "--no-edit", "yan", date="2026-02-07T10:00:00+00:00")
    merge = repo.git("rev-parse", "HEAD").strip()
    entries = _json(capsys, str(repo.path / "w"), "--since", "2026-02-05")
    assert [(e["commit"], [d for w in e["workspaces"] for d in w["details"]]
             + [m["name"] for w in e["workspaces"] for m in w["members"]]) for e in entries] \
        == [(yan, ["yan"]), (pro, ["plan: free -> pro",
                                   "workspace rate limit: 60 -> 1200 requests/min"]),
            (merge, ["yan"])]


def test_since_a_bare_date_is_that_days_start(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """git reads ``--since 2026-02-05`` at the current time of that day: a commit made that
    morning came and went with the clock (this test's sibling failed after 10:00 UTC)."""
    repo = Repo(tmp_path / "repo")
    repo.write("w/eng.yaml", _ws("free"))
    repo.commit("base", date="2026-02-04T23:59:59+00:00")
    repo.write("w/zed.yaml", _member("zed"))
    early = repo.commit("add zed", date="2026-02-05T00:00:01+00:00")
    entries = _json(capsys, str(repo.path / "w"), "--since", "2026-02-05")
    assert [e["commit"] for e in entries] == [early]
