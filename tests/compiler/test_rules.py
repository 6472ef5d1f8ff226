"""Compiler behaviour, table-driven: one rule per case, the problem named where it belongs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mcpyard import compiler, hub
from mcpyard.api import v1alpha1
from mcpyard.compiler import access, naming
from mcpyard.compiler.config import MemberConfig, ToolFilter
from tests.conftest import manifest

NOW = datetime(2026, 11, 25, tzinfo=UTC)
H1, H2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64


def build(*docs: dict[str, Any], **kw: Any) -> compiler.Compilation:
    return compiler.compile([v1alpha1.parse(d) for d in docs], now=NOW, catalog=hub.catalog(),
                            **kw)


WS = manifest("Workspace", "eng", {"plan": "starter"})
ECHO = manifest("MCPServer", "echo", {"workspace": "eng",
                                      "proxy": {"url": "http://127.0.0.1:9/mcp"}})


def member(name: str, **spec: Any) -> dict[str, Any]:
    return manifest("Member", name, {"workspace": "eng", "user": f"{name}@x", **spec})


def test_expired_member_is_inactive_not_an_error() -> None:
    out = build(WS, ECHO, member("old", tokenHash=H1,
                                 expires=(NOW - timedelta(days=1)).isoformat()))
    assert out.errors == ()
    status = out.statuses[("team", "Member", "old")]
    ready = status["conditions"][-1]
    assert (status["active"], ready["status"], ready["reason"]) == (False, "False", "Expired")
    assert out.workspaces["eng"].members[0].expires is not None  # the gateway re-checks
    assert out.statuses[("team", "Workspace", "eng")]["members"] == 0


def test_disabled_member_is_kept_marked_and_not_counted() -> None:
    out = build(WS, member("carol", tokenHash=H1, disabled=True))
    assert out.workspaces["eng"].members[0].disabled is True
    assert out.statuses[("team", "Member", "carol")]["conditions"][-1]["reason"] == "Disabled"


def test_a_bad_resource_never_blocks_other_workspaces() -> None:
    other = manifest("Workspace", "data", namespace="data")
    bad = manifest("MCPServer", "x", {"workspace": "data", "hub": {"name": "nope"}},
                   namespace="data")
    out = build(WS, ECHO, member("a", tokenHash=H1), other, bad)
    assert out.failed_workspaces == {"data"}
    assert [s.slug for s in out.workspaces["eng"].servers] == ["echo"]
    assert out.workspaces["data"].servers == ()
    assert out.statuses[("data", "MCPServer", "x")]["conditions"][1]["reason"] == \
        "HubEntryNotFound"


def test_rate_limits_follow_plan_override_and_member() -> None:
    ws = manifest("Workspace", "eng", {"plan": "business", "rateLimit": {
        "requestsPerMinute": 2000, "perMemberRequestsPerMinute": 300}})
    out = build(ws, member("a", tokenHash=H1), member("b", tokenHash=H2,
                                                      rateLimit={"requestsPerMinute": 10}))
    cfg = out.workspaces["eng"]
    assert cfg.requests_per_minute == 2000
    assert [m.requests_per_minute for m in cfg.members] == [300, 10]
    assert build(WS).workspaces["eng"].requests_per_minute == 300


def test_hub_entry_expands_to_a_command_locally_and_a_deployment_in_a_cluster() -> None:
    srv = manifest("MCPServer", "time", {"workspace": "eng", "hub": {"name": "time"}})
    local = build(WS, srv).workspaces["eng"].servers[0]
    assert (local.mode, local.transport, local.hub_entry) == ("hub", "stdio", "time")
    assert local.command and local.command[0] == "uvx"
    cluster = build(WS, srv, target="cluster")
    server = cluster.workspaces["eng"].servers[0]
    assert server.transport == "streamable-http" and server.command is None
    assert server.url == "http://mcp-time.team.svc.cluster.local:8080/mcp"
    kinds = sorted(c.object["kind"] for c in cluster.children)
    assert kinds == ["Deployment", "Service"]


def test_env_secret_becomes_a_secret_by_reference_never_by_value() -> None:
    sec = manifest("EncryptedSecret", "k", {"stringData": {"t": "ENC[AES256_GCM,data:Zm9v,"
                                                                "iv:YmFy,tag:YmF6,type:str]"}})
    srv = manifest("MCPServer", "crm", {"workspace": "eng", "hosted": {"image": "crm:1"},
                                        "secrets": [{"secretRef": {"name": "k", "key": "t"},
                                                     "as": "env", "env": "CRM_KEY"}]})
    out = build(WS, sec, srv, target="cluster")
    secret = next(c.object for c in out.children if c.object["kind"] == "Secret")
    assert "data" not in secret and "stringData" not in secret
    assert secret["metadata"]["annotations"]["mcpyard.io/secret-refs"] == \
        '{"CRM_KEY": "team/k/t"}'
    local = build(WS, sec, srv, target="local")
    assert local.workspaces["eng"].servers == ()
    assert local.errors == ()
    assert [p.field for p in local.problems] == ["spec.hosted.command"]


def test_observed_state_feeds_counts_and_readiness() -> None:
    observed = compiler.Observed(tools={("team", "echo"): ["echo", "add", "delete_all"]},
                                 server_health={("team", "echo"): (False, "connection refused")})
    srv = manifest("MCPServer", "echo", {"workspace": "eng", "proxy": {"url": "http://x/mcp"},
                                         "tools": {"exclude": ["delete_*"]}})
    out = build(WS, srv, member("a", tokenHash=H1, access={"allow": ["echo__echo"]}),
                observed=observed)
    assert out.statuses[("team", "MCPServer", "echo")]["toolCount"] == 2
    assert out.statuses[("team", "Workspace", "eng")]["tools"] == 2
    assert out.statuses[("team", "Member", "a")]["tools"] == 1
    ready = out.statuses[("team", "Workspace", "eng")]["conditions"][-1]
    assert (ready["status"], ready["reason"]) == ("False", "Degraded")


def test_revision_changes_with_config_only() -> None:
    a = build(WS, ECHO).workspaces["eng"].revision
    assert a == build(ECHO, WS).workspaces["eng"].revision
    assert a != build(WS, ECHO, member("a", tokenHash=H1)).workspaces["eng"].revision


@pytest.mark.parametrize(("slug", "tool", "expected"), [
    ("github", "create_issue", "github__create_issue"),
    ("a" * 32, "t" * 40, None),
])
def test_namespaced_names(slug: str, tool: str, expected: str | None) -> None:
    name = naming.namespaced(slug, tool)
    assert len(name) <= naming.MAX_NAME
    assert name == naming.namespaced(slug, tool)  # stable
    if expected:
        assert name == expected
    else:
        assert name.startswith(f"{slug}__t") and name != naming.namespaced(slug, "t" * 41)
    assert naming.split(name) is not None and naming.split(name)[0] == slug  # type: ignore


def test_access_rules_deny_wins_and_filters_apply() -> None:
    m = MemberConfig(name="b", user="b", role="member", token_hash=H1,
                     allow=("github__*", "slack__send_message"), deny=("github__delete_*",),
                     requests_per_minute=None)
    assert access.member_may_use(m, "github__create_issue")
    assert not access.member_may_use(m, "github__delete_repo")
    assert not access.member_may_use(m, "slack__read")
    assert not access.member_may_use(m, "GITHUB__create_issue")  # case-sensitive
    f = ToolFilter(include=("*",), exclude=("delete_*",))
    assert access.server_exposes(f, "create") and not access.server_exposes(f, "delete_x")
