"""``mcpyard audit log DIR|REPO``: every access change in the git history of the manifests.

Each commit that touched the manifests is compiled against its first parent and the two are
compared with the access diff of ``mcpyard access diff`` (:mod:`mcpyard.compiler.diff`, the
one rule of what counts as a change): members added, removed, disabled or enabled, grants and
denials, servers added and removed, plan and rate-limit changes, with the commit, its author
and date. An expiry is a moment, not a commit: a member whose ``expires`` passed while a
commit's manifests were in force is listed as ``expired`` at that time.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from mcpyard import errors, manifests
from mcpyard.cli import _access, _common
from mcpyard.compiler import diff as access_diff
from mcpyard.compiler.config import WorkspaceConfig
from mcpyard.jsontypes import JSONObject

_SEP = "\x1f"
_BARE_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p: argparse.ArgumentParser = sub.add_parser("audit", help="audit access through git history")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    log: argparse.ArgumentParser = actions.add_parser(
        "log", help="every access change in the git history of the manifests",
        description="DIR is a folder of manifests inside a git checkout (or the checkout "
                    "itself); only commits that touched it are read.")
    log.add_argument("path", metavar="DIR|REPO", type=Path)
    log.add_argument("--since", metavar="DATE",
                     help="only commits since DATE (what `git log --since` accepts; a bare "
                          "YYYY-MM-DD is that day's start, UTC)")
    log.add_argument("--member", metavar="NAME",
                     help="only changes of this member (its name or its user)")
    log.add_argument("--workspace", metavar="W", help="only changes of this workspace")
    log.add_argument("--format", choices=["text", "json"], default="text")
    log.add_argument("--tools", type=Path, metavar="FILE",
                     help="YAML of known tools, {namespace/server: [tool, ...]}, to name the "
                          "tools each change grants or takes away")
    log.set_defaults(func=run)


@dataclass(frozen=True)
class Commit:
    sha: str
    parent: str | None
    author: str
    date: str
    """The author date, ISO 8601 with its offset."""
    committed: datetime
    """When it reached the branch (the committer date): a state is in force from then."""
    subject: str


@dataclass(frozen=True)
class Entry:
    commit: Commit
    event: str
    """``commit`` (what the commit changed) or ``expired`` (a member's expiry passed)."""
    date: str
    changes: access_diff.AccessDiff
    problems: tuple[Problem, ...] = ()
    """Resources this commit's manifests left out (invalid), and files that did not parse."""

    def to_dict(self) -> JSONObject:
        return {"commit": self.commit.sha, "author": self.commit.author, "date": self.date,
                "subject": self.commit.subject, "event": self.event,
                **self.changes.to_dict(), "problems": [p.text for p in self.problems]}


@dataclass(frozen=True)
class Problem:
    text: str
    workspace: str | None = None
    member: str | None = None
    """The Member at fault, if the problem is a Member's."""


class History:
    """The manifests below ``rel`` of the repository at ``repo``, commit by commit."""

    def __init__(self, repo: Path, rel: str, tools: Mapping[tuple[str, str], list[str]]) -> None:
        self.repo, self.rel, self.tools = repo, rel, tools
        self._states: dict[str, tuple[dict[str, WorkspaceConfig], tuple[Problem, ...]]] = {}

    def commits(self, since: str | None) -> list[Commit]:
        fmt = _SEP.join(("%H", "%P", "%an <%ae>", "%aI", "%cI", "%s"))
        if since is not None and _BARE_DATE.fullmatch(since):
            # git reads a bare date at the current time of day; meant is the day's start
            # (UTC, as `analytics --since` reads a date alone).
            since += "T00:00:00+00:00"
        args = ["log", "--reverse", f"--format={fmt}", *([f"--since={since}"] if since else []),
                "--", self.rel]
        out = []
        for line in manifests.git(self.repo, *args).splitlines():
            sha, parents, author, date, committed, subject = line.split(_SEP, 5)
            out.append(Commit(sha, parents.split()[0] if parents else None, author, date,
                              datetime.fromisoformat(committed), subject))
        return out

    def state(self, rev: str | None) -> tuple[dict[str, WorkspaceConfig], tuple[Problem, ...]]:
        """The compiled workspaces at ``rev`` (none before the first commit) and the problems
        that left resources out; compiled once per distinct tree."""
        if rev is None:
            return {}, ()
        spec = f"{rev}^{{tree}}" if self.rel == "." else f"{rev}:{self.rel}"
        try:
            tree = manifests.git(self.repo, "rev-parse", "--verify", "--quiet", spec).strip()
        except errors.ManifestError:  # the folder does not exist at rev
            return {}, ()
        if tree not in self._states:
            loaded = manifests.load_revision(rev, [self.rel], repo=self.repo)
            result = _common.compile_loaded(loaded)
            problems = (*(Problem(e) for e in loaded.errors),
                        *(Problem(str(p), p.workspace, p.name if p.kind == "Member" else None)
                          for p in result.problems if p.severity == "error"))
            self._states[tree] = (dict(result.compiled.workspaces), tuple(problems))
        return self._states[tree]

    def entries(self, since: str | None, *, now: datetime) -> list[Entry]:
        commits = self.commits(since)
        out: list[Entry] = []
        for i, commit in enumerate(commits):
            before, _ = self.state(commit.parent)
            after, problems = self.state(commit.sha)
            changes = access_diff.diff(before, after, old_tools=self.tools,
                                       new_tools=self.tools)
            if not changes.empty or problems:
                out.append(Entry(commit, "commit", commit.date, changes, problems))
            until = commits[i + 1].committed if i + 1 < len(commits) else now
            out += _expired(commit, after, until)
        return out


def _expired(commit: Commit, state: Mapping[str, WorkspaceConfig],
             until: datetime) -> list[Entry]:
    """Members whose expiry passed while ``commit``'s manifests were in force."""
    found = sorted(
        (m.expires, ws, m) for ws in state.values() for m in ws.members
        if m.expires is not None and not m.disabled and commit.committed <= m.expires < until)
    return [Entry(commit, "expired", when.isoformat().replace("+00:00", "Z"),
                  access_diff.AccessDiff((access_diff.WorkspaceChange(
                      ws.name, ws.namespace, "changed", members=(access_diff.MemberChange(
                          m.name, m.user, "expired",
                          details=(f"expires {when.isoformat()} (set as of {commit.sha[:12]})",)),
                      )),)))
            for when, ws, m in found]


def _only(entry: Entry, workspace: str | None, member: str | None) -> Entry | None:
    problems = tuple(p for p in entry.problems
                     if (workspace is None or p.workspace in (workspace, None))
                     and (member is None or p.member == member or p.workspace is None))
    kept = []
    for ws in entry.changes.workspaces:
        if workspace is not None and ws.name != workspace:
            continue
        if member is not None:
            members = tuple(m for m in ws.members if member in (m.name, m.user))
            if not members:
                continue
            ws = dataclasses.replace(ws, details=(), members=members)
        kept.append(ws)
    if not kept and not problems:
        return None
    return dataclasses.replace(entry, changes=access_diff.AccessDiff(tuple(kept)),
                               problems=problems)


def render(entries: list[Entry]) -> str:
    if not entries:
        return "No access changes.\n"
    lines = []
    for e in entries:
        head = f"{e.date}  {e.commit.sha[:12]}  {e.commit.author}"
        lines.append(f"{head}  expired" if e.event == "expired" else
                     f"{head}  {e.commit.subject}")
        if not e.changes.empty:
            text = _access.render_text(e.changes, markdown=False)
            lines += [f"    {line}" for line in text.splitlines()]
        lines += [f"    problem (left out): {p.text}" for p in e.problems]
    return "\n".join(lines) + "\n"


def _locate(path: Path) -> tuple[Path, str]:
    """The repository's top folder and ``path`` relative to it."""
    where = path if path.is_dir() else path.parent
    top = Path(manifests.git(where, "rev-parse", "--show-toplevel").strip())
    rel = path.resolve().relative_to(top.resolve()).as_posix()
    if manifests.git(top, "rev-parse", "--is-shallow-repository").strip() == "true":
        print(f"audit log: {top} is a shallow clone: older commits are not shown "
              "(git fetch --unshallow)", file=sys.stderr)
    return top, rel or "."


def run(args: argparse.Namespace) -> int:
    if not args.path.exists():
        print(f"audit log: {args.path}: no such file or directory", file=sys.stderr)
        return 2
    try:
        repo, rel = _locate(args.path)
        history = History(repo, rel, _access._tools(args.tools))
        entries = history.entries(args.since, now=datetime.now(UTC))
    except errors.ManifestError as exc:
        print(f"audit log: {args.path}: {exc}", file=sys.stderr)
        return 2
    shown = [e for e in (_only(x, args.workspace, args.member) for x in entries) if e]
    if args.format == "json":
        sys.stdout.write(json.dumps([e.to_dict() for e in shown], indent=2) + "\n")
    else:
        sys.stdout.write(render(shown))
    return 0
