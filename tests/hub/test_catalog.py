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
import jsonschema
import pytest
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from mcpyard import errors, hub
from mcpyard.api import hub as hub_api
from mcpyard.hub import _catalog

CATALOG_DIR = Path(str(importlib.resources.files("mcpyard.hub") / "catalog"))
FILES = sorted(CATALOG_DIR.glob("*.yaml"))
# The servers issue 14 names (Jira/Confluence as atlassian, Cloudflare as its documentation
# server, Puppeteer/Playwright as both).
BRIEFED = {
    "github", "gitlab", "slack", "notion", "linear", "atlassian", "stripe", "sentry",
    "postgres", "sqlite", "redis", "mongodb", "elasticsearch", "filesystem", "git", "fetch",
    "time", "memory", "everything", "sequential-thinking", "brave-search", "google-drive",
    "google-maps", "playwright", "puppeteer", "kubernetes", "docker", "aws", "cloudflare-docs",
    "grafana", "prometheus",
}  # fmt: skip


def test_every_file_is_an_entry_named_after_it() -> None:
    entries = hub.catalog()
    assert FILES, "the catalog folder is empty"
    assert sorted(entries) == sorted(f.stem for f in FILES)
    for name, entry in entries.items():
        assert entry.name == name


def test_the_catalog_holds_the_promised_entries() -> None:
    assert set(hub.catalog()) >= BRIEFED
    assert len(hub.catalog()) >= 30


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
        assert entry.version == "remote"
        return
    launch = entry.launch()
    assert entry.package == f"{ {'uvx': 'pypi', 'npx': 'npm'}[launch.runner]}:{launch.package}"
    assert launch.version == entry.version


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        pytest.param(["npx", "-y", "@a/b@1.2.3", "--x"],
                     hub_api.Launch("npx", "@a/b", "1.2.3", None, (), ("--x",)), id="npx-scoped"),
        pytest.param(["uvx", "pkg==2025.1.2", "a"],
                     hub_api.Launch("uvx", "pkg", "2025.1.2", "pkg", (), ("a",)), id="uvx"),
        pytest.param(["uvx", "--with", "mcp<2", "--from", "pkg==1.0", "exe"],
                     hub_api.Launch("uvx", "pkg", "1.0", "exe", ("mcp<2",), ()), id="uvx-from"),
    ],
)  # fmt: skip
def test_launch_reads_what_a_command_runs(command: list[str], expected: hub_api.Launch) -> None:
    assert hub_api.launch(command) == expected


@pytest.mark.parametrize(
    ("command", "message"),
    [
        pytest.param(["npx", "pkg@1.0"], "starts with -y", id="npx-without-y"),
        pytest.param(["npx", "-y", "pkg"], "pin an exact version", id="npx-unpinned"),
        pytest.param(["npx", "-y", "pkg@latest"], "pin an exact version", id="npx-latest"),
        pytest.param(["uvx", "pkg>=1"], "pin an exact version", id="uvx-range"),
        pytest.param(["uvx", "--with"], "needs a value", id="uvx-dangling-option"),
        pytest.param(["docker", "run", "x"], "uvx or npx", id="other-runner"),
    ],
)  # fmt: skip
def test_launch_refuses_an_unpinned_or_unknown_command(command: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        hub_api.launch(command)


def test_a_command_that_pins_another_version_than_the_entry_is_refused(tmp_path: Path) -> None:
    text = (CATALOG_DIR / "time.yaml").read_text().replace('version: "2026.10.19"',
                                                          'version: "2026.1.1"')
    (tmp_path / "time.yaml").write_text(text)
    with pytest.raises(errors.ManifestError, match=r"time\.yaml: command pins 2026\.10\.19"):
        _catalog._load(tmp_path / "time.yaml")


@pytest.mark.parametrize("name", sorted(hub.catalog()))
def test_each_entry_has_a_license_and_a_valid_config_schema(name: str) -> None:
    entry = hub.catalog()[name]
    assert entry.license
    schema = entry.config.json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    # the entry's own env and every documented default and example are valid settings
    placeholders = {name: "x" for name in entry.config.required}
    assert not list(validator.iter_errors({**placeholders, **entry.env}))
    for key, setting in entry.config.properties.items():
        for value in [setting.default, *(setting.examples or [])]:
            if value is not None:
                assert not list(validator.iter_errors({**placeholders, key: value})), key


def test_config_problems_name_the_variable() -> None:
    entry = hub.get("clickhouse")
    assert entry is not None
    problems = entry.config.problems({"CLICKHOUSE_HOST": "h", "CLICKHOUSE_SECURE": "yes"})
    assert problems == [("CLICKHOUSE_USER", "is required"),
                        ("CLICKHOUSE_SECURE", "must be one of true, false, not 'yes'")]
    strict = entry.config.model_copy(update={"additional_properties": False})
    assert strict.problems({"CLICKHOUSE_HOST": "h", "CLICKHOUSE_USER": "u", "NOPE": "1"}) == [
        ("NOPE", "is not a setting of this entry (settings: CLICKHOUSE_ALLOW_WRITE_ACCESS, "
                 "CLICKHOUSE_HOST, CLICKHOUSE_PORT, CLICKHOUSE_SECURE, CLICKHOUSE_USER)")]


def test_a_secret_is_never_a_plain_setting(tmp_path: Path) -> None:
    text = (CATALOG_DIR / "grafana.yaml").read_text().replace(
        "    GRAFANA_ORG_ID:", "    GRAFANA_SERVICE_ACCOUNT_TOKEN:\n      description: a token\n"
                              "    GRAFANA_ORG_ID:")
    (tmp_path / "grafana.yaml").write_text(text)
    with pytest.raises(errors.ManifestError, match="GRAFANA_SERVICE_ACCOUNT_TOKEN is a secret"):
        _catalog._load(tmp_path / "grafana.yaml")


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


@pytest.mark.parametrize(("query", "best"), [
    pytest.param("postgres sql", "postgres", id="name-and-description"),
    pytest.param("search the web", "brave-search", id="what-it-does"),
    pytest.param("browser automation screenshots", "playwright", id="plain-words"),
    pytest.param("send a message to my team chat", "slack", id="synonyms"),
    pytest.param("read files on my disk", "filesystem", id="stemming"),
])
def test_search_ranks_by_what_servers_do(query: str, best: str) -> None:
    """The hub ranks with the workspace tool search's BM25 (mcpyard.discovery.search)."""
    assert hub.search(query)[0].name == best


def test_search_leaves_out_entries_that_share_no_word() -> None:
    assert hub.search("zzyzx-nonsense") == []
    assert "time" not in {e.name for e in hub.search("postgres sql")}


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
