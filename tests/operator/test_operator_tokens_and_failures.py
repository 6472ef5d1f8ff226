"""Member tokens minted and rotated; broken resources explained, others unaffected; size limit."""

from __future__ import annotations

import base64
from typing import Any

from mcpyard.crypto import sops, tokens
from tests.conftest import DEMO_AGE_KEY, manifest
from tests.operator.conftest import Cluster, example_documents, wait_for


def _cond(cluster: Cluster, kind: str, ns: str, name: str, type_: str) -> tuple[str, str, str]:
    c = cluster.condition(kind, ns, name, type_)
    return (c["status"], c["reason"], c["message"]) if c else ("", "", "")


def _member_hash(cluster: Cluster, ws: str, name: str) -> str | None:
    found = cluster.config(ws)
    if found is None:
        return None
    hashes = [m["token_hash"] for m in found[0]["members"] if m["name"] == name]
    return hashes[0] if hashes else None


def _token(cluster: Cluster, ns: str, name: str) -> str | None:
    secret = cluster.get("v1", "Secret", ns, f"mcpyard-member-{name}")
    return base64.b64decode(secret["data"]["token"]).decode() if secret else None


def test_members_without_token_hash_get_a_minted_token(cluster: Cluster) -> None:
    cluster.seed_age_key()
    cluster.start()
    cluster.create(
        manifest("Workspace", "ops", namespace="team-ops"),
        manifest("Member", "dave", {"workspace": "ops", "user": "dave@x"}, namespace="team-ops"),
    )
    token = wait_for(lambda: _token(cluster, "team-ops", "dave"), what="dave's token")
    assert tokens.is_well_formed(token)
    wait_for(
        lambda: _member_hash(cluster, "ops", "dave") == tokens.hash(token),
        what="the minted hash in the config",
    )
    member = cluster.resource("Member", "team-ops", "dave")
    secret = cluster.get("v1", "Secret", "team-ops", "mcpyard-member-dave")
    assert secret is not None
    (ref,) = secret["metadata"]["ownerReferences"]
    assert (ref["kind"], ref["uid"]) == ("Member", member["metadata"]["uid"])
    wait_for(
        lambda: (
            (cluster.resource("Member", "team-ops", "dave").get("status") or {}).get("tokenSecret")
            == "mcpyard-member-dave"
        ),
        what="status.tokenSecret",
    )
    wait_for(
        lambda: _cond(cluster, "Member", "team-ops", "dave", "Ready")[:2] == ("True", "Serving"),
        what="dave ready",
    )

    # Rotation: a new annotation value mints a new token; the old one stops matching.
    cluster.patch(
        "Member",
        "team-ops",
        "dave",
        {"metadata": {"annotations": {"mcpyard.io/rotate-token": "2027-01"}}},
    )
    rotated = wait_for(
        lambda: (t := _token(cluster, "team-ops", "dave")) != token and t, what="a rotated token"
    )
    wait_for(
        lambda: _member_hash(cluster, "ops", "dave") == tokens.hash(str(rotated)),
        what="the rotated hash in the config",
    )


def test_broken_resources_are_explained_and_others_unaffected(cluster: Cluster) -> None:
    wrong, _ = sops.age_keygen()
    cluster.seed_age_key(wrong)  # not the key the examples were encrypted for
    cluster.start()
    docs = example_documents()
    docs.append(
        manifest(
            "MCPServer",
            "ghost",
            {
                "workspace": "eng",
                "proxy": {"url": "http://127.0.0.1:9/mcp"},
                "secrets": [{"secretRef": {"name": "missing", "key": "token"}, "as": "bearer"}],
            },
            namespace="team-eng",
        )
    )
    docs.append(
        manifest(
            "Member",
            "typo",
            {"workspace": "eng", "user": "t@x", "role": "owner"},
            namespace="team-eng",
        )
    )
    cluster.create(*docs)

    wait_for(
        lambda: (
            _cond(cluster, "EncryptedSecret", "team-eng", "analytics-key", "Ready")[1]
            == "DecryptionFailed"
        ),
        what="the secret's failure",
    )
    _, _, message = _cond(cluster, "EncryptedSecret", "team-eng", "analytics-key", "Ready")
    assert "wrong key" in message, message
    wait_for(
        lambda: (
            _cond(cluster, "MCPServer", "team-eng", "analytics", "Ready")[1] == "DecryptionFailed"
        ),
        what="the server's failure",
    )
    wait_for(
        lambda: (
            _cond(cluster, "MCPServer", "team-eng", "ghost", "ResolvedRefs")[:2]
            == ("False", "SecretNotFound")
        ),
        what="ghost's unknown secret",
    )
    assert "missing" in _cond(cluster, "MCPServer", "team-eng", "ghost", "ResolvedRefs")[2]
    wait_for(
        lambda: (
            _cond(cluster, "Member", "team-eng", "typo", "Accepted")[:2] == ("False", "Invalid")
        ),
        what="typo invalid",
    )
    assert "spec.role" in _cond(cluster, "Member", "team-eng", "typo", "Accepted")[2]
    # The other workspace is served; so are the healthy parts of this one.
    data, sealed = wait_for(lambda: cluster.config("data"), what="config of data")
    assert [s["slug"] for s in data["servers"]] == ["analytics", "time"]
    assert sealed == {}  # nothing decrypted: nothing sealed, nothing leaked
    eng, _ = wait_for(lambda: cluster.config("eng"), what="config of eng")
    assert "ghost" not in [s["slug"] for s in eng["servers"]]
    wait_for(
        lambda: _cond(cluster, "Member", "team-eng", "alice", "Ready")[:2] == ("True", "Serving"),
        what="alice still served",
    )

    # Rotation of age keys: add the right one beside the wrong one; a resync decrypts.
    right = DEMO_AGE_KEY.read_text()
    cluster.patch(
        "Secret",
        "mcpyard",
        "mcpyard-age",
        {"data": {"new.agekey": base64.b64encode(right.encode()).decode()}},
        api_version="v1",
    )
    cluster.patch(
        "EncryptedSecret",
        "team-eng",
        "analytics-key",
        {"metadata": {"annotations": {"touched": "1"}}},
    )
    cluster.stop()
    cluster.start()  # a restart reads the identities again
    wait_for(
        lambda: (
            _cond(cluster, "EncryptedSecret", "team-eng", "analytics-key", "Ready")[:2]
            == ("True", "Serving")
        ),
        what="decrypted with the second identity",
    )
    wait_for(
        lambda: set((cluster.config("data") or ({}, {}))[1]) == {"team-data/analytics-key/token"},
        what="sealed value in the config",
    )
    # eng has an error (ghost, never served): ghost stays out and says so; the rest of eng
    # applies (the held-resource rule).
    wait_for(
        lambda: (
            _cond(cluster, "MCPServer", "team-eng", "ghost", "Programmed")[:2]
            == ("False", "HeldOut")
        ),
        what="ghost held out",
    )
    assert _cond(cluster, "Workspace", "team-eng", "eng", "Programmed")[:2] == (
        "True",
        "ConfigGenerated",
    )


def test_a_config_past_the_size_limit_keeps_the_last_one(cluster: Cluster) -> None:
    cluster.seed_age_key()
    cluster.start(max_config_bytes=3000)

    def member(i: int) -> dict[str, Any]:
        return manifest(
            "Member",
            f"m{i}",
            {"workspace": "big", "user": f"m{i}@example.com", "tokenHash": "sha256:" + f"{i:064x}"},
            namespace="team-big",
        )

    cluster.create(
        manifest("Workspace", "big", namespace="team-big"), *[member(i) for i in range(3)]
    )
    wait_for(
        lambda: len((cluster.config("big") or ({"members": []}, {}))[0]["members"]) == 3,
        what="three members applied",
    )
    cluster.create(*[member(i) for i in range(3, 20)])
    wait_for(
        lambda: _cond(cluster, "Workspace", "team-big", "big", "Programmed")[1] == "ConfigTooLarge",
        what="the size refusal",
    )
    assert (
        "over the limit of 3000" in _cond(cluster, "Workspace", "team-big", "big", "Programmed")[2]
    )
    kept = len(cluster.config("big")[0]["members"])  # type: ignore[index]
    assert 3 <= kept < 20
