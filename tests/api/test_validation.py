"""Resource validation: every mistake a user makes is named by kind, resource and field."""

from __future__ import annotations

from typing import Any

import pytest

from mcpyard import errors
from mcpyard.api import v1alpha1
from tests.conftest import manifest

HASH = "sha256:" + "a" * 64
ENC = "ENC[AES256_GCM,data:Zm9v,iv:YmFyYmFyYmFyYmFy,tag:dGFndGFndGFndGFndGFn,type:str]"


def server(**spec: Any) -> dict[str, Any]:
    return manifest("MCPServer", "gh", {"workspace": "eng", **spec})


def member(**spec: Any) -> dict[str, Any]:
    return manifest("Member", "alice", {"workspace": "eng", "user": "a@example.com", **spec})


PROXY = {"url": "https://mcp.example.com/mcp"}


@pytest.mark.parametrize(("doc", "field", "message"), [
    pytest.param(server(slug="GitHub", proxy=PROXY), "spec.slug", "is not a slug", id="slug-case"),
    pytest.param(server(slug="a" * 33, proxy=PROXY), "spec.slug", "at most 32", id="slug-long"),
    pytest.param(server(slug="-gh", proxy=PROXY), "spec.slug", "is not a slug", id="slug-dash"),
    pytest.param(server(), "spec", "exactly one of proxy, hosted, hub (found: none)",
                 id="no-mode"),
    pytest.param(server(proxy=PROXY, hub={"name": "github"}), "spec",
                 "exactly one of proxy, hosted, hub (found: proxy, hub)", id="two-modes"),
    pytest.param(server(proxy={"url": "ftp://x/mcp"}), "spec.proxy.url", "not an http(s) URL",
                 id="url-scheme"),
    pytest.param(server(proxy={"url": "https://u:p@x/mcp"}), "spec.proxy.url",
                 "credentials do not belong in the URL", id="url-credentials"),
    pytest.param(server(proxy={**PROXY, "transport": "websocket"}), "spec.proxy.transport",
                 "'streamable-http' or 'sse'", id="transport"),
    pytest.param(server(proxy=PROXY, secrets=[{"secretRef": {"name": "k", "key": "t"},
                                               "as": "header"}]),
                 "spec.secrets[0]", "as: header needs header", id="header-needs-name"),
    pytest.param(server(proxy=PROXY, secrets=[{"secretRef": {"name": "k", "key": "t"},
                                               "as": "env", "env": "TOKEN"}]),
                 "spec", "as: env only works for hosted servers", id="env-on-proxy"),
    pytest.param(server(proxy=PROXY, secrets=[{"secretRef": {"name": "k", "key": "t"},
                                               "as": "header", "header": "Host"}]),
                 "spec.secrets[0]", "set by the gateway itself", id="reserved-header"),
    pytest.param(server(proxy=PROXY, secrets=[{"secretRef": {"name": "k", "key": "t"},
                                               "as": "cookie"}]),
                 "spec.secrets[0].as", "'bearer', 'header' or 'env'", id="as-unknown"),
    pytest.param(server(proxy=PROXY, secrets=[
        {"secretRef": {"name": "k", "key": "a"}, "as": "header", "header": "X-Key"},
        {"secretRef": {"name": "k", "key": "b"}, "as": "header", "header": "x-key"}]),
        "spec", "secrets[1]: x-key is already set by secrets[0]", id="same-header-twice"),
    pytest.param(server(hosted={"command": ["x"], "transport": "streamable-http"}),
                 "spec.hosted", "needs port", id="http-needs-port"),
    pytest.param(server(hosted={"transport": "stdio"}), "spec.hosted", "set image",
                 id="hosted-needs-something"),
    pytest.param(server(proxy=PROXY, tools={"include": ["bad glob"]}), "spec.tools.include[0]",
                 "not a valid glob", id="glob"),
    pytest.param(server(proxy=PROXY, extra=1), "spec.extra", "unknown field", id="typo"),
    pytest.param(member(tokenHash="md5:abc"), "spec.tokenHash", "should match pattern",
                 id="token-hash"),
    pytest.param(member(expires="2027-01-01"), "spec.expires", "timezone", id="expires-no-tz"),
    pytest.param(member(expires="next year"), "spec.expires", "datetime", id="expires-text"),
    pytest.param(member(role="owner"), "spec.role", "'admin' or 'member'", id="role"),
    pytest.param(member(access={"deny": ["github__[x"]}), "spec.access.deny[0]",
                 "not a valid glob", id="access-glob"),
    pytest.param(manifest("Workspace", "eng", {"plan": "gold"}), "spec.plan",
                 "'free', 'starter', 'pro' or 'business'", id="plan"),
    pytest.param(manifest("Workspace", "eng", {"rateLimit": {"requestsPerMinute": 0}}),
                 "spec.rateLimit.requestsPerMinute", "greater than or equal to 1", id="limit"),
    pytest.param(manifest("Workspace", "Eng"), "metadata.name", "not a valid name",
                 id="ws-name"),
    pytest.param(manifest("EncryptedSecret", "k", {"stringData": {"token": "plain"}}),
                 "spec", "not a sops-encrypted value", id="plaintext-secret"),
    pytest.param(manifest("EncryptedSecret", "k", {"stringData": {"bad key": ENC}}),
                 "spec", "not a valid key", id="secret-key"),
])
def test_invalid_resources_name_the_field(doc: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(errors.InvalidResource) as exc:
        v1alpha1.parse(doc)
    found = [(p.field, p.message) for p in exc.value.problems]
    assert any(f == field and message in m for f, m in found), found
    for p in exc.value.problems:
        assert str(p).startswith(f"team/{doc['kind']}/{doc['metadata']['name']}: ")


def test_unknown_kind_is_named() -> None:
    with pytest.raises(errors.InvalidResource) as exc:
        v1alpha1.parse(manifest("Gateway", "x"))
    assert "Gateway is not a mcpyard kind" in str(exc.value)


def test_valid_resources_round_trip_in_camel_case() -> None:
    doc = server(slug="gh", proxy={**PROXY, "timeoutSeconds": 5},
                 secrets=[{"secretRef": {"name": "k", "key": "t"}, "as": "header",
                           "header": "X-Api-Key"}],
                 tools={"include": ["*"], "exclude": ["delete_*"]})
    res = v1alpha1.parse(doc)
    assert isinstance(res, v1alpha1.MCPServer)
    assert res.spec.secrets[0].as_ == "header"
    dumped = res.model_dump(by_alias=True, exclude_unset=True)
    assert dumped["spec"]["proxy"]["timeoutSeconds"] == 5
    assert dumped["spec"]["secrets"][0]["as"] == "header"
    assert res.ref == "team/MCPServer/gh"


def test_member_fields() -> None:
    res = v1alpha1.parse(member(tokenHash=HASH, expires="2027-01-01T00:00:00Z",
                                access={"allow": ["gh__*"], "deny": ["gh__delete_*"]}))
    assert isinstance(res, v1alpha1.Member)
    assert res.spec.expires is not None and res.spec.expires.year == 2027
    assert res.spec.access is not None and res.spec.access.deny == ["gh__delete_*"]


def test_sops_block_is_kept_as_is() -> None:
    sops = {"age": [{"recipient": "age1x", "enc": "---"}], "mac": "ENC[...]", "version": "3.11"}
    res = v1alpha1.parse(manifest("EncryptedSecret", "k", {"stringData": {"token": ENC}},
                                  sops=sops))
    assert isinstance(res, v1alpha1.EncryptedSecret)
    assert res.sops == sops
