"""The config Secret, the operator-to-gateway contract: what the operator writes reads back;
what cannot be read is refused with a message naming the Secret and entry, never a value."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest

from mcpyard import errors, kube
from mcpyard.compiler.config import MemberConfig, WorkspaceConfig

SEALED = {"team/key/token": "c2VhbGVkLXRleHQtbm90LXBsYWlu"}
HASH = "sha256:" + "ab" * 32


def _config() -> WorkspaceConfig:
    member = MemberConfig(
        name="alice", user="a@x", role="admin", token_hash=HASH, requests_per_minute=None
    )
    return WorkspaceConfig(
        name="eng",
        namespace="team",
        display_name="Eng",
        plan="pro",
        requests_per_minute=1200,
        members=(member,),
        revision="r1",
    )


def _b64(value: Any) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.b64encode(raw).decode()


def test_what_the_operator_writes_reads_back() -> None:
    secret = kube.config_secret("mcpyard", _config(), SEALED)
    assert secret["metadata"]["name"] == "mcpyard-ws-eng"
    assert secret["metadata"]["labels"][kube.CONFIG_LABEL] == "true"
    read = kube.read_config(secret)
    assert (read.workspace, read.config, dict(read.sealed)) == ("eng", _config(), SEALED)


def _broken(change: str) -> dict[str, Any]:
    secret = copy.deepcopy(kube.config_secret("mcpyard", _config(), SEALED))
    data = secret["data"]
    config = json.loads(base64.b64decode(data["config.json"]))
    if change == "no-secrets":
        del data["secrets.json"]
    elif change == "not-base64":
        data["config.json"] = "%%%"
    elif change == "bad-member":
        config["members"][0]["role"] = "owner"
        data["config.json"] = _b64(config)
    elif change == "other-workspace":
        secret["metadata"]["labels"][kube.WORKSPACE_LABEL] = "ops"
    elif change == "secrets-not-json":
        data["secrets.json"] = _b64(b"{not json")
    elif change == "secrets-not-strings":
        data["secrets.json"] = _b64({"team/key/token": 1})
    return secret


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param("no-secrets", "no secrets.json entry", id="missing-entry"),
        pytest.param("not-base64", "config.json is not base64", id="not-base64"),
        pytest.param("bad-member", "config.json: members.0.role", id="invalid-config"),
        pytest.param("other-workspace", "is for workspace 'eng', not 'ops'", id="wrong-workspace"),
        pytest.param("secrets-not-json", "secrets.json is not JSON", id="secrets-not-json"),
        pytest.param("secrets-not-strings", "not a map of strings", id="secrets-not-strings"),
    ],
)
def test_a_config_secret_that_cannot_be_read_says_where(change: str, message: str) -> None:
    with pytest.raises(errors.ManifestError) as caught:
        kube.read_config(_broken(change))
    text = str(caught.value)
    assert text.startswith("Secret mcpyard/mcpyard-ws-eng: ")
    assert message in text
    assert HASH not in text and "owner" not in text and SEALED["team/key/token"] not in text
