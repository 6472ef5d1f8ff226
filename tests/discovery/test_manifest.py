"""Capability manifests and the docs rendered from them, as pure functions: deterministic,
valid against the published JSON Schema, and honest about what the server did not say."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from mcpyard.compiler.config import Injection, SecretRef, ServerConfig, ToolFilter
from mcpyard.discovery import docs, manifest, search

SCHEMA = json.loads((Path(__file__).parents[2] / "docs" / "schemas" /
                     "manifest.schema.json").read_text())

TOOLS: list[dict[str, Any]] = [
    {"name": "create_issue", "description": "Create a new issue in a repository. Needs push "
     "access.", "inputSchema": {"type": "object", "properties": {
         "repo": {"type": "string", "description": "owner/name"},
         "title": {"type": "string"},
         "labels": {"type": "array", "items": {"type": "string"}},
         "draft": {"type": "boolean", "default": False}}, "required": ["repo", "title"]},
     "annotations": {"readOnlyHint": False, "destructiveHint": False}},
    {"name": "list_issues", "description": "List the issues of a repository",
     "inputSchema": {"type": "object", "properties": {
         "state": {"type": "string", "enum": ["open", "closed"]},
         "since": {"type": "string", "format": "date-time"}}},
     "annotations": {"readOnlyHint": True}},
    {"name": "delete_branch", "description": "Delete a branch.",
     "inputSchema": {"type": "object", "properties": {"branch": {"type": "string"}},
                     "required": ["branch"]},
     "annotations": {"readOnlyHint": False}},
    {"name": "frobnicate", "description": "<script>alert(1)</script> Does | things.",
     "inputSchema": {"type": "object"}},
    {"name": "hidden_tool", "description": "Filtered out.", "inputSchema": {"type": "object"}},
]


def github() -> ServerConfig:
    return ServerConfig(
        slug="github", name="github", namespace="team", mode="proxy",
        transport="streamable-http", url="https://mcp.example.com/mcp?key=SECRET",
        tools=ToolFilter(exclude=("hidden_*",)),
        injections=(Injection(ref=SecretRef(namespace="team", name="gh", key="token"),
                              as_="bearer", target="Authorization"),))


def tracker() -> ServerConfig:
    return ServerConfig(slug="tracker", name="tracker", namespace="team", mode="hosted",
                        transport="stdio", command=("tracker-mcp",), env={"LOG": "info"})


def built() -> list[dict[str, Any]]:
    one = manifest.build("eng", github(), manifest.Reported(
        tools=TOOLS, prompts=[{"name": "triage", "description": "Triage issues",
                               "arguments": [{"name": "repo", "required": True}]}],
        resources=[{"uri": "repo://readme", "name": "readme"}]))
    two = manifest.build("eng", tracker(), manifest.Reported(tools=[
        {"name": "get_issue", "description": "Get one issue.", "inputSchema": {}}]))
    return manifest.link([one, two])


def test_manifest_is_deterministic_and_follows_the_schema() -> None:
    first, second = built(), built()
    assert json.dumps(first) == json.dumps(second)
    for m in first:
        jsonschema.validate(m, SCHEMA)


def test_manifest_says_what_each_tool_does_and_what_it_needs() -> None:
    gh, tr = built()
    tools = {t["originalName"]: t for t in gh["tools"]}
    assert "hidden_tool" not in tools  # the server's filter applies
    assert tools["create_issue"]["effect"] == "additive"
    assert tools["list_issues"]["effect"] == "read-only"
    assert tools["delete_branch"]["effect"] == "destructive"  # the spec's default
    assert tools["frobnicate"]["effect"] == "unknown"  # no annotations: never guessed
    assert tools["create_issue"]["purpose"] == "Create a new issue in a repository."
    assert tools["create_issue"]["writes"] == ["issue"]
    assert tools["list_issues"]["reads"] == ["issue"]
    assert tools["create_issue"]["example"] == {
        "name": "github__create_issue", "arguments": {"repo": "<repo>", "title": "<title>"}}
    assert tools["list_issues"]["example"]["arguments"] == {
        "state": "open", "since": "2025-01-31T12:00:00Z"}
    assert gh["needs"]["secrets"] == [{"secret": "gh", "key": "token", "as": "bearer",
                                       "target": "Authorization"}]
    assert "SECRET" not in json.dumps(gh)  # a URL's query string never reaches a manifest
    assert gh["pairsWith"] == [{"server": "tracker", "shared": ["issue"]}]
    assert tr["pairsWith"] == [{"server": "github", "shared": ["issue"]}]
    assert ("4 tools (1 read-only, 1 destructive, 1 additive, 1 not declaring their effect)"
            in gh["summary"])
    assert gh["whenToUse"].startswith("Use github when a task involves")


def test_a_member_sees_only_what_it_may_use() -> None:
    gh, _ = built()
    cut = manifest.visible(gh, lambda name: name.startswith("github__list"))
    assert cut is not None and [t["name"] for t in cut["tools"]] == ["github__list_issues"]
    assert cut["prompts"] == [] and cut["resources"] == []
    assert manifest.visible(gh, lambda name: False) is None


def test_enrich_keeps_a_usable_summary_only() -> None:
    gh, _ = built()
    assert manifest.enrich(gh, "  Files   issues.\n")["summary"] == "Files issues."
    assert manifest.enrich(gh, "  ")["summarySource"] == "generated"


def test_docs_escape_server_text_and_show_tables() -> None:
    gh, _ = built()
    page = docs.server_html(gh)
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
    assert "<th>argument</th>" in page and 'id="tool-github__create_issue"' in page
    md = docs.server_markdown(gh)
    assert "| repo | string | yes | owner/name |" in md
    assert "Does \\| things." in md  # a pipe cannot break the table
    assert "mcpyard secret encrypt gh --from-literal token=VALUE" in md


@pytest.mark.parametrize(("query", "best"), [
    pytest.param("open a new bug report", "github__create_issue", id="description word"),
    pytest.param("show me all the issues", "github__list_issues", id="plural and synonym"),
    pytest.param("remove the feature branch", "github__delete_branch", id="argument name"),
])
def test_search_ranks_by_name_description_and_arguments(query: str, best: str) -> None:
    gh, _ = built()
    index = search.Index(search.tool_document(t["name"], {**t, "name": t["originalName"]},
                                              "github")
                         for t in gh["tools"])
    hits = index.search(query, limit=3)
    assert hits and hits[0].key == best, hits


def test_search_is_deterministic_and_admits_only_what_it_is_told() -> None:
    index = search.Index([search.Document("b", (("send message", 1),)),
                          search.Document("a", (("send message", 1),)),
                          search.Document("c", (("weather", 1),))])
    assert [h.key for h in index.search("sending messages", limit=5)] == ["a", "b"]
    assert [h.key for h in index.search("send", limit=5, admit=lambda k: k != "a")] == ["b"]
    assert index.search("nothing here", limit=5) == []
    assert search.terms("createPullRequest list_issues") == ["create", "pull", "request",
                                                             "list", "issue"]


@pytest.mark.parametrize(("name", "prefix", "expected"), [
    pytest.param("create_pull_request", None, ("create", "pull request"), id="verb-first"),
    pytest.param("issue_create", None, ("create", "issue"), id="verb-last"),
    pytest.param("read_multiple_files", None, ("read", "file"), id="qualifier-dropped"),
    pytest.param("list_directory_with_sizes", None, ("list", "directory size"), id="singular"),
    pytest.param("browser_take_screenshot", "browser", ("take", "screenshot"), id="prefix"),
    pytest.param("git_diff_staged", "git", ("diff", None), id="a-state-is-no-data"),
    pytest.param("toggle-subscriber-updates", None, ("update", None), id="no-guess"),
    pytest.param("get-annotated-message", None, ("get", "annotated message"), id="words-kept"),
])
def test_data_types_are_words_a_person_writes(
        name: str, prefix: str | None, expected: tuple[str | None, str | None]) -> None:
    assert manifest.verb_and_object(name, prefix) == expected


def test_the_tool_prefix_is_the_first_word_most_tools_share() -> None:
    assert manifest.tool_prefix(["browser_click", "browser_navigate", "other"]) == "browser"
    assert manifest.tool_prefix(["get_issue", "get_pull_request"]) is None  # a verb
    assert manifest.tool_prefix(["git_status", "list_repos", "fetch"]) is None  # not most


def _reads_like_a_person(tools: list[dict[str, Any]], **reported: Any) -> str:
    server = ServerConfig(slug="files", name="files", namespace="team", mode="hosted",
                          transport="stdio", command=("files-mcp",))
    return str(manifest.build("eng", server, manifest.Reported(tools=tools, **reported))
               ["summary"])


def test_the_summary_reads_as_a_person_would_write_it() -> None:
    read_only = {"readOnlyHint": True}
    summary = _reads_like_a_person([
        {"name": "read_multiple_files", "annotations": read_only},
        {"name": "get_file_info", "annotations": read_only},
        {"name": "write_file", "annotations": {"readOnlyHint": False}},
    ], prompts=[{"name": "p"}], instructions="# Files server\n\nReads and writes files. More.")
    assert summary == (
        "files is an MCP server run by the gateway over stdio, with 3 tools (2 read-only, "
        "1 destructive) and 1 prompt. Reads and writes files. It reads files and file info, "
        "and changes files.")
    one = _reads_like_a_person([{"name": "get_word", "annotations": read_only}])
    assert one.endswith("with 1 tool (read-only). It reads words.")  # never "It reads word."
    two = _reads_like_a_person([{"name": "get_time", "annotations": read_only},
                                {"name": "convert_time", "annotations": read_only}])
    assert "with 2 tools (all read-only)." in two
    quiet = _reads_like_a_person([{"name": "frobnicate"}, {"name": "wibble"}])
    assert quiet == ("files is an MCP server run by the gateway over stdio, with 2 tools "
                     "(none declares its effect).")


def test_when_to_use_names_the_data_or_says_what_the_tools_do() -> None:
    server = ServerConfig(slug="fetch", name="fetch", namespace="team", mode="hosted",
                          transport="stdio", command=("mcp-server-fetch",))
    fetch = manifest.build("eng", server, manifest.Reported(tools=[
        {"name": "fetch", "description": "Fetches a URL from the internet. More."}]))
    assert fetch["whenToUse"] == "Use fetch to fetch a URL from the internet."
    gh, _ = built()
    assert gh["whenToUse"] == "Use github when a task involves branches or issues."


def test_a_malformed_stored_manifest_reads_with_its_fields_absent() -> None:
    # A stored manifest is whatever JSON was stored: a field missing or of the wrong type
    # reads as absent, never as a TypeError in the middle of a docs page.
    gh, _ = built()
    broken: dict[str, Any] = {"server": "github", "tools": [{"name": 3}, "stray"],
                              "needs": None, "dataTypes": {"reads": ["issue", 7]}}
    md = docs.server_markdown(broken)
    assert "## Tools (1)" in md and "No secret is injected" in md
    assert "## Prompts" not in md and "## Resources" not in md
    index = docs.index_markdown("eng", [gh, broken])
    assert "2 servers, 5 tools." in index
    assert "Server  ().\nTools:\n- :  ()\n" in manifest.prompt_for_summary(broken)
    cut = manifest.visible(broken, lambda name: True)
    assert cut is not None and cut["tools"] == [{"name": 3}]
    linked = manifest.link([gh, broken])
    assert linked[1]["pairsWith"] == [{"server": "github", "shared": ["issue"]}]
