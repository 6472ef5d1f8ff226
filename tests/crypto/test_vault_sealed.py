"""Sealed values leave the vault as text and come back only under the same key and identity."""

from __future__ import annotations

import base64
import secrets

import pytest

from mcpyard import errors
from mcpyard.crypto.vault import Vault

KEY = secrets.token_bytes(32)


def test_a_sealed_value_travels_to_another_vault_with_the_same_key() -> None:
    source = Vault(KEY)
    source.seal("ns/api/token", "s3cret-value")
    text = source.export_sealed("ns/api/token")
    assert "s3cret-value" not in text
    assert b"s3cret-value" not in base64.b64decode(text)
    target = Vault(KEY)
    target.import_sealed("ns/api/token", text)
    assert target.reveal("ns/api/token") == "s3cret-value"


def test_export_is_stable_until_the_value_is_sealed_again() -> None:
    vault = Vault(KEY)
    vault.seal("ns/api/token", "v")
    first = vault.export_sealed("ns/api/token")
    assert vault.export_sealed("ns/api/token") == first
    vault.seal("ns/api/token", "v")
    assert vault.export_sealed("ns/api/token") != first


@pytest.mark.parametrize(
    ("key", "identity", "text"),
    [
        pytest.param(secrets.token_bytes(32), "ns/api/token", None, id="other-key"),
        pytest.param(KEY, "ns/other/token", None, id="other-identity"),
        pytest.param(KEY, "ns/api/token", "not base64!", id="garbage"),
        pytest.param(KEY, "ns/api/token", base64.b64encode(b"short").decode(), id="too-short"),
    ],
)
def test_import_refuses_what_does_not_unseal(key: bytes, identity: str, text: str | None) -> None:
    source = Vault(KEY)
    source.seal("ns/api/token", "s3cret-value")
    sealed = text if text is not None else source.export_sealed("ns/api/token")
    target = Vault(key)
    with pytest.raises(errors.SecretError) as caught:
        target.import_sealed(identity, sealed)
    assert identity in str(caught.value)
    assert "s3cret-value" not in str(caught.value)
    assert identity not in target


def test_export_of_an_unknown_identity_names_it() -> None:
    with pytest.raises(errors.SecretError, match="ns/none/key"):
        Vault(KEY).export_sealed("ns/none/key")
