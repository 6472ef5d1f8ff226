"""The sops bridge, with the real sops binary and age keys made by the tests."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from mcpyard import errors, manifests
from mcpyard.api import v1alpha1
from mcpyard.crypto import sops

if TYPE_CHECKING:  # fixtures come from tests/crypto/conftest.py, which is not importable
    from tests.crypto.conftest import AgeKey, SopsEncrypt

VALUE = "ghp_live-value-0123456789"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

PLAIN_MANIFEST = """\
# written by hand, encrypted with plain `sops --encrypt` (no --mac-only-encrypted)
apiVersion: mcpyard.io/v1alpha1
kind: EncryptedSecret
metadata:
  name: github-token
  namespace: team-eng
  labels: {team: eng, tier: "1"}
  annotations:
    kustomize.toolkit.fluxcd.io/decrypt: Disabled
spec:
  stringData:
    token: ghp_live-value-0123456789   # the real one
    other: "yes"
"""


def load_document(text: str, name: str = "secret.yaml") -> dict[str, Any]:
    """The one document of ``text`` exactly as the manifest loader hands it on."""
    loaded = manifests.parse_texts([(name, text)])
    assert not loaded.errors, loaded.errors
    assert not loaded.problems, loaded.problems
    (document,) = loaded.documents.values()
    return document


def encrypted(key: AgeKey, data: dict[str, str] | None = None) -> dict[str, Any]:
    text = sops.encrypt_secret(
        "github-token", "team-eng", data or {"token": VALUE}, [key.recipient]
    )
    return load_document(text)


def assert_clean(exc: pytest.ExceptionInfo[errors.SecretError], *keys: AgeKey) -> None:
    """The message names the secret and never carries a value or key material."""
    message = str(exc.value)
    assert "team-eng/github-token" in message
    assert VALUE not in message
    assert "AGE-SECRET-KEY" not in message.upper()
    for key in keys:
        assert key.identity not in message
    assert "ENC[" not in message


def test_binary_is_the_real_sops_not_the_python_wrapper() -> None:
    path = Path(sops.binary())
    assert os.access(path, os.X_OK)
    assert path.read_bytes()[:4] == b"\x7fELF"


def test_encrypt_then_decrypt_round_trip(age_key: AgeKey) -> None:
    data = {"token": VALUE, "second": "ünïcode ✓", "looks-like-yaml": "yes", "zero": "0123"}
    doc = encrypted(age_key, data)
    assert doc["spec"]["stringData"].keys() == data.keys()
    # Every value is a sops ciphertext (a short value like "yes" may well occur by chance
    # somewhere in the random age stanzas, so the check is per field, not on the whole text).
    for key, value in data.items():
        sealed = doc["spec"]["stringData"][key]
        assert sealed.startswith("ENC[AES256_GCM,data:") and value not in sealed
    plain = sops.decrypt(doc, age_key=age_key.identity)
    assert plain["spec"]["stringData"] == data
    assert plain["metadata"]["name"] == "github-token"
    assert "sops" not in plain


def test_encrypted_manifest_has_the_promised_shape(age_key: AgeKey) -> None:
    text = sops.encrypt_secret(
        "github-token", "team-eng", {"b": "2", "a": "1"}, [age_key.recipient]
    )
    resource = v1alpha1.parse(yaml.safe_load(text))
    assert isinstance(resource, v1alpha1.EncryptedSecret)
    assert resource.metadata.annotations == {"kustomize.toolkit.fluxcd.io/decrypt": "Disabled"}
    assert list(resource.spec.string_data) == ["a", "b"]  # sorted, as the API server keeps them
    assert resource.sops is not None
    assert resource.sops["mac_only_encrypted"] is True
    assert resource.sops["encrypted_regex"] == "^(data|stringData)$"
    assert [r["recipient"] for r in resource.sops["age"]] == [age_key.recipient]
    assert list(yaml.safe_load(text)) == ["apiVersion", "kind", "metadata", "spec", "sops"]


def test_decrypt_reads_the_key_file_argument(age_key: AgeKey, tmp_path: Path) -> None:
    key_file = age_key.write(tmp_path / "keys.txt")
    assert sops.decrypt(encrypted(age_key), age_key_file=key_file)["spec"]["stringData"] == {
        "token": VALUE
    }


def test_decrypt_reads_the_identity_from_the_environment_as_sops_does(
    age_key: AgeKey, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_age_env: None
) -> None:
    doc = encrypted(age_key)
    monkeypatch.setenv("SOPS_AGE_KEY", age_key.identity)
    assert sops.decrypt(doc)["spec"]["stringData"]["token"] == VALUE
    monkeypatch.delenv("SOPS_AGE_KEY")
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(age_key.write(tmp_path / "k.txt")))
    assert sops.decrypt(doc)["spec"]["stringData"]["token"] == VALUE


def test_an_argument_identity_wins_over_the_environment(
    age_key: AgeKey, other_age_key: AgeKey, monkeypatch: pytest.MonkeyPatch, no_age_env: None
) -> None:
    doc = encrypted(age_key)
    monkeypatch.setenv("SOPS_AGE_KEY", age_key.identity)
    with pytest.raises(errors.SecretError, match="wrong key"):
        sops.decrypt(doc, age_key=other_age_key.identity)


def test_wrong_key_is_a_clear_error_without_plaintext(
    age_key: AgeKey, other_age_key: AgeKey, no_age_env: None
) -> None:
    with pytest.raises(errors.SecretError, match="wrong key") as exc:
        sops.decrypt(encrypted(age_key), age_key=other_age_key.identity)
    assert_clean(exc, age_key, other_age_key)


def test_no_identity_configured(age_key: AgeKey, no_age_env: None) -> None:
    with pytest.raises(errors.SecretError, match="no age identity configured") as exc:
        sops.decrypt(encrypted(age_key))
    assert_clean(exc, age_key)


def test_missing_key_file(age_key: AgeKey, tmp_path: Path, no_age_env: None) -> None:
    with pytest.raises(errors.SecretError, match="key file cannot be opened") as exc:
        sops.decrypt(encrypted(age_key), age_key_file=tmp_path / "absent.txt")
    assert_clean(exc, age_key)


def test_malformed_identity_is_not_echoed(age_key: AgeKey, no_age_env: None) -> None:
    bad = "AGE-SECRET-KEY-1" + "Q" * 40
    with pytest.raises(errors.SecretError, match="malformed") as exc:
        sops.decrypt(encrypted(age_key), age_key=bad)
    assert "QQQQ" not in str(exc.value)
    assert_clean(exc, age_key)


def test_a_tampered_value_fails_its_integrity_check(age_key: AgeKey) -> None:
    doc = encrypted(age_key)
    value = doc["spec"]["stringData"]["token"]
    data_start = value.index("data:") + len("data:")
    flipped = "A" if value[data_start] != "A" else "B"
    doc["spec"]["stringData"]["token"] = value[:data_start] + flipped + value[data_start + 1 :]
    with pytest.raises(errors.SecretError, match="integrity check") as exc:
        sops.decrypt(doc, age_key=age_key.identity)
    assert_clean(exc, age_key)


def test_a_removed_value_is_a_mac_mismatch(age_key: AgeKey) -> None:
    doc = encrypted(age_key, {"token": VALUE, "backup": "other-secret-value"})
    del doc["spec"]["stringData"]["backup"]
    with pytest.raises(errors.SecretError, match="MAC mismatch") as exc:
        sops.decrypt(doc, age_key=age_key.identity)
    assert_clean(exc, age_key)
    assert "other-secret-value" not in str(exc.value)


def test_a_tampered_mac_is_refused(age_key: AgeKey) -> None:
    doc = encrypted(age_key)
    doc["sops"]["lastmodified"] = "2001-01-01T00:00:00Z"  # the MAC's associated data
    with pytest.raises(errors.SecretError, match="MAC") as exc:
        sops.decrypt(doc, age_key=age_key.identity)
    assert_clean(exc, age_key)


def test_a_plain_manifest_is_not_sops_encrypted(age_key: AgeKey) -> None:
    doc = {
        "apiVersion": "mcpyard.io/v1alpha1",
        "kind": "EncryptedSecret",
        "metadata": {"name": "github-token", "namespace": "team-eng"},
        "spec": {"stringData": {"token": VALUE}},
    }
    with pytest.raises(errors.SecretError, match="not sops-encrypted") as exc:
        sops.decrypt(doc, age_key=age_key.identity)
    assert_clean(exc, age_key)


def test_a_document_written_by_plain_sops_verifies_after_the_loader(
    age_key: AgeKey, plain_sops: SopsEncrypt
) -> None:
    doc = load_document(plain_sops(PLAIN_MANIFEST, age_key.recipient))
    assert "mac_only_encrypted" not in doc["sops"]
    plain = sops.decrypt(doc, age_key=age_key.identity)
    assert plain["spec"]["stringData"] == {"token": VALUE, "other": "yes"}
    assert plain["metadata"]["labels"] == {"team": "eng", "tier": "1"}


def test_plain_sops_macs_cover_unencrypted_fields(age_key: AgeKey, plain_sops: SopsEncrypt) -> None:
    doc = load_document(plain_sops(PLAIN_MANIFEST, age_key.recipient))
    doc["metadata"]["labels"]["tier"] = "2"
    with pytest.raises(errors.SecretError, match="MAC mismatch") as exc:
        sops.decrypt(doc, age_key=age_key.identity)
    assert_clean(exc, age_key)


def test_plain_sops_scalars_that_pyyaml_reads_differently_still_verify(
    age_key: AgeKey, plain_sops: SopsEncrypt
) -> None:
    text = PLAIN_MANIFEST.replace(
        '  labels: {team: eng, tier: "1"}\n',
        "  generation: 3\n  x-when: 2025-01-01T10:00:00Z\n  x-day: 2025-01-01\n"
        "  x-offset: 2025-06-01T10:00:00+02:00\n  x-ratio: 1.5\n  x-on: yes\n  x-none: null\n",
    )
    doc = load_document(plain_sops(text, age_key.recipient))
    plain = sops.decrypt(doc, age_key=age_key.identity)
    assert plain["spec"]["stringData"]["token"] == VALUE


def as_api_server_stores(doc: dict[str, Any]) -> dict[str, Any]:
    """Added server-side metadata, every mapping re-serialised with sorted keys."""
    stored = copy.deepcopy(doc)
    stored["metadata"].update(
        uid="0b5c1f6e-5d7a-4d8e-9b1c-3f2a1e0d9c8b",
        resourceVersion="4711",
        generation=1,
        creationTimestamp="2026-01-01T00:00:00Z",
    )

    def sort(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: sort(value[k]) for k in sorted(value)}
        if isinstance(value, list):
            return [sort(v) for v in value]
        return value

    result: dict[str, Any] = sort(stored)
    return result


def test_mac_only_encrypted_survives_the_api_server(age_key: AgeKey) -> None:
    stored = as_api_server_stores(encrypted(age_key, {"zz": "last", "token": VALUE}))
    plain = sops.decrypt(stored, age_key=age_key.identity)
    assert plain["spec"]["stringData"] == {"token": VALUE, "zz": "last"}


def test_plain_sops_needs_verify_mac_false_after_the_api_server(
    age_key: AgeKey, plain_sops: SopsEncrypt
) -> None:
    stored = as_api_server_stores(load_document(plain_sops(PLAIN_MANIFEST, age_key.recipient)))
    with pytest.raises(errors.SecretError, match="MAC mismatch"):
        sops.decrypt(stored, age_key=age_key.identity)
    plain = sops.decrypt(stored, age_key=age_key.identity, verify_mac=False)
    assert plain["spec"]["stringData"]["token"] == VALUE


def test_verify_mac_false_still_checks_each_value(age_key: AgeKey) -> None:
    doc = encrypted(age_key)
    value = doc["spec"]["stringData"]["token"]
    doc["spec"]["stringData"]["token"] = value.replace("data:", "data:AA", 1)
    with pytest.raises(errors.SecretError, match="integrity check"):
        sops.decrypt(doc, age_key=age_key.identity, verify_mac=False)


def test_two_recipients_each_can_decrypt(
    age_key: AgeKey, other_age_key: AgeKey, no_age_env: None
) -> None:
    text = sops.encrypt_secret(
        "github-token", "team-eng", {"token": VALUE}, [age_key.recipient, other_age_key.recipient]
    )
    doc = load_document(text)
    assert {r["recipient"] for r in doc["sops"]["age"]} == {
        age_key.recipient,
        other_age_key.recipient,
    }
    for key in (age_key, other_age_key):
        assert sops.decrypt(doc, age_key=key.identity)["spec"]["stringData"]["token"] == VALUE
    stranger, _ = sops.age_keygen()
    with pytest.raises(errors.SecretError, match="wrong key"):
        sops.decrypt(doc, age_key=stranger)


@pytest.mark.parametrize(
    ("name", "namespace", "data", "message"),
    [
        pytest.param("Bad_Name", "team-eng", {"token": "v"}, "metadata.name", id="name"),
        pytest.param("ok", "Team Eng", {"token": "v"}, "metadata.namespace", id="namespace"),
        pytest.param("ok", "team-eng", {"a key": "v"}, "not a valid key", id="key"),
        pytest.param("ok", "team-eng", {"token": ""}, "empty value", id="empty-value"),
    ],
)
def test_encrypt_refuses_bad_input_before_running_sops(
    age_key: AgeKey, name: str, namespace: str, data: dict[str, str], message: str
) -> None:
    with pytest.raises(errors.InvalidResource, match=message):
        sops.encrypt_secret(name, namespace, data, [age_key.recipient])


@pytest.mark.parametrize("recipients", [[], ["age1notarecipient"], ["AGE-SECRET-KEY-1ABCDEFGH"]])
def test_encrypt_refuses_bad_recipients(recipients: list[str]) -> None:
    with pytest.raises(errors.SecretError, match="recipient") as exc:
        sops.encrypt_secret("ok", "team-eng", {"token": VALUE}, recipients)
    assert "team-eng/ok" in str(exc.value)
    assert "ABCDEFGH" not in str(exc.value)


def test_encrypt_ignores_a_sops_config_in_the_working_directory(
    age_key: AgeKey, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".sops.yaml").write_text("creation_rules:\n  - age: age1broken\n")
    monkeypatch.chdir(tmp_path)
    doc = encrypted(age_key)
    assert sops.decrypt(doc, age_key=age_key.identity)["spec"]["stringData"]["token"] == VALUE


def test_age_keygen_makes_a_matching_pair() -> None:
    identity, recipient = sops.age_keygen()
    assert identity.startswith("AGE-SECRET-KEY-1")
    assert recipient.startswith("age1")
    assert sops.age_keygen()[0] != identity


@pytest.mark.parametrize("namespace", ["team-eng", "team-data"])
def test_example_secrets_decrypt_with_the_demo_key(namespace: str, no_age_env: None) -> None:
    path = EXAMPLES / "workspaces" / namespace / "secrets" / "analytics-key.yaml"
    doc = load_document(path.read_text(), str(path))
    assert doc["sops"]["mac_only_encrypted"] is True
    plain = sops.decrypt(doc, age_key_file=EXAMPLES / "demo.agekey")
    assert plain["metadata"] == {
        "annotations": {"kustomize.toolkit.fluxcd.io/decrypt": "Disabled"},
        "name": "analytics-key",
        "namespace": namespace,
    }
    assert plain["spec"]["stringData"] == {"token": "demo-analytics-key-0001"}


def test_demo_key_is_marked_demo_only_and_matches_the_sops_config() -> None:
    lines = (EXAMPLES / "demo.agekey").read_text().splitlines()
    assert lines[0] == "# DEMO ONLY - public in this repository; never use it for real secrets"
    recipient = next(x.split(": ", 1)[1] for x in lines if x.startswith("# public key: "))
    config = yaml.safe_load((EXAMPLES / "workspaces" / ".sops.yaml").read_text())
    (rule,) = config["creation_rules"]
    assert rule["age"] == recipient
    assert rule["encrypted_regex"] == "^(data|stringData)$"
    assert rule["mac_only_encrypted"] is True
