"""The unsealer both adapters use: sops decrypts, every value is sealed at once, all or nothing."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

import pytest

from mcpyard import errors
from mcpyard.compiler import config
from mcpyard.crypto import unseal
from mcpyard.crypto.vault import Vault
from tests.crypto.test_sops import (
    VALUE,
    as_api_server_stores,
    assert_clean,
    encrypted,
    load_document,
)

if TYPE_CHECKING:  # fixtures come from tests/crypto/conftest.py, which is not importable
    from tests.crypto.conftest import AgeKey, SopsEncrypt

TYPED_MANIFEST = """\
apiVersion: mcpyard.io/v1alpha1
kind: EncryptedSecret
metadata: {name: github-token, namespace: team-eng}
spec:
  stringData:
    token: ghp_live-value-0123456789
    port: 8080
"""


def test_every_value_is_sealed_under_its_identity(age_key: AgeKey) -> None:
    vault = Vault(secrets.token_bytes(32))
    doc = encrypted(age_key, {"token": VALUE, "user": "octocat"})
    sealed = unseal.unseal(vault, "team-eng", "github-token", doc, age_key=age_key.identity)
    assert sealed == ("team-eng/github-token/token", "team-eng/github-token/user")
    assert sealed[0] == config.secret_identity("team-eng", "github-token", "token")
    assert config.secret_of(sealed[0]) == ("team-eng", "github-token")
    assert vault.reveal(sealed[0]) == VALUE
    assert vault.reveal(config.SecretRef(namespace="team-eng", name="github-token",
                                         key="user")) == "octocat"


def test_the_operator_case_without_the_whole_document_mac(age_key: AgeKey) -> None:
    vault = Vault(secrets.token_bytes(32))
    stored = as_api_server_stores(encrypted(age_key))
    sealed = unseal.unseal(vault, "team-eng", "github-token", stored,
                           age_key=age_key.identity, verify_mac=False)
    assert [vault.reveal(i) for i in sealed] == [VALUE]


def test_a_failure_seals_nothing_and_names_the_secret(
    age_key: AgeKey, other_age_key: AgeKey
) -> None:
    vault = Vault(secrets.token_bytes(32))
    with pytest.raises(errors.SecretError) as exc:
        unseal.unseal(vault, "team-eng", "github-token", encrypted(age_key),
                      age_key=other_age_key.identity)
    assert_clean(exc, age_key, other_age_key)
    assert len(vault) == 0


def test_a_value_that_is_not_a_string_refuses_the_whole_secret(
    age_key: AgeKey, plain_sops: SopsEncrypt
) -> None:
    vault = Vault(secrets.token_bytes(32))
    doc = load_document(plain_sops(TYPED_MANIFEST, age_key.recipient))
    with pytest.raises(errors.SecretError, match=r"^secret team-eng/github-token: "
                       r"stringData\.port is not a string$") as exc:
        unseal.unseal(vault, "team-eng", "github-token", doc, age_key=age_key.identity)
    assert_clean(exc, age_key)
    assert len(vault) == 0
