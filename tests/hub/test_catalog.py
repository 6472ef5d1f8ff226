"""The hub catalog: every entry loads, names and pins are consistent, search ranks sensibly."""

from __future__ import annotations

import importlib.resources
import json
import os
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from mcpyard import errors, hub
from mcpyard.hub import _catalog

CATALOG_DIR = Path(str(importlib.resources.files("mcpyard.hub") / "catalog"))
FILES = sorted(CATALOG_DIR.glob("*.yaml"))
BRIEFED = {
    "time", "git", "fetch", "everything", "memory", "filesystem", "sequential-thinking",
    "github", "slack", "brave-search", "postgres",
}  # fmt: skip


def test_every_file_is_an_entry_named_after_it() -> None:
    entries = hub.catalog()
    assert FILES, "the catalog folder is empty"
    assert sorted(entries) == sorted(f.stem for f in FILES)
    for name, entry in entries.items():
        assert entry.name == name


def test_the_catalog_holds_the_promised_entries() -> None:
    assert set(hub.catalog()) >= BRIEFED


@pytest.mark.parametrize("file", FILES, ids=[f.stem for f in FILES])
def test_each_entry_file_validates_on_its_own(file: Path) -> None:
    entry = _catalog._load(file)
    assert entry.name == file.stem
    assert entry.title and entry.description and entry.version


@pytest.mark.parametrize("name", sorted(hub.catalog()))
def test_stdio_commands_pin_the_entry_version(name: str) -> None:
    entry = hub.catalog()[name]
    if entry.transport != "stdio" or entry.command is None:
        assert entry.url is not None, f"{name}: neither a stdio command nor a remote url"
        return
    tool, *args = entry.command
    assert tool in ("uvx", "npx"), f"{name}: starts with {tool}"
    assert entry.package is not None, f"{name}: a stdio entry names its package"
    registry, package = entry.package.split(":", 1)
    if tool == "uvx":
        assert registry == "pypi"
        assert args[0] == f"{package}=={entry.version}"
    else:
        assert registry == "npm"
        assert args[0] == "-y", f"{name}: npx needs -y to run unattended"
        assert args[1] == f"{package}@{entry.version}"


@pytest.mark.parametrize("name", sorted(hub.catalog()))
def test_versions_are_pinned_not_ranges(name: str) -> None:
    version = hub.catalog()[name].version
    assert version == "remote" or re.fullmatch(r"\d+(\.\d+)+", version), version


def test_secrets_are_described_and_env_secrets_are_env_names() -> None:
    for entry in hub.catalog().values():
        for secret in entry.secrets:
            assert secret.description.strip()
            if secret.as_ == "env":
                assert re.fullmatch(r"[A-Z_][A-Z0-9_]*", secret.name), secret.name


def test_public_api_is_exported_and_sorted() -> None:
    assert hub.__all__ == sorted(hub.__all__)
    assert {"catalog", "get", "search", "HubEntry", "HubSecret"} <= set(hub.__all__)
    assert all(hasattr(hub, name) for name in hub.__all__)


def test_get_returns_the_entry_or_none() -> None:
    entry = hub.get("time")
    assert entry is not None and entry.package == "pypi:mcp-server-time"
    assert hub.get("no-such-server") is None
    assert hub.get("TIME") is None  # names are exact


def test_catalog_returns_a_copy() -> None:
    first = hub.catalog()
    first.pop("time")
    assert "time" in hub.catalog()


def test_search_puts_an_exact_name_first() -> None:
    names = [e.name for e in hub.search("git")]
    assert names[0] == "git"
    assert "github" in names


def test_search_is_case_insensitive_and_deterministic() -> None:
    assert [e.name for e in hub.search("GitHub")] == [e.name for e in hub.search("github")]
    assert hub.search("github")[0].name == "github"
    assert hub.search("search") == hub.search("search")


def test_search_needs_every_word_and_ranks_by_field() -> None:
    assert [e.name for e in hub.search("postgres sql")] == ["postgres"]
    assert hub.search("postgres kubernetes-nonsense") == []
    # "web" is a tag of brave-search and of fetch, and a word of other descriptions at most
    web = [e.name for e in hub.search("web")]
    assert set(web[:2]) == {"brave-search", "fetch"}


def test_search_with_no_words_lists_everything_by_name() -> None:
    assert [e.name for e in hub.search("  ")] == sorted(hub.catalog())


def test_a_broken_entry_names_the_file_and_field(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        "name: broken\ntitle: B\ndescription: d\nhomepage: https://example.com\n"
        "version: '1'\ntransport: stdio\ncommand: [npx, x]\n"
        "secrets: [{name: TOKEN, as: cookie, description: d}]\n"
    )
    with pytest.raises(errors.ManifestError) as info:
        _catalog._load(broken)
    assert "broken.yaml" in str(info.value)
    assert "secrets[0].as" in str(info.value)


def test_an_entry_under_the_wrong_file_name_is_refused(tmp_path: Path) -> None:
    misnamed = tmp_path / "other.yaml"
    misnamed.write_text((CATALOG_DIR / "time.yaml").read_text())
    with pytest.raises(errors.ManifestError, match=r"other\.yaml: name: 'time'"):
        _catalog._load(misnamed)


def test_invalid_yaml_names_the_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ntitle: [unclosed\n")
    with pytest.raises(errors.ManifestError, match=r"bad\.yaml:\d+: not valid YAML"):
        _catalog._load(bad)


@pytest.mark.anyio
async def test_the_time_entry_really_serves_utc() -> None:
    # uv may be missing here, so run the console script that the entry's PyPI package installs
    # (the venv has it) with the entry's own arguments after the package spec.
    entry = hub.get("time")
    assert entry is not None and entry.command is not None
    package = entry.command[1].split("==")[0]
    script = Path(sys.executable).parent / package
    assert script.exists(), f"{package} is not installed in the test environment"
    params = StdioServerParameters(
        command=str(script), args=entry.command[2:], env={**os.environ, **entry.env}
    )
    with anyio.fail_after(30):
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            tools = {t.name for t in (await session.list_tools()).tools}
            assert "get_current_time" in tools
            result = await session.call_tool("get_current_time", {"timezone": "UTC"})
    assert not result.is_error
    text = result.content[0].text  # type: ignore[union-attr]
    data = json.loads(text)
    assert data["timezone"] == "UTC"
    served = datetime.fromisoformat(data["datetime"])
    assert served.utcoffset() is not None and served.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert abs((datetime.now(UTC) - served).total_seconds()) < 300
