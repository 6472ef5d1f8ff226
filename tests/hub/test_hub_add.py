"""`mcpyard hub add`: the files it writes validate, the secret skeleton is real sops that the
user fills in with sops itself, and it refuses (never overwrites) clearly."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from mcpyard import cli, hub
from mcpyard.cli import _hub
from mcpyard.crypto import sops
from tests.conftest import EXAMPLES, manifest


@pytest.fixture(scope="module")
def key() -> tuple[str, str]:
    return sops.age_keygen()


@pytest.fixture(autouse=True)
def no_recipient_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MCPYARD_AGE_RECIPIENTS", "SOPS_AGE_RECIPIENTS", "MCPYARD_NAMESPACE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A GitOps repository with one Workspace, eng in team-eng, and nothing else."""
    (tmp_path / "ws" / "team-eng").mkdir(parents=True)
    (tmp_path / "ws" / "team-eng" / "workspace.yaml").write_text(yaml.safe_dump(
        manifest("Workspace", "eng", {"plan": "pro"}, namespace="team-eng")))
    return tmp_path / "ws"


@pytest.fixture
def examples(tmp_path: Path) -> Path:
    """The example repository (Workspace eng in team-eng, with servers, members, secrets)."""
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    return tmp_path / "examples"


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(["hub", "add", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _validate(capsys: pytest.CaptureFixture[str], path: Path) -> tuple[int, str]:
    code = cli.main(["validate", str(path)])
    out, _ = capsys.readouterr()
    return code, out


@pytest.mark.parametrize("name", sorted(hub.catalog()))
def test_every_entry_added_to_a_repository_validates(
    capsys: pytest.CaptureFixture[str], repo: Path, key: tuple[str, str], name: str
) -> None:
    _, recipient = key
    target = repo / "team-eng" / "hub"
    code, out, err = _run(capsys, name, "-w", "eng", "-n", "team-eng", "--dir", str(target),
                          "--age", recipient)
    assert code == 0, err
    entry = hub.catalog()[name]
    written = sorted(p.name for p in target.iterdir())
    expected = [f"{name}.yaml"] + ([f"{name}-credentials.yaml"] if entry.secrets else [])
    assert written == sorted(expected)
    assert f"wrote {target / f'{name}.yaml'}" in out
    code, problems = _validate(capsys, repo)
    assert (code, problems) == (0, "")


def test_the_skeleton_holds_encrypted_placeholders_that_sops_edits_in_place(
    capsys: pytest.CaptureFixture[str], examples: Path, key: tuple[str, str]
) -> None:
    identity, recipient = key
    repo = examples
    target = repo / "team-eng" / "hub"
    code, _, err = _run(capsys, "grafana", "-w", "eng", "-n", "team-eng", "--dir", str(target),
                        "--age", recipient)
    assert code == 0, err
    secret_file = target / "grafana-credentials.yaml"
    text = secret_file.read_text()
    assert _hub.PLACEHOLDER not in yaml.safe_load(text)["spec"]["stringData"].values()
    assert f"sops edit {secret_file}" in text
    document = yaml.safe_load(text)
    plain = sops.decrypt(document, age_key=identity)
    assert plain["spec"]["stringData"] == {"grafana_service_account_token": _hub.PLACEHOLDER}

    # the user sets the real value with sops itself; the file stays valid and verifies
    env = {**os.environ, "SOPS_AGE_KEY": identity}
    where = '["spec"]["stringData"]["grafana_service_account_token"]'
    subprocess.run([sops.binary(), "set", str(secret_file), where, '"glsa_real_value"'],
                   check=True, env=env, capture_output=True, timeout=60)
    filled = sops.decrypt(yaml.safe_load(secret_file.read_text()), age_key=identity)
    assert filled["spec"]["stringData"] == {"grafana_service_account_token": "glsa_real_value"}
    assert "glsa_real_value" not in secret_file.read_text()
    assert _validate(capsys, repo) == (0, "")

    server = yaml.safe_load((target / "grafana.yaml").read_text())
    assert server["spec"]["hub"]["env"] == {"GRAFANA_URL": "https://grafana.example.com"}


def test_an_entry_without_secrets_needs_no_recipient(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = _run(capsys, "time", "-w", "eng", "--dir", str(tmp_path / "new"))
    assert code == 0
    assert [p.name for p in (tmp_path / "new").iterdir()] == ["time.yaml"]
    doc = yaml.safe_load((tmp_path / "new" / "time.yaml").read_text())
    assert doc["metadata"] == {"name": "time", "namespace": "default"}
    assert "commit" in out


def test_recipients_come_from_the_environment_as_for_secret_encrypt(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, key: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SOPS_AGE_RECIPIENTS", key[1])
    code, _, err = _run(capsys, "notion", "-w", "eng", "--dir", str(tmp_path))
    assert code == 0, err
    assert (tmp_path / "notion-credentials.yaml").is_file()


def test_an_entry_with_secrets_and_no_recipient_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = _run(capsys, "github", "-w", "eng", "--dir", str(tmp_path))
    assert code == 2
    assert "--age" in err and "github" in err
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_existing_files_are_never_overwritten(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, key: tuple[str, str]
) -> None:
    secret_file = tmp_path / "slack-credentials.yaml"
    secret_file.write_text("# mine\n")
    code, out, err = _run(capsys, "slack", "-w", "eng", "--dir", str(tmp_path), "--age", key[1])
    assert code == 1
    assert f"{secret_file} already exists; not overwriting it" in err
    assert secret_file.read_text() == "# mine\n"
    assert not (tmp_path / "slack.yaml").exists()  # nothing half-written either
    assert out == ""


def test_an_unknown_name_fails_clearly(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = _run(capsys, "nope", "-w", "eng", "--dir", str(tmp_path))
    assert (code, out) == (1, "")
    assert "no hub entry named 'nope'" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["add", "manifest"])
@pytest.mark.parametrize(
    ("option", "value"),
    [("--workspace", "Bad Name!"), ("--workspace", "-x"), ("-n", "Team_Eng"), ("-n", "a.b")],
)
def test_a_bad_workspace_or_namespace_is_a_usage_error_naming_the_option(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str, option: str, value: str
) -> None:
    argv = ["hub", command, "time", "--workspace", "eng", f"{option}={value}"]
    if command == "add":
        argv += ["--dir", str(tmp_path)]
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    out, err = capsys.readouterr()
    assert info.value.code == 2
    assert out == ""
    flag = "--workspace/-w" if option == "--workspace" else "-n/--namespace"
    assert f"argument {flag}: invalid" in err and repr(value) in err
    assert list(tmp_path.iterdir()) == []
