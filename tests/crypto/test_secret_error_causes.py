"""A secret's error carries its cause and its kind as data: callers never read its message
(the operator tries age identities one by one on MalformedIdentity; the gateway and the
operator report ``cause``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from mcpyard import errors, manifests
from mcpyard.crypto import sops

if TYPE_CHECKING:  # fixtures come from tests/crypto/conftest.py, which is not importable
    from tests.crypto.conftest import AgeKey


def _encrypted(key: AgeKey) -> dict[str, Any]:
    text = sops.encrypt_secret("api", "eng", {"k": "v"}, [key.recipient])
    loaded = manifests.parse_texts([("secret.yaml", text)])
    (document,) = loaded.documents.values()
    return document


def test_a_malformed_identity_is_its_own_class(age_key: AgeKey, no_age_env: None) -> None:
    with pytest.raises(errors.MalformedIdentity) as exc:
        sops.decrypt(_encrypted(age_key), age_key="AGE-SECRET-KEY-1" + "Q" * 40)
    assert str(exc.value) == f"secret eng/api: {exc.value.cause}"
    assert "malformed" in exc.value.cause and "QQQQ" not in str(exc.value)


def test_a_wrong_key_names_the_cause_alone(age_key: AgeKey, other_age_key: AgeKey,
                                           no_age_env: None) -> None:
    with pytest.raises(errors.SecretError) as exc:
        sops.decrypt(_encrypted(age_key), age_key=other_age_key.identity)
    assert not isinstance(exc.value, errors.MalformedIdentity)
    assert exc.value.cause.startswith("wrong key")
    assert str(exc.value) == f"secret eng/api: {exc.value.cause}"


def test_no_sops_metadata_is_a_cause_too(age_key: AgeKey) -> None:
    document = _encrypted(age_key)
    del document["sops"]
    with pytest.raises(errors.SecretError) as exc:
        sops.decrypt(document)
    assert exc.value.cause == "not sops-encrypted (no sops metadata)"
    assert str(exc.value) == "secret eng/api: not sops-encrypted (no sops metadata)"


def test_a_cause_given_by_no_one_is_the_message() -> None:
    assert errors.SecretError("the vault is not open yet").cause == "the vault is not open yet"
