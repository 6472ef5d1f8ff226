"""`mcpyard analytics` on a call log written by the gateway's SQLite sink, run as a user runs it."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import anyio
import pytest

from mcpyard import cli
from mcpyard.gateway.services import _records
from mcpyard.gateway.services._records import CallRecord

NOW = time.time()
HOUR, DAY = 3600.0, 86400.0

BASE = CallRecord(
    time=NOW - HOUR,
    workspace="eng",
    member="alice",
    user="alice@example.com",
    server="github",
    method="tools/call",
    target="github__create_issue",
    era="handshake",
    outcome="ok",
    latency_ms=10.0,
    request_bytes=100,
    response_bytes=1000,
    config_revision="rev-1",
    git_commit=None,
)


def dataset() -> list[CallRecord]:
    out = [replace(BASE, time=NOW - HOUR + i) for i in range(5)]
    out += [
        replace(
            BASE,
            time=NOW - 30 * 60 + i,
            outcome="tool_error",
            error="issue tracker said no",
            latency_ms=30.0,
        )
        for i in range(2)
    ]
    out += [
        replace(
            BASE,
            time=NOW - 20 * 60 + i,
            member="bob",
            user="bob@example.com",
            server="slack",
            target="slack__send_message",
        )
        for i in range(3)
    ]
    out.append(
        replace(
            BASE,
            time=NOW - 10 * 60,
            member="bob",
            user="bob@example.com",
            server=None,
            target="slack__send_message",
            outcome="rate_limited",
            error="rate limit of member bob exceeded: 3 requests per minute",
        )
    )
    out += [
        replace(
            BASE,
            time=NOW - 2 * DAY + i,
            member="carol",
            user="carol@example.com",
            target="github__list_repos",
        )
        for i in range(4)
    ]
    out.append(
        replace(
            BASE,
            time=NOW - 5 * 60,
            member=None,
            user=None,
            server=None,
            target=None,
            method="tools/list",
            outcome="auth_failure",
            error="invalid token",
        )
    )
    out += [
        replace(BASE, time=NOW - 60 + i, workspace="ops", member="dave", user="dave@example.com")
        for i in range(2)
    ]
    return out


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("state") / "calls.db"

    async def fill() -> None:
        async with _records.Recorder([_records.SQLiteSink(path)]) as recorder:
            for r in dataset():
                recorder.record(r)

    anyio.run(fill)
    return path


def mcpyard(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mcpyard", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=60,
    )


def run(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert cli.main(["analytics", *args]) == 0
    return capsys.readouterr().out


def test_top_members_table(db: Path) -> None:
    done = mcpyard("analytics", "--db", str(db), "top-members")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    header = lines[0].split()
    assert header == [
        "WORKSPACE",
        "MEMBER",
        "USER",
        "CALLS",
        "ERRORS",
        "DENIED",
        "RATE_LIMITED",
        "AVG_MS",
        "LAST_CALL",
    ]
    rows = [line.split() for line in lines[1:]]
    assert [(r[0], r[1], r[3], r[4], r[6]) for r in rows] == [
        ("eng", "alice", "7", "2", "0"),
        ("eng", "bob", "4", "0", "1"),
        ("eng", "carol", "4", "0", "0"),
        ("ops", "dave", "2", "0", "0"),
    ]
    # Aligned: each value starts where its header starts.
    for name in ("MEMBER", "CALLS", "LAST_CALL"):
        col = lines[0].index(name)
        assert all(line[col - 1] == " " and line[col] != " " for line in lines[1:])
    assert rows[0][7] == f"{(5 * 10 + 2 * 30) / 7:.1f}"
    assert rows[0][8] == _records.iso(NOW - 30 * 60 + 1)


def test_since_until_and_workspace_filter(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = run(capsys, "--since", "24h", "top-members", "--json")
    assert [r["member"] for r in json.loads(out)] == ["alice", "bob", "dave"]
    out = run(capsys, "top-members", "--workspace", "ops", "-o", "json")
    assert [(r["member"], r["calls"]) for r in json.loads(out)] == [("dave", 2)]
    since = _records.iso(NOW - 3 * DAY)
    until = _records.iso(NOW - DAY)
    out = run(capsys, "--since", since, "--until", until, "--json", "calls")
    assert [r["member"] for r in json.loads(out)] == ["carol"] * 4


def test_top_tools_json(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tools = json.loads(run(capsys, "-o", "json", "top-tools"))
    assert [
        (t["workspace"], t["tool"], t["server"], t["calls"], t["errors"], t["members"])
        for t in tools
    ] == [
        ("eng", "github__create_issue", "github", 7, 2, 1),
        ("eng", "github__list_repos", "github", 4, 0, 1),
        ("eng", "slack__send_message", "slack", 4, 0, 1),
        ("ops", "github__create_issue", "github", 2, 0, 1),
    ]
    assert list(tools[0]) == [
        "workspace",
        "tool",
        "server",
        "calls",
        "errors",
        "denied",
        "members",
        "avg_ms",
        "last_call",
    ]
    assert [t["tool"] for t in json.loads(run(capsys, "--json", "--limit", "1", "top-tools"))] == [
        "github__create_issue"
    ]


def test_member_history_csv_for_export(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = run(capsys, "--csv", "member", "bob")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == list(_records.FIELDS)
    assert [(r["outcome"], r["server"]) for r in rows] == [("ok", "slack")] * 3 + [
        ("rate_limited", "")
    ]
    assert [r["time"] for r in rows] == sorted(r["time"] for r in rows)
    assert rows[-1]["error"] == "rate limit of member bob exceeded: 3 requests per minute"
    table = run(capsys, "member", "bob").splitlines()
    assert table[0].split() == [
        "TIME",
        "WORKSPACE",
        "METHOD",
        "TARGET",
        "OUTCOME",
        "LATENCY_MS",
        "ERROR",
    ]
    assert len(table) == 5 and "<none>" in table[1]


def test_errors_grouped(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    errors = json.loads(run(capsys, "errors", "-o", "json"))
    assert [(e["count"], e["outcome"], e["target"], e["members"]) for e in errors] == [
        (2, "tool_error", "github__create_issue", 1),
        (1, "auth_failure", None, 0),
        (1, "rate_limited", "slack__send_message", 1),
    ]
    table = run(capsys, "errors").splitlines()
    assert table[0].split()[:2] == ["COUNT", "OUTCOME"]
    assert table[1].endswith("issue tracker said no")


def test_calls_export_holds_every_field(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    calls = json.loads(run(capsys, "calls", "--json"))
    assert len(calls) == len(dataset())
    expected = [
        {**{f: getattr(r, f) for f in _records.FIELDS}, "time": _records.iso(r.time)}
        for r in sorted(dataset(), key=lambda r: r.time)
    ]
    assert calls == expected


def test_the_default_database_is_in_the_state_dir(db: Path, tmp_path: Path) -> None:
    done = mcpyard("analytics", "--json", "top-members", env={"MCPYARD_STATE_DIR": str(db.parent)})
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)) == 4
    # Without the variable: .mcpyard/calls.db below the working directory.
    done = mcpyard("analytics", "calls", cwd=tmp_path, env={"MCPYARD_STATE_DIR": ""})
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith("mcpyard analytics: no call records at .mcpyard/calls.db")
    assert not (tmp_path / ".mcpyard").exists()  # looking never creates it


def test_empty_results_and_bad_times(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["analytics", "--db", str(db), "--workspace", "nope", "calls"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == "No call records found.\n"
    assert run(capsys, "--db", str(db), "--workspace", "nope", "--json", "calls") == "[]\n"
    with pytest.raises(SystemExit) as exc:
        cli.main(["analytics", "--db", str(db), "--since", "yesterday", "calls"])
    assert exc.value.code == 2
    assert "invalid time 'yesterday'" in capsys.readouterr().err


@pytest.fixture(autouse=True)
def _default_db(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # cli.main runs in this process: point the default at the filled database.
    monkeypatch.setenv("MCPYARD_STATE_DIR", str(db.parent))


def test_member_limit_keeps_the_newest_records(db: Path, capsys: pytest.CaptureFixture[str]
                                               ) -> None:
    # alice: five old calls, then two failures half an hour ago; --limit 2 is the tail.
    rows = json.loads(run(capsys, "--json", "--limit", "2", "member", "alice"))
    assert [r["outcome"] for r in rows] == ["tool_error", "tool_error"]
    assert rows[0]["time"] < rows[1]["time"]  # still shown oldest first
    everything = json.loads(run(capsys, "--json", "member", "alice"))
    assert rows == everything[-2:]
    assert json.loads(run(capsys, "--json", "--limit", "1", "calls"))[0]["workspace"] == "ops"
