"""The example manifests, applied to a cluster, become gateway configuration and workloads."""

from __future__ import annotations

import base64
import json
from typing import Any

from mcpyard.crypto.vault import Vault
from tests.operator.conftest import API, OPERATOR_NS, Cluster, every_request_is_allowed, wait_for

PLAINTEXT = "demo-analytics-key-0001"  # examples/make-secrets.sh
IDENTITY = "team-eng/analytics-key/token"


def _status(cluster: Cluster, kind: str, ns: str, name: str) -> dict[str, Any]:
    return cluster.resource(kind, ns, name).get("status") or {}


def _conditions(cluster: Cluster, kind: str, ns: str, name: str) -> dict[str, tuple[str, str]]:
    return {
        c["type"]: (c["status"], c["reason"])
        for c in _status(cluster, kind, ns, name).get("conditions") or []
    }


def _master_key(cluster: Cluster) -> bytes:
    secret = cluster.get("v1", "Secret", OPERATOR_NS, "mcpyard-master-key")
    assert secret is not None
    return base64.b64decode(secret["data"]["master.key"])


def test_examples_end_to_end(cluster: Cluster, examples: list[dict[str, Any]]) -> None:
    cluster.seed_age_key()
    cluster.start()
    cluster.create(*examples)

    # The gateway configuration of each workspace, with sealed (never plain) secret values.
    config, sealed = wait_for(lambda: cluster.config("eng"), what="config of eng")
    assert [s["slug"] for s in config["servers"]] == ["analytics", "notes", "time"]
    assert [(m["name"], m["disabled"]) for m in config["members"]] == [
        ("alice", False),
        ("bob", False),
        ("carol", True),
    ]
    assert set(sealed) == {IDENTITY}
    vault = Vault(_master_key(cluster))
    vault.import_sealed(IDENTITY, sealed[IDENTITY])
    assert vault.reveal(IDENTITY) == PLAINTEXT
    data, data_sealed = wait_for(lambda: cluster.config("data"), what="config of data")
    assert [s["slug"] for s in data["servers"]] == ["analytics", "time"]
    assert set(data_sealed) == {"team-data/analytics-key/token"}
    secret = cluster.get("v1", "Secret", OPERATOR_NS, "mcpyard-ws-eng")
    assert secret is not None
    assert secret["metadata"]["labels"]["mcpyard.io/config"] == "true"
    assert secret["metadata"]["labels"]["mcpyard.io/workspace"] == "eng"

    # Hosted servers: Deployment + Service owned by their MCPServer, env Secret filled.
    for ns, server in [
        ("team-eng", "notes"),
        ("team-eng", "time"),
        ("team-data", "analytics"),
        ("team-data", "clock"),
    ]:
        owner = cluster.resource("MCPServer", ns, server)
        for api_version, kind in [("apps/v1", "Deployment"), ("v1", "Service")]:
            obj = wait_for(
                lambda a=api_version, k=kind, n=ns, s=server: cluster.get(a, k, n, f"mcp-{s}"),
                what=f"{kind} of {server}",
            )
            (ref,) = obj["metadata"]["ownerReferences"]
            assert (ref["kind"], ref["name"], ref["uid"]) == (
                "MCPServer",
                server,
                owner["metadata"]["uid"],
            )
    env = cluster.get("v1", "Secret", "team-data", "mcp-analytics-env")
    assert env is not None
    assert base64.b64decode(env["data"]["ANALYTICS_TOKEN"]).decode() == PLAINTEXT
    deployment = cluster.get("apps/v1", "Deployment", "team-data", "mcp-analytics")
    assert deployment is not None
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert set(annotations) == {"mcpyard.io/config-hash", "mcpyard.io/env-secret-hash"}

    # Statuses: every resource says something true.
    ws = wait_for(
        lambda: (
            _status(cluster, "Workspace", "team-eng", "eng").get("url")
            and _status(cluster, "Workspace", "team-eng", "eng")
        ),
        what="workspace status",
    )
    assert (ws["url"], ws["servers"], ws["members"], ws["observedGeneration"]) == (
        "https://gw.example.com/ws/eng/mcp",
        3,
        2,
        1,
    )
    for kind, ns, name in [
        ("Workspace", "team-eng", "eng"),
        ("Workspace", "team-data", "data"),
        ("MCPServer", "team-eng", "notes"),
        ("Member", "team-eng", "alice"),
        ("EncryptedSecret", "team-eng", "analytics-key"),
    ]:
        expected = {
            "Accepted": ("True", "Valid"),
            "ResolvedRefs": ("True", "Resolved"),
            "Programmed": ("True", "ConfigGenerated"),
        }
        wait_for(
            lambda k=kind, n=ns, m=name, e=expected: (  # type: ignore[misc]
                {t: _conditions(cluster, k, n, m).get(t) for t in e} == e
            ),
            what=f"conditions of {kind} {name}",
        )
    assert _conditions(cluster, "Member", "team-eng", "carol")["Ready"] == ("False", "Disabled")
    wait_for(
        lambda: (
            _conditions(cluster, "EncryptedSecret", "team-eng", "analytics-key")["Ready"]
            == ("True", "Serving")
        ),
        what="secret decrypted",
    )
    assert _status(cluster, "EncryptedSecret", "team-eng", "analytics-key")["keys"] == ["token"]
    server = _status(cluster, "MCPServer", "team-data", "clock")
    assert (server["slug"], server["mode"]) == ("time", "hosted")

    # Edits: disable a member, change a server; the right objects change.
    before = wait_for(lambda: cluster.get("apps/v1", "Deployment", "team-eng", "mcp-notes"))
    cluster.patch("Member", "team-eng", "bob", {"spec": {"disabled": True}})
    cluster.patch(
        "MCPServer", "team-eng", "notes", {"spec": {"hosted": {"env": {"NOTES_MODE": "strict"}}}}
    )
    wait_for(
        lambda: (
            [
                m["disabled"]
                for m in cluster.config("eng")[0]["members"]  # type: ignore[index]
                if m["name"] == "bob"
            ]
            == [True]
        ),
        what="bob disabled in the config",
    )
    wait_for(
        lambda: _status(cluster, "Workspace", "team-eng", "eng")["members"] == 1,
        what="one active member",
    )
    wait_for(
        lambda: _conditions(cluster, "Member", "team-eng", "bob")["Ready"] == ("False", "Disabled"),
        what="bob disabled",
    )

    def env_changed() -> bool:
        after = cluster.get("apps/v1", "Deployment", "team-eng", "mcp-notes")
        assert after is not None
        container = after["spec"]["template"]["spec"]["containers"][0]
        return {"name": "NOTES_MODE", "value": "strict"} in container["env"] and after["spec"][
            "template"
        ]["metadata"]["annotations"] != before["spec"]["template"]["metadata"]["annotations"]

    wait_for(env_changed, what="the notes Deployment to change")
    generation = cluster.resource("MCPServer", "team-eng", "notes")["metadata"]["generation"]
    wait_for(
        lambda: (
            _status(cluster, "MCPServer", "team-eng", "notes")["observedGeneration"]
            == generation
            == 2
        ),
        what="observedGeneration 2",
    )

    # Delete a server: its children go (the operator deletes them; the emulator has no GC).
    cluster.delete("MCPServer", "team-eng", "notes")
    wait_for(
        lambda: (
            cluster.get("apps/v1", "Deployment", "team-eng", "mcp-notes") is None
            and cluster.get("v1", "Service", "team-eng", "mcp-notes") is None
        ),
        what="the notes children to go",
    )
    wait_for(
        lambda: (
            [s["slug"] for s in cluster.config("eng")[0]["servers"]]  # type: ignore[index]
            == ["analytics", "time"]
        ),
        what="notes out of the config",
    )
    assert cluster.get(API, "MCPServer", "team-eng", "notes") is None

    # Delete a member: out of the config.
    cluster.delete("Member", "team-eng", "alice")
    wait_for(
        lambda: (
            [m["name"] for m in cluster.config("eng")[0]["members"]]  # type: ignore[index]
            == ["bob", "carol"]
        ),
        what="alice out of the config",
    )
    wait_for(
        lambda: _status(cluster, "Workspace", "team-eng", "eng")["members"] == 0,
        what="no active member",
    )
    # Delete a secret a server still names: an error, so the server says so and keeps its
    # last good version; the rest of eng still applies (the held-resource rule): narrowing a
    # member's access does not wait for the fix.
    cluster.delete("EncryptedSecret", "team-eng", "analytics-key")
    wait_for(
        lambda: (
            _conditions(cluster, "MCPServer", "team-eng", "analytics")["ResolvedRefs"]
            == ("False", "SecretNotFound")
        ),
        what="analytics without its secret",
    )
    wait_for(
        lambda: (
            _conditions(cluster, "MCPServer", "team-eng", "analytics")["Programmed"]
            == ("True", "LastGoodKept")
        ),
        what="analytics held at its last good version",
    )
    narrowed = {"allow": ["notes__*", "time__*"], "deny": ["notes__word_count", "time__*"]}
    cluster.patch("Member", "team-eng", "bob", {"spec": {"access": narrowed}})

    def bob_deny() -> list[Any]:
        members = cluster.config("eng")[0]["members"]  # type: ignore[index]
        return [m["deny"] for m in members if m["name"] == "bob"]

    wait_for(lambda: bob_deny() == [narrowed["deny"]], what="bob's access narrowed")
    servers = cluster.config("eng")[0]["servers"]  # type: ignore[index]
    assert "analytics" in [s["slug"] for s in servers]
    assert _conditions(cluster, "Workspace", "team-eng", "eng")["Programmed"] == (
        "True",
        "ConfigGenerated",
    )
    assert set(cluster.config("data")[1]) == {"team-data/analytics-key/token"}  # type: ignore[index]

    # Delete a workspace: its config Secret goes; its members say why they are not served.
    cluster.delete("Workspace", "team-data", "data")
    wait_for(lambda: cluster.config("data") is None, what="the data config to go")
    wait_for(
        lambda: (
            _conditions(cluster, "Member", "team-data", "erin")["ResolvedRefs"]
            == ("False", "WorkspaceNotFound")
        ),
        what="erin without workspace",
    )
    assert cluster.config("eng") is not None

    cluster.stop()
    _no_plaintext_anywhere(cluster)
    every_request_is_allowed(cluster)


def _no_plaintext_anywhere(cluster: Cluster) -> None:
    encoded = base64.b64encode(PLAINTEXT.encode()).decode()
    env_secrets = {"mcp-analytics-env"}  # a hosted server's environment: by design
    for key, version in cluster.emulator.all_versions():
        resource, _, name = key
        if resource.plural == "secrets" and name in env_secrets:
            continue
        text = json.dumps(version)
        assert PLAINTEXT not in text, key
        assert encoded not in text, key
        if resource.plural != "secrets":
            assert "AGE-SECRET-KEY" not in text, key
    for line in cluster.records.lines:
        assert PLAINTEXT not in line
        assert encoded not in line
        assert "AGE-SECRET-KEY" not in line
