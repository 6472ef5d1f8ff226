"""`mcpyard secret encrypt`, run as a user runs it, with the real sops binary."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mcpyard import cli
from mcpyard.api import v1alpha1
from mcpyard.crypto import sops

VALUE = "sk-live-abcdef0123456789"


@pytest.fixture(scope="module")
def keys() -> list[tuple[str, str]]:
    return [sops.age_keygen(), sops.age_keygen()]


@pytest.fixture(autouse=True)
def no_recipient_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MCPYARD_AGE_RECIPIENTS", "SOPS_AGE_RECIPIENTS", "MCPYARD_NAMESPACE"):
        monkeypatch.delenv(name, raising=False)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(["secret", "encrypt", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_secret_encrypt_prints_a_valid_encrypted_secret_that_decrypts_back(
    keys: list[tuple[str, str]],
) -> None:
    (identity, recipient), _ = keys
    done = subprocess.run(
        [
            sys.executable, "-m", "mcpyard", "secret", "encrypt", "github-token",
            "-n", "team-eng", "--from-literal", f"token={VALUE}", "--age", recipient,
        ],
        capture_output=True,
        text=True,
        check=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("SOPS_")},
    )  # fmt: skip
    assert VALUE not in done.stdout
    assert VALUE not in done.stderr
    resource = v1alpha1.parse(yaml.safe_load(done.stdout))
    assert isinstance(resource, v1alpha1.EncryptedSecret)
    assert resource.key == ("team-eng", "EncryptedSecret", "github-token")
    assert resource.metadata.annotations["kustomize.toolkit.fluxcd.io/decrypt"] == "Disabled"
    plain = sops.decrypt(yaml.safe_load(done.stdout), age_key=identity)
    assert plain["spec"]["stringData"] == {"token": VALUE}


def test_from_file_and_several_recipients(
    keys: list[tuple[str, str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (id1, r1), (id2, r2) = keys
    pem = tmp_path / "key.pem"
    pem.write_text("-----BEGIN KEY-----\nabc\n-----END KEY-----\n")
    code, out, err = run(
        capsys, "multi", "--from-literal", f"token={VALUE}", "--from-file", f"pem={pem}",
        "--age", r1, "--age", r2,
    )  # fmt: skip
    assert (code, err) == (0, "")
    doc = yaml.safe_load(out)
    assert doc["metadata"]["namespace"] == "default"
    assert "BEGIN KEY" not in out
    for identity in (id1, id2):
        data = sops.decrypt(doc, age_key=identity)["spec"]["stringData"]
        assert data == {"pem": pem.read_text(), "token": VALUE}


@pytest.mark.parametrize("variable", ["MCPYARD_AGE_RECIPIENTS", "SOPS_AGE_RECIPIENTS"])
def test_recipients_from_the_environment(
    keys: list[tuple[str, str]],
    variable: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (id1, r1), (id2, r2) = keys
    monkeypatch.setenv(variable, f"{r1},{r2}")
    code, out, _ = run(capsys, "env-secret", "--from-literal", f"token={VALUE}")
    assert code == 0
    doc = yaml.safe_load(out)
    assert [r["recipient"] for r in doc["sops"]["age"]] == [r1, r2]
    for identity in (id1, id2):
        assert sops.decrypt(doc, age_key=identity)["spec"]["stringData"]["token"] == VALUE


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["--from-literal", VALUE], "the '=' is missing", id="missing-equals"),
        pytest.param(
            ["--from-literal", "token=a", "--from-literal", "token=b"],
            "key 'token' given twice",
            id="duplicate-key",
        ),
        pytest.param(["--from-literal", f"={VALUE}"], "the key is empty", id="empty-key"),
        pytest.param(["--from-literal", f"bad key={VALUE}"], "not a valid key", id="bad-key"),
        pytest.param(["--from-literal", "token="], "empty value", id="empty-value"),
        pytest.param(["--from-file", "token"], "expected KEY=PATH", id="file-missing-equals"),
        pytest.param(["--from-file", "token=/nonexistent/x"], "No such file", id="no-file"),
        pytest.param([], "at least one --from-literal", id="no-data"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message_and_no_value(
    keys: list[tuple[str, str]], argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "name", *argv, "--age", keys[0][1])
    assert code == 2
    assert out == ""
    assert message in err
    assert VALUE not in err


def test_bad_name_exits_2(keys: list[tuple[str, str]], capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "Not_A_Name", "--from-literal", "k=v", "--age", keys[0][1])
    assert code == 2
    assert "metadata.name" in err


def test_no_recipient_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "name", "--from-literal", f"token={VALUE}")
    assert (code, out) == (2, "")
    assert "no age recipient" in err


@pytest.mark.parametrize("recipient", ["age1nope", "AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQ"])
def test_bad_recipient_exits_2_without_value_or_identity(
    recipient: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "name", "--from-literal", f"token={VALUE}", "--age", recipient)
    assert (code, out) == (2, "")
    assert "not an age recipient" in err
    assert VALUE not in err
    assert "QQQQ" not in err


def test_binary_file_is_refused(
    keys: list[tuple[str, str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blob = tmp_path / "blob"
    blob.write_bytes(b"\xff\xfe\x00binary")
    code, _, err = run(capsys, "name", "--from-file", f"k={blob}", "--age", keys[0][1])
    assert code == 2
    assert "not UTF-8 text" in err
