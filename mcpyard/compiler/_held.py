"""The held-resource rule: hold back only what is broken, never a revocation.

A resource with errors does not hold its workspace back. It keeps its own last good version
(taken from the workspace's last served configuration, which the adapter passes in) or, when
it never served, stays out; the rest of the workspace applies at once. So a revocation
(``disabled``, ``expires``, a Member or MCPServer deleted, access narrowed) never waits for an
unrelated fix.

What can be held at its last good version:

- an MCPServer with errors that still names the same workspace (a server that moved to
  another workspace, or was deleted, has left this one: that is a removal and applies);
- a resource whose document cannot be read now (an invalid manifest, a file torn mid-write):
  nothing in it can be trusted, so its last good version stays until it reads again;
- a Workspace whose document cannot be read: its servers and members still apply.

A Member whose new version can be read but has errors is never held at an older version:
that version could grant what the new one revokes (a rotated token, narrowed access). It
stays out until fixed (fail closed). Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mcpyard.api._problem import resource_ref
from mcpyard.api.v1alpha1 import conditions as c
from mcpyard.api.v1alpha1.workspace import PLAN_REQUESTS_PER_MINUTE, Workspace
from mcpyard.compiler._status import Report as Report
from mcpyard.compiler.config import WorkspaceConfig

if TYPE_CHECKING:
    from mcpyard.compiler._compile import _Run

Key = tuple[str, str, str]


@dataclass(frozen=True, order=True)
class Held:
    """One resource held back by an error, and what the gateway does with it."""

    workspace: str
    namespace: str
    kind: str
    name: str
    serving: bool
    """True: its last good version stays in use; False: it stays out of the workspace."""
    reason: str
    """``LastGoodKept`` or ``HeldOut`` (a constant of :mod:`mcpyard.api.v1alpha1.conditions`)."""
    message: str
    """Why: the problems that hold it, free of secrets."""

    @property
    def key(self) -> Key:
        return (self.namespace, self.kind, self.name)

    @property
    def ref(self) -> str:
        return resource_ref(self.namespace, self.kind, self.name)

    def __str__(self) -> str:
        what = "its last good version serves" if self.serving else "left out"
        return f"{self.ref}: {what}: {self.message}"


def _say(rep: Report) -> str:
    return "; ".join(f"{p.field}: {p.message}" if p.field else p.message
                     for p in [*rep.invalid, *rep.unresolved])


def previous(run: _Run, namespace: str, name: str) -> WorkspaceConfig | None:
    prev = run.last_good.get(name)
    return prev if prev is not None and prev.namespace == namespace else None


def workspaces(run: _Run) -> None:
    """A Workspace whose document cannot be read keeps its last good settings (plan, limits,
    title), so that its servers and members still compile against it."""
    for key in sorted(run.unreadable):
        ns, kind, name = key
        if kind != "Workspace" or name in {n for _, n in run.workspaces} or key in run.reports:
            continue
        prev = previous(run, ns, name)
        if prev is None:
            continue
        limit = prev.requests_per_minute
        run.workspaces[(ns, name)] = Workspace.model_validate({
            "metadata": {"name": name, "namespace": ns},
            "spec": {"displayName": prev.display_name, "plan": prev.plan,
                     "toolSearch": prev.tool_search,
                     "rateLimit": {"requestsPerMinute": limit}
                     if limit != PLAN_REQUESTS_PER_MINUTE.get(prev.plan) else None}})
        run.synthesized.add(key)
        run.reports[key] = Report(ns, kind, name, None, workspace=name)
        run.held.append(Held(name, ns, kind, name, True, c.LAST_GOOD_KEPT, run.unreadable[key]))


def member_limit(run: _Run, namespace: str, workspace: str, member: str) -> int | None:
    """The per-member default of a workspace held at its last good settings is not in the
    served configuration: a member keeps the limit it was last served with."""
    prev = previous(run, namespace, workspace)
    for m in prev.members if prev is not None else ():
        if m.name == member:
            return m.requests_per_minute
    return None


def hold(run: _Run) -> None:
    """After servers and members compiled: put back the last good version of what broke."""
    for (ns, name), _ws in sorted(run.workspaces.items()):
        prev = previous(run, ns, name)
        _servers(run, ns, name, prev)
        _members(run, ns, name, prev)


def _broken(run: _Run, key: Key, workspace: str) -> str | None:
    """Why the resource at ``key`` is held in ``workspace``; None when it is not (it compiled,
    or it is gone or moved to another workspace: a removal, which applies)."""
    if key in run.unreadable and key not in run.reports:
        return run.unreadable[key]
    rep = run.reports.get(key)
    if rep is None or rep.ok or rep.workspace != workspace:
        return None
    return _say(rep)


def _servers(run: _Run, ns: str, ws: str, prev: WorkspaceConfig | None) -> None:
    served = run.servers[(ns, ws)]
    taken = {s.slug for s in served}
    kept: set[Key] = set()
    for server in prev.servers if prev is not None else ():
        key = (server.namespace, "MCPServer", server.name)
        why = _broken(run, key, ws)
        if why is None:
            continue
        rep = run.reports.get(key)
        if server.slug in taken:
            why = f"{why}; its last good slug {server.slug} is now used by another server"
            run.held.append(Held(ws, *key, False, c.HELD_OUT, why))
            if rep is not None:
                rep.held_out = why
            continue
        served.append(server)
        taken.add(server.slug)
        kept.add(key)
        run.held.append(Held(ws, *key, True, c.LAST_GOOD_KEPT, why))
        if rep is not None:
            rep.held = why
    _new(run, ns, ws, "MCPServer", kept)


def _members(run: _Run, ns: str, ws: str, prev: WorkspaceConfig | None) -> None:
    served = run.members[(ns, ws)]
    tokens = {m.token_hash for m in served if m.token_hash}
    kept: set[Key] = set()
    for member in prev.members if prev is not None else ():
        key = (ns, "Member", member.name)
        if key not in run.unreadable or key in run.reports:
            continue  # readable: its new version decides (see the module docstring)
        if member.token_hash and member.token_hash in tokens:
            why = (f"{run.unreadable[key]}; its last good token is now another member's")
            run.held.append(Held(ws, *key, False, c.HELD_OUT, why))
            continue
        served.append(member)
        kept.add(key)
        run.held.append(Held(ws, *key, True, c.LAST_GOOD_KEPT, run.unreadable[key]))
    _new(run, ns, ws, "Member", kept)


def _new(run: _Run, ns: str, ws: str, kind: str, kept: set[Key]) -> None:
    """Readable resources of ``kind`` with errors that were not kept: they stay out."""
    for key, rep in sorted(run.reports.items()):
        if key[1] != kind or key[0] != ns or key in kept or rep.ok or rep.workspace != ws:
            continue
        if rep.held_out is None:
            why = _say(rep)
            rep.held_out = why
            run.held.append(Held(ws, *key, False, c.HELD_OUT, why))

