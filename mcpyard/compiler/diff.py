"""Access diff: who gains or loses which tools between two compilations.

Pure. Tool names are known only where discovered (``Observed.tools``, a server's status, or a
tools file); for a server whose tools are unknown the diff speaks of the rules that apply to it
instead (``notes: allow notes__* deny notes__fail``), so a reviewer still sees the change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from mcpyard.compiler import access, naming
from mcpyard.compiler.config import MemberConfig, ServerConfig, WorkspaceConfig
from mcpyard.jsontypes import JSONObject

# (namespace, server name) -> tool names
Tools = Mapping[tuple[str, str], Sequence[str]]


@dataclass(frozen=True)
class MemberChange:
    name: str
    user: str
    change: str
    """added, removed, activated, deactivated or changed."""
    gains: tuple[str, ...] = ()
    loses: tuple[str, ...] = ()
    details: tuple[str, ...] = ()
    """Plain-words lines: role, rate limit, rules on servers whose tools are unknown."""


@dataclass(frozen=True)
class WorkspaceChange:
    name: str
    namespace: str
    change: str
    """added, removed or changed."""
    details: tuple[str, ...] = ()
    members: tuple[MemberChange, ...] = ()


@dataclass(frozen=True)
class AccessDiff:
    workspaces: tuple[WorkspaceChange, ...] = field(default_factory=tuple)

    @property
    def empty(self) -> bool:
        return not self.workspaces

    def to_dict(self) -> JSONObject:
        return {"workspaces": [
            {"name": w.name, "namespace": w.namespace, "change": w.change,
             "details": list(w.details),
             "members": [{"name": m.name, "user": m.user, "change": m.change,
                          "gains": list(m.gains), "loses": list(m.loses),
                          "details": list(m.details)} for m in w.members]}
            for w in self.workspaces]}


def _rules_for(member: MemberConfig, server: ServerConfig) -> str:
    """The member's rules that can touch ``server``'s tools, in words."""
    prefix = f"{server.slug}{naming.SEPARATOR}"

    def relevant(globs: tuple[str, ...]) -> list[str]:
        return [g for g in globs if g.startswith(prefix) or not g[:1].isalnum()
                or access.matches([g], prefix + "x")]

    allow, deny = relevant(member.allow), relevant(member.deny)
    if not allow:
        return "no access"
    words = "all tools" if any(access.matches([g], prefix + "\0any") for g in allow) \
        else "tools " + ", ".join(allow)
    if server.tools != ServerConfig.model_fields["tools"].default:
        words += f" (server filter include {list(server.tools.include)} " \
                 f"exclude {list(server.tools.exclude)})"
    return words + (f" except {', '.join(deny)}" if deny else "")


def _grants(ws: WorkspaceConfig, member: MemberConfig, tools: Tools
            ) -> tuple[set[str], dict[str, str]]:
    """Tools the member may use (where known) and, per server with unknown tools, the rules."""
    known: set[str] = set()
    rules: dict[str, str] = {}
    for server in ws.servers:
        names = tools.get((server.namespace, server.name))
        if names is None:
            rules[server.slug] = _rules_for(member, server)
            continue
        for tool in names:
            full = naming.namespaced(server.slug, tool)
            if access.server_exposes(server.tools, tool) and access.member_may_use(member, full):
                known.add(full)
    return known, rules


def _active(member: MemberConfig) -> bool:
    # Expiry is left out on purpose: a diff compares two versions of git, not two moments.
    return not member.disabled and member.token_hash is not None


def _member(old_ws: WorkspaceConfig | None, new_ws: WorkspaceConfig | None,
            old: MemberConfig | None, new: MemberConfig | None,
            old_tools: Tools, new_tools: Tools) -> MemberChange | None:
    empty: tuple[set[str], dict[str, str]] = (set(), {})
    before = _grants(old_ws, old, old_tools) if old_ws and old and _active(old) else empty
    after = _grants(new_ws, new, new_tools) if new_ws and new and _active(new) else empty
    gains, loses = sorted(after[0] - before[0]), sorted(before[0] - after[0])
    details = []
    for slug in sorted(set(before[1]) | set(after[1])):
        was, now = before[1].get(slug, "no access"), after[1].get(slug, "no access")
        if was != now:
            details.append(f"{slug}: {was} -> {now}")
    if old and new:
        if old.role != new.role:
            details.append(f"role: {old.role} -> {new.role}")
        if old.requests_per_minute != new.requests_per_minute:
            details.append(f"rate limit: {old.requests_per_minute or 'none'} -> "
                           f"{new.requests_per_minute or 'none'} requests/min")
        if old.expires != new.expires:
            details.append(f"expires: {old.expires or 'never'} -> {new.expires or 'never'}")
    if old is None and new is not None:
        change = "added"
        if new.disabled:
            details.append("disabled")
    elif new is None and old is not None:
        change = "removed"
    elif old is not None and new is not None and _active(old) != _active(new):
        change = "activated" if _active(new) else "deactivated"
    elif gains or loses or details:
        change = "changed"
    else:
        return None
    who = new or old
    assert who is not None
    return MemberChange(who.name, who.user, change, tuple(gains), tuple(loses), tuple(details))


def diff(old: Mapping[str, WorkspaceConfig], new: Mapping[str, WorkspaceConfig], *,
         old_tools: Tools | None = None, new_tools: Tools | None = None) -> AccessDiff:
    old_tools, new_tools = old_tools or {}, new_tools or {}
    out = []
    for name in sorted(set(old) | set(new)):
        a, b = old.get(name), new.get(name)
        details = []
        if a and b:
            if a.plan != b.plan:
                details.append(f"plan: {a.plan} -> {b.plan}")
            if a.requests_per_minute != b.requests_per_minute:
                details.append(f"workspace rate limit: {a.requests_per_minute} -> "
                               f"{b.requests_per_minute} requests/min")
        elif b is not None:
            details.append(f"plan: {b.plan}")
        # A workspace added or removed adds or removes each of its servers.
        sa, sb = ({s.slug for s in w.servers} if w else set() for w in (a, b))
        details += [f"server added: {s}" for s in sorted(sb - sa)]
        details += [f"server removed: {s}" for s in sorted(sa - sb)]
        members_a = {m.name: m for m in (a.members if a else ())}
        members_b = {m.name: m for m in (b.members if b else ())}
        changes = [c for m in sorted(set(members_a) | set(members_b))
                   if (c := _member(a, b, members_a.get(m), members_b.get(m),
                                    old_tools, new_tools)) is not None]
        if a is None or b is None or details or changes:
            which = b or a
            assert which is not None
            out.append(WorkspaceChange(name, which.namespace,
                                       "added" if a is None else "removed" if b is None
                                       else "changed", tuple(details), tuple(changes)))
    return AccessDiff(tuple(out))
