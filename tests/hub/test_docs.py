"""docs/hub.md is the catalog rendered: it lists every entry and never drifts from the files."""

from __future__ import annotations

from mcpyard import hub
from mcpyard.hub import _markdown
from tests.conftest import ROOT

PAGE = ROOT / "docs" / "hub.md"


def test_the_committed_page_is_the_rendered_catalog() -> None:
    assert PAGE.read_text() == _markdown.render(hub.catalog().values()), (
        "docs/hub.md is out of date: python -m mcpyard.hub._markdown > docs/hub.md"
    )


def test_the_page_shows_each_entry_with_its_pin_secrets_and_settings() -> None:
    page = _markdown.render(hub.catalog().values())
    assert f"## The {len(hub.catalog())} entries" in page
    for entry in hub.catalog().values():
        assert f"### {entry.name}: {entry.title}" in page
        assert f"| [`{entry.name}`](#{entry.name}) | {entry.title} |" in page
        for secret in entry.secrets:
            assert f"| `{secret.name}` |" in page
        for setting in entry.config.properties:
            assert f"| `{setting}` |" in page
    assert "- Command: `uvx --with mcp<2 mcp-server-sqlite==2025.4.25" in page


def test_the_readme_points_at_the_page_and_lists_hub_add() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "docs/hub.md" in readme
    assert "mcpyard hub list | show NAME | search QUERY | manifest NAME --workspace W" in readme
    assert f"({len(hub.catalog())} entries: docs/hub.md)" in readme
    assert "hub add NAME --workspace W" in readme
