"""`mcpyard hub`: list, show, search and manifest, driven through the real CLI entry point."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from mcpyard import hub
from mcpyard.api import v1alpha1
from mcpyard.cli import main


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["hub", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_list_is_a_table_of_every_entry(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "list")
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split() == ["NAME", "TITLE", "TRANSPORT", "VERSION", "SECRETS"]
    assert [row.split()[0] for row in rows] == sorted(hub.catalog())
    brave = next(row for row in rows if row.startswith("brave-search "))
    assert "BRAVE_API_KEY" in brave and "2.1.4" in brave
    time_row = next(row for row in rows if row.startswith("time "))
    assert time_row.endswith("<none>")
    # columns line up: every row starts its TITLE where the header does
    start = header.index("TITLE")
    assert all(row[start - 1] == " " and row[start] != " " for row in rows)


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_show_prints_the_entry(capsys: pytest.CaptureFixture[str], fmt: str) -> None:
    code, out, _ = _run(capsys, "show", "github", "-o", fmt)
    assert code == 0
    data = json.loads(out) if fmt == "json" else yaml.safe_load(out)
    assert data == hub.catalog()["github"].model_dump(mode="json", by_alias=True, exclude_none=True)
    assert data["secrets"][0]["as"] == "bearer"


def test_show_defaults_to_yaml(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "show", "time")
    assert code == 0
    assert yaml.safe_load(out)["command"] == ["uvx", "mcp-server-time==2026.10.19"]


def test_search_ranks_the_exact_name_first(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "search", "git")
    assert code == 0
    rows = out.splitlines()[1:]
    assert rows[0].split()[0] == "git"
    assert "github" in {row.split()[0] for row in rows}


def test_search_without_a_match_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "search", "zzyzx-qqqq")
    assert code == 1
    assert out == ""
    assert "zzyzx-qqqq" in err


@pytest.mark.parametrize("command", ["show", "manifest"])
def test_unknown_name_fails_clearly(capsys: pytest.CaptureFixture[str], command: str) -> None:
    argv = [command, "nope"] + (["--workspace", "eng"] if command == "manifest" else [])
    code, out, err = _run(capsys, *argv)
    assert code == 1
    assert out == ""
    assert "no hub entry named 'nope'" in err


@pytest.mark.parametrize("name", sorted(hub.catalog()))
def test_manifest_parses_as_an_mcpserver(capsys: pytest.CaptureFixture[str], name: str) -> None:
    code, out, _ = _run(capsys, "manifest", name, "--workspace", "eng", "-n", "team-eng")
    assert code == 0
    resource = v1alpha1.parse(yaml.safe_load(out))
    assert isinstance(resource, v1alpha1.MCPServer)
    entry = hub.catalog()[name]
    spec = resource.spec
    assert (resource.metadata.name, resource.metadata.namespace) == (name, "team-eng")
    assert spec.workspace == "eng"
    assert spec.hub is not None
    assert (spec.hub.name, spec.hub.version) == (name, entry.version)
    assert len(spec.secrets) == len(entry.secrets)
    for injection, secret in zip(spec.secrets, entry.secrets, strict=True):
        assert injection.secret_ref.name == f"{name}-credentials"
        assert injection.secret_ref.key == secret.name.lower()
        assert injection.as_ == secret.as_
        if secret.as_ == "env":
            assert injection.env == secret.name
        if secret.as_ == "header":
            assert injection.header == secret.name


def test_manifest_secret_stubs(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "manifest", "brave-search", "--workspace", "eng")
    assert code == 0
    doc = yaml.safe_load(out)
    assert "namespace" not in doc["metadata"]
    assert doc["spec"]["secrets"] == [
        {
            "secretRef": {"name": "brave-search-credentials", "key": "brave_api_key"},
            "as": "env",
            "env": "BRAVE_API_KEY",
        }
    ]
    # the comments tell how to create the secret, never with a value in it
    assert "mcpyard secret encrypt brave-search-credentials" in out


def test_manifest_of_a_remote_entry_uses_bearer(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = _run(capsys, "manifest", "github", "--workspace", "eng")
    secrets = yaml.safe_load(out)["spec"]["secrets"]
    assert secrets == [
        {
            "secretRef": {"name": "github-credentials", "key": "github_personal_access_token"},
            "as": "bearer",
        }
    ]


def test_manifest_needs_a_workspace() -> None:
    with pytest.raises(SystemExit) as info:
        main(["hub", "manifest", "time"])
    assert info.value.code == 2


def test_the_installed_command_runs_hub_list() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mcpyard", "hub", "list"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith("NAME")
