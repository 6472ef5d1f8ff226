"""Docs and manifests served by `mcpyard serve` at /ws/W/docs and /ws/W/manifest.json:
authenticated like /mcp, filtered by the member's access, built from what the real servers
(the demo server and a server with annotated tools, over stdio) report."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx
import jsonschema
import pytest
from gwtools import NS, member_manifest
from test_accounting_serve import serve, wait_healthy
from test_tool_search import stdio_server

from mcpyard.crypto import tokens

SCHEMA = json.loads((Path(__file__).parents[2] / "docs" / "schemas" /
                     "manifest.schema.json").read_text())
SERVER = Path(__file__).parent / "changing_server.py"

stdio = stdio_server


@pytest.fixture
def folder(tmp_path: Path) -> tuple[Path, str, str]:
    folder = tmp_path / "manifests"
    folder.mkdir()
    alice, bob = tokens.new(), tokens.new()
    (folder / "eng.yaml").write_text(f"""apiVersion: mcpyard.io/v1alpha1
kind: Workspace
metadata: {{name: eng, namespace: {NS}}}
spec: {{displayName: Engineering}}
""")
    (folder / "demo.yaml").write_text(stdio("demo", [sys.executable, "-m", "mcpyard.demo"]))
    (folder / "notes.yaml").write_text(stdio("notes", [sys.executable, str(SERVER)]))
    (folder / "alice.yaml").write_text(member_manifest("alice", alice))
    (folder / "bob.yaml").write_text(member_manifest(
        "bob", bob, extra="  access: {allow: ['demo__*'], deny: ['demo__fail']}\n"))
    return folder, alice, bob


def test_docs_and_manifest_follow_the_members_access(folder: tuple[Path, str, str],
                                                     tmp_path: Path) -> None:
    manifests, alice, bob = folder
    with serve(manifests, tmp_path / "state") as (base, _proc):
        wait_healthy(base, "demo", "notes", deadline=60)
        ws = f"{base}/ws/eng"
        assert httpx.get(f"{ws}/docs").status_code == 401
        assert httpx.get(f"{ws}/manifest.json",
                         headers={"Authorization": "Bearer mwt_nope"}).status_code == 401
        assert httpx.get(f"{base}/ws/nope/docs").status_code == 404

        mine = httpx.get(f"{ws}/manifest.json", headers={"Authorization": f"Bearer {alice}"})
        assert mine.status_code == 200
        servers = {m["server"]["slug"]: m for m in mine.json()["servers"]}
        assert sorted(servers) == ["demo", "notes"]
        for m in servers.values():
            jsonschema.validate(m, SCHEMA)
        notes = {t["originalName"]: t for t in servers["notes"]["tools"]}
        assert notes["delete_note"]["effect"] == "destructive"
        assert notes["add"]["effect"] == "read-only"
        assert notes["echo"]["effect"] == "unknown"
        assert servers["demo"]["prompts"][0]["name"] == "demo__summarize"

        index = httpx.get(f"{ws}/docs", headers={"Authorization": f"Bearer {alice}"})
        assert index.headers["content-type"].startswith("text/html")
        assert 'href="docs/notes"' in index.text
        page = httpx.get(f"{ws}/docs/notes", headers={"Authorization": f"Bearer {alice}"})
        assert page.status_code == 200 and 'id="tool-notes__delete_note"' in page.text
        md = httpx.get(f"{ws}/docs/notes.md", headers={"Authorization": f"Bearer {alice}"})
        assert md.text.startswith("# ") and "| note_id | string | yes |" in md.text

        theirs = httpx.get(f"{ws}/manifest.json", headers={"Authorization": f"Bearer {bob}"})
        only = theirs.json()["servers"]
        assert [m["server"]["slug"] for m in only] == ["demo"]
        assert "demo__fail" not in [t["name"] for t in only[0]["tools"]]
        assert "demo__echo" in [t["name"] for t in only[0]["tools"]]
        index = httpx.get(f"{ws}/docs", headers={"Authorization": f"Bearer {bob}"}).text
        assert "notes" not in index
        assert httpx.get(f"{ws}/docs/notes",
                         headers={"Authorization": f"Bearer {bob}"}).status_code == 404
