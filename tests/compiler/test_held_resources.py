"""The held-resource rule, table-driven: a broken resource keeps its own last good version (or
stays out when it never served); the rest of its workspace applies, revocations first."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mcpyard import compiler, hub
from mcpyard.api import v1alpha1
from mcpyard.api.v1alpha1 import conditions as c
from mcpyard.compiler.config import WorkspaceConfig
from tests.conftest import manifest

NOW = datetime(2026, 11, 25, tzinfo=UTC)
H1, H2, H3 = ("sha256:" + d * 64 for d in "123")
WS = manifest("Workspace", "eng", {"plan": "starter"})


def server(name: str, url: str = "http://127.0.0.1:9/mcp", **spec: Any) -> dict[str, Any]:
    return manifest("MCPServer", name, {"workspace": "eng", "proxy": {"url": url}, **spec})


def member(name: str, token: str, **spec: Any) -> dict[str, Any]:
    return manifest("Member", name, {"workspace": "eng", "user": f"{name}@x",
                                     "tokenHash": token, **spec})


MISSING_SECRET = [{"secretRef": {"name": "gone", "key": "token"}, "as": "bearer"}]
GOOD = [WS, server("alpha"), server("beta"), member("alice", H1), member("bob", H2)]


def compile_(docs: list[dict[str, Any]], last_good: dict[str, WorkspaceConfig] | None = None,
             unreadable: dict[tuple[str, str, str], str] | None = None) -> compiler.Compilation:
    return compiler.compile([v1alpha1.parse(d) for d in docs], now=NOW, catalog=hub.catalog(),
                            last_good=last_good, unreadable=unreadable)


def replace(docs: list[dict[str, Any]], new: dict[str, Any] | None,
            name: str, kind: str) -> list[dict[str, Any]]:
    out = [d for d in docs if (d["kind"], d["metadata"]["name"]) != (kind, name)]
    return out if new is None else [*out, new]


@dataclass
class Case:
    after: list[dict[str, Any]]
    unreadable: dict[tuple[str, str, str], str] = field(default_factory=dict)
    servers: dict[str, str] = field(default_factory=dict)
    """slug -> the URL served (the last good one when held)."""
    members: dict[str, bool] = field(default_factory=dict)
    """name -> disabled, for every member served."""
    held: list[tuple[str, bool, str]] = field(default_factory=list)
    """(Kind/name, serving, reason) of every held resource."""


BROKEN_ALPHA = server("alpha", "http://127.0.0.1:10/mcp", secrets=MISSING_SECRET)
UNREAD = "file.yaml:1: invalid YAML"
CASES = [
    pytest.param(Case(
        after=replace(replace(GOOD, BROKEN_ALPHA, "alpha", "MCPServer"),
                      member("bob", H2, disabled=True), "bob", "Member"),
        servers={"alpha": "http://127.0.0.1:9/mcp", "beta": "http://127.0.0.1:9/mcp"},
        members={"alice": False, "bob": True},
        held=[("MCPServer/alpha", True, c.LAST_GOOD_KEPT)],
    ), id="disable-applies-while-a-server-is-broken"),
    pytest.param(Case(
        after=replace(replace(GOOD, BROKEN_ALPHA, "alpha", "MCPServer"), None, "bob", "Member"),
        servers={"alpha": "http://127.0.0.1:9/mcp", "beta": "http://127.0.0.1:9/mcp"},
        members={"alice": False},
        held=[("MCPServer/alpha", True, c.LAST_GOOD_KEPT)],
    ), id="deleting-a-member-applies-while-a-server-is-broken"),
    pytest.param(Case(
        after=replace(replace(GOOD, BROKEN_ALPHA, "alpha", "MCPServer"),
                      member("bob", H2, expires=(NOW - timedelta(hours=1)).isoformat()),
                      "bob", "Member"),
        servers={"alpha": "http://127.0.0.1:9/mcp", "beta": "http://127.0.0.1:9/mcp"},
        members={"alice": False, "bob": True},
        held=[("MCPServer/alpha", True, c.LAST_GOOD_KEPT)],
    ), id="expiry-applies-while-a-server-is-broken"),
    pytest.param(Case(
        after=replace(replace(GOOD, BROKEN_ALPHA, "alpha", "MCPServer"), None, "beta",
                      "MCPServer"),
        servers={"alpha": "http://127.0.0.1:9/mcp"},
        members={"alice": False, "bob": False},
        held=[("MCPServer/alpha", True, c.LAST_GOOD_KEPT)],
    ), id="removing-a-server-applies-while-another-is-broken"),
    pytest.param(Case(
        after=[*GOOD, server("gamma", secrets=MISSING_SECRET)],
        servers={"alpha": "http://127.0.0.1:9/mcp", "beta": "http://127.0.0.1:9/mcp"},
        members={"alice": False, "bob": False},
        held=[("MCPServer/gamma", False, c.HELD_OUT)],
    ), id="a-new-broken-server-stays-out"),
    pytest.param(Case(
        after=replace(GOOD, None, "alpha", "MCPServer"),
        unreadable={("team", "MCPServer", "alpha"): UNREAD},
        servers={"alpha": "http://127.0.0.1:9/mcp", "beta": "http://127.0.0.1:9/mcp"},
        members={"alice": False, "bob": False},
        held=[("MCPServer/alpha", True, c.LAST_GOOD_KEPT)],
    ), id="an-unreadable-server-keeps-its-last-good-version"),
    pytest.param(Case(
        after=replace(GOOD, None, "alice", "Member"),
        unreadable={("team", "Member", "alice"): UNREAD},
        servers={"alpha": "http://127.0.0.1:9/mcp", "beta": "http://127.0.0.1:9/mcp"},
        members={"alice": False, "bob": False},
        held=[("Member/alice", True, c.LAST_GOOD_KEPT)],
    ), id="an-unreadable-member-keeps-its-last-good-version"),
    pytest.param(Case(
        after=replace(GOOD, member("bob", H1), "bob", "Member"),
        servers={"alpha": "http://127.0.0.1:9/mcp", "beta": "http://127.0.0.1:9/mcp"},
        members={"alice": False},
        held=[("Member/bob", False, c.HELD_OUT)],
    ), id="a-readable-broken-member-stays-out-fail-closed"),
    pytest.param(Case(
        after=replace(replace(GOOD, None, "eng", "Workspace"), member("bob", H2, disabled=True),
                      "bob", "Member"),
        unreadable={("team", "Workspace", "eng"): UNREAD},
        servers={"alpha": "http://127.0.0.1:9/mcp", "beta": "http://127.0.0.1:9/mcp"},
        members={"alice": False, "bob": True},
        held=[("Workspace/eng", True, c.LAST_GOOD_KEPT)],
    ), id="an-unreadable-workspace-still-applies-its-members"),
    pytest.param(Case(
        after=replace(GOOD, server("alpha", secrets=MISSING_SECRET, workspace="elsewhere"),
                      "alpha", "MCPServer"),
        servers={"beta": "http://127.0.0.1:9/mcp"},
        members={"alice": False, "bob": False},
    ), id="a-server-moved-away-has-left-even-if-broken"),
    pytest.param(Case(
        after=replace(replace(GOOD, BROKEN_ALPHA, "alpha", "MCPServer"),
                      server("beta", slug="alpha"), "beta", "MCPServer"),
        servers={"alpha": "http://127.0.0.1:9/mcp"},
        members={"alice": False, "bob": False},
        held=[("MCPServer/alpha", False, c.HELD_OUT)],
    ), id="a-held-slug-taken-by-a-good-server-stays-out"),
]


@pytest.mark.parametrize("case", CASES)
def test_only_the_broken_resource_is_held(case: Case) -> None:
    before = compile_(GOOD)
    assert before.errors == ()
    out = compile_(case.after, last_good=before.workspaces, unreadable=case.unreadable)
    cfg = out.workspaces["eng"]
    assert {s.slug: s.url for s in cfg.servers} == case.servers
    assert {m.name: m.disabled or (m.expires is not None and m.expires <= NOW)
            for m in cfg.members} == case.members
    assert [(f"{h.kind}/{h.name}", h.serving, h.reason) for h in out.held] == case.held
    for h in out.held:
        assert h.workspace == "eng" and h.message
        if h.key in out.statuses:
            programmed = out.statuses[h.key]["conditions"][2]
            assert programmed["reason"] == h.reason
            assert programmed["status"] == ("True" if h.serving else "False")


def test_without_a_last_good_config_a_broken_server_stays_out() -> None:
    out = compile_([*GOOD[:1], BROKEN_ALPHA, *GOOD[2:]])
    assert [s.slug for s in out.workspaces["eng"].servers] == ["beta"]
    [held] = out.held
    assert (held.name, held.serving, held.reason) == ("alpha", False, c.HELD_OUT)
    assert "EncryptedSecret gone not found" in held.message


def test_a_held_server_stays_held_until_fixed_then_applies() -> None:
    first = compile_(GOOD)
    broken = replace(GOOD, BROKEN_ALPHA, "alpha", "MCPServer")
    second = compile_(broken, last_good=first.workspaces)
    third = compile_(broken, last_good=second.workspaces)  # held again from the held version
    assert third.workspaces["eng"] == second.workspaces["eng"]
    fixed = replace(GOOD, server("alpha", "http://127.0.0.1:11/mcp"), "alpha", "MCPServer")
    fourth = compile_(fixed, last_good=third.workspaces)
    assert fourth.held == ()
    assert {s.slug: s.url for s in fourth.workspaces["eng"].servers}["alpha"] == \
        "http://127.0.0.1:11/mcp"


def test_a_held_workspace_keeps_its_limits_and_members_keep_theirs() -> None:
    ws = manifest("Workspace", "eng", {"plan": "pro", "rateLimit": {
        "requestsPerMinute": 700, "perMemberRequestsPerMinute": 70}})
    first = compile_([ws, member("alice", H1)])
    out = compile_([member("alice", H1), member("carol", H3)], last_good=first.workspaces,
                   unreadable={("team", "Workspace", "eng"): UNREAD})
    cfg = out.workspaces["eng"]
    assert (cfg.plan, cfg.requests_per_minute) == ("pro", 700)
    assert {m.name: m.requests_per_minute for m in cfg.members} == {"alice": 70, "carol": None}
    assert ("team", "Workspace", "eng") not in out.statuses  # no document to report on
