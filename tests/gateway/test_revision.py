"""Where each served configuration came from reaches every call record: ``serve`` on a git
checkout records HEAD's commit, marks a dirty tree as such, and follows a commit; the call log
of an older gateway is upgraded in place."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path

import httpx
import orjson
import pytest
from accounting import Raw, call_rows
from gwtools import NS, member_manifest, server_manifest, upstream_process
from test_accounting_serve import serve, stop, wait_healthy

from mcpyard import cli, manifests
from mcpyard.crypto import tokens
from mcpyard.gateway.services import _records
from tests.gittools import Repo

pytestmark = pytest.mark.anyio


def _ws(display: str) -> str:
    return f"""apiVersion: mcpyard.io/v1alpha1
kind: Workspace
metadata: {{name: eng, namespace: {NS}}}
spec: {{displayName: {display}, plan: pro}}
"""


def test_checkout_source(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    assert manifests.checkout_source(plain) is None  # not a checkout
    repo = Repo(tmp_path / "repo")
    folder = repo.path / "workspaces"
    repo.write("workspaces/eng.yaml", _ws("Eng"))
    assert manifests.checkout_source(folder) is None  # no commit yet
    first = repo.commit("eng")
    source = manifests.checkout_source(folder)
    assert source is not None and source.revision == first
    assert source.origin == f"git {folder}"
    repo.write("README.md", "outside the manifests\n")  # not what serve reads: still clean
    assert manifests.checkout_source(folder).revision == first  # type: ignore[union-attr]
    for change in ("workspaces/new.yaml", "workspaces/eng.yaml"):  # untracked, then modified
        repo.write(change, _ws("Changed"))
        assert manifests.checkout_source(folder).revision == f"{first}-dirty"  # type: ignore
        repo.git("checkout", "--", ".") if change.endswith("eng.yaml") else repo.remove(change)
    repo.remove("workspaces/eng.yaml")  # deleted
    assert manifests.checkout_source(folder).revision == f"{first}-dirty"  # type: ignore
    repo.git("checkout", "--", ".")
    assert manifests.checkout_source(folder).revision == first  # type: ignore[union-attr]
    # `serve FILE`: that file alone counts.
    repo.write("workspaces/other.yaml", _ws("Other"))
    assert manifests.checkout_source(folder / "eng.yaml").revision == first  # type: ignore


def _revision(base: str) -> str:
    return str(httpx.get(f"{base}/readyz").json()["workspaces"]["eng"]["revision"])


def _changed(base: str, before: str, deadline: float = 30) -> str:
    end = time.monotonic() + deadline
    while (now := _revision(base)) == before:
        assert time.monotonic() < end, "the gateway did not reload"
        time.sleep(0.05)
    return now


async def test_records_name_each_commit_and_a_dirty_tree(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = Repo(tmp_path / "repo")
    folder = repo.path / "workspaces"
    token = tokens.new()
    with upstream_process("alpha") as alpha:
        repo.write("workspaces/eng.yaml", _ws("Eng"))
        repo.write("workspaces/alpha.yaml", server_manifest("alpha", alpha.url))
        repo.write("workspaces/alice.yaml", member_manifest("alice", token))
        first = repo.commit("eng with alpha and alice")
        state, audit = tmp_path / "state", tmp_path / "audit.jsonl"
        with serve(folder, state, "--audit-log", str(audit)) as (base, proc):
            wait_healthy(base, "alpha")
            url = f"{base}/ws/eng/mcp"

            async def call(text: str) -> None:
                async with httpx.AsyncClient(timeout=30) as http:
                    session = Raw(http, url, token)
                    assert (await session.initialize()).status_code == 200
                    assert (await session.call("alpha__echo", text=text)).status_code == 200

            await call("clean")
            seen = _revision(base)
            repo.write("workspaces/eng.yaml", _ws("Engineering"))  # edited, not committed
            seen = await asyncio.to_thread(_changed, base, seen)
            await call("dirty")
            second = repo.commit("rename eng", date="2026-01-02T10:00:00+00:00")
            seen = await asyncio.to_thread(_changed, base, seen)  # the commit alone reloads
            await call("committed")
            stop(proc)
    rows = [r for r in call_rows(state / "calls.db") if r["method"] == "tools/call"]
    assert [r["source_revision"] for r in rows] == [first, f"{first}-dirty", second]
    lines = [orjson.loads(x) for x in audit.read_bytes().splitlines()]
    assert [x["source_revision"] for x in lines if x["method"] == "tools/call"] == \
        [first, f"{first}-dirty", second]
    shown = json.loads(_analytics(state / "calls.db", capsys, "-o", "json"))
    assert [r["source_revision"] for r in shown if r["method"] == "tools/call"] \
        == [first, f"{first}-dirty", second]
    table = _analytics(state / "calls.db", capsys)
    assert "SOURCE_REVISION" in table.splitlines()[0] and f"{first}-dirty" in table


_SCHEMA_1 = """
CREATE TABLE calls (
    id INTEGER PRIMARY KEY, time REAL NOT NULL, workspace TEXT NOT NULL, member TEXT,
    user TEXT, server TEXT, method TEXT NOT NULL, target TEXT, era TEXT NOT NULL,
    outcome TEXT NOT NULL, error TEXT, latency_ms REAL NOT NULL, request_bytes INTEGER NOT NULL,
    response_bytes INTEGER NOT NULL, config_revision TEXT NOT NULL, git_commit TEXT);
INSERT INTO calls VALUES (1, 1767261600.0, 'eng', 'alice', 'a@x', 'alpha', 'tools/call',
    'alpha__echo', 'handshake', 'ok', NULL, 1.5, 10, 20, 'r1', NULL);
PRAGMA user_version = 1;
"""


def _analytics(db: Path, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert cli.main(["analytics", "calls", "--db", str(db), *args]) == 0
    return capsys.readouterr().out


async def test_a_call_log_of_schema_1_is_read_then_upgraded(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "calls.db"
    with sqlite3.connect(db) as conn:
        conn.executescript(_SCHEMA_1)
    conn.close()
    before = json.loads(_analytics(db, capsys, "-o", "json"))  # read-only: analytics never upgrades
    assert [(r["member"], r["source_revision"]) for r in before] == [("alice", None)]
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (1,)
    conn.close()
    sink = _records.SQLiteSink(db)
    record = _records.CallRecord(time=1767261601.0, workspace="eng", member="bob", user="b@x",
                                 server="alpha", method="tools/call", target="alpha__echo",
                                 era="handshake", outcome="ok", config_revision="r2",
                                 source_revision="c" * 40)
    await sink.write([record])
    await sink.close()
    after = json.loads(_analytics(db, capsys, "-o", "json"))
    assert [(r["member"], r["source_revision"]) for r in after] == \
        [("alice", None), ("bob", "c" * 40)]
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (_records.SCHEMA_VERSION,)
    conn.close()
