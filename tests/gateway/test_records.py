"""Call records: SQLite and audit sinks, the recorder's batching, drops and flush, no secrets."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from collections.abc import Sequence
from dataclasses import astuple, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import pytest

from mcpyard import errors
from mcpyard.compiler.config import MemberConfig, WorkspaceConfig
from mcpyard.crypto import tokens
from mcpyard.gateway.services import _audit, _limits, _metrics, _records
from mcpyard.gateway.services._records import CallRecord, Recorder, SQLiteSink

pytestmark = pytest.mark.anyio

WS = WorkspaceConfig(
    name="eng",
    namespace="team-eng",
    display_name="Engineering",
    plan="free",
    requests_per_minute=60,
    revision="rev-1",
)
ALICE = MemberConfig(
    name="alice",
    user="alice@example.com",
    role="member",
    token_hash="sha256:" + "0" * 64,
    requests_per_minute=10,
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def call(
    outcome: _records.Outcome = "ok",
    *,
    t: float | None = None,
    **changes: Any,
) -> CallRecord:
    """A record as the router makes one at the end of a tools/call."""
    record = CallRecord(
        time=time.time() if t is None else t,
        workspace=WS.name,
        member=ALICE.name,
        user=ALICE.user,
        server="github",
        method="tools/call",
        target="github__create_issue",
        era="handshake",
        outcome=outcome,
        error=None if outcome == "ok" else f"{outcome}!",
        latency_ms=12.5,
        request_bytes=210,
        response_bytes=1800,
        config_revision=WS.revision,
        git_commit="a" * 40,
    )
    return replace(record, **changes) if changes else record


def rows(db: Path) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(
            f"SELECT {', '.join(_records.FIELDS)} FROM calls ORDER BY id"
        ).fetchall()
    finally:
        conn.close()


async def test_one_record_per_outcome_reads_back_from_sqlite(tmp_path: Path) -> None:
    db = tmp_path / "state" / "calls.db"
    records = [call(outcome, t=1_750_000_000.0 + i) for i, outcome in enumerate(_records.OUTCOMES)]
    records.append(
        call(
            "auth_failure",
            member=None,
            user=None,
            server=None,
            target=None,
            method="initialize",
            era="modern",
            git_commit=None,
        )
    )
    with anyio.fail_after(10):
        async with Recorder([SQLiteSink(db)]) as recorder:
            for r in records:
                recorder.record(r)
    assert rows(db) == [astuple(r) for r in records]
    assert set(_records.OUTCOMES) == {
        "ok",
        "tool_error",
        "upstream_error",
        "denied",
        "rate_limited",
        "auth_failure",
        "invalid_request",
    }
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("PRAGMA user_version").fetchone() == (_records.SCHEMA_VERSION,)
        indexed = {
            r[0]
            for r in conn.execute(
                "SELECT i.name FROM pragma_index_list('calls') AS l, pragma_index_info(l.name) AS i"
            )
        }
        assert {"time", "member", "target"} <= indexed
    finally:
        conn.close()


async def test_a_sink_reopens_its_database_and_appends(tmp_path: Path) -> None:
    db = tmp_path / "calls.db"
    for n in (1, 2):
        sink = SQLiteSink(db)
        await sink.write([call(t=float(n))])
        await sink.close()
    assert [r[0] for r in rows(db)] == [1.0, 2.0]


def test_a_newer_or_foreign_database_is_refused(tmp_path: Path) -> None:
    newer, foreign = tmp_path / "newer.db", tmp_path / "foreign.db"
    with sqlite3.connect(newer) as conn:
        conn.execute("PRAGMA user_version = 99")
    conn.close()
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE songs (title TEXT)")
    conn.close()
    with pytest.raises(errors.MCPyardError, match="newer than this mcpyard"):
        SQLiteSink(newer)
    with pytest.raises(errors.MCPyardError, match="not a database of mcpyard call records"):
        SQLiteSink(foreign)


async def test_nothing_is_lost_on_close_with_thousands_queued(tmp_path: Path) -> None:
    db, log = tmp_path / "calls.db", tmp_path / "audit" / "calls.jsonl"
    recorder = Recorder(
        [SQLiteSink(db), _audit.AuditSink(log)], max_queue=100_000, batch_size=500, interval=30
    )
    recorder.start()
    for i in range(20_000):
        recorder.record(call(t=float(i)))
    with anyio.fail_after(30):
        await recorder.close()
    assert recorder.dropped == 0
    assert [r[0] for r in rows(db)] == [float(i) for i in range(20_000)]
    assert len(log.read_bytes().splitlines()) == 20_000


async def test_a_batch_is_written_after_the_interval_without_close(tmp_path: Path) -> None:
    sink = Captured()
    async with Recorder([sink], batch_size=500, interval=0.05) as recorder:
        recorder.record(call())
        with anyio.fail_after(10):
            await sink.wrote.wait()
        assert sink.batches == [1]


class Captured:
    """A sink that keeps batch sizes and can be held shut."""

    def __init__(self, *, blocked: bool = False) -> None:
        self.batches: list[int] = []
        self.entered = anyio.Event()
        self.wrote = anyio.Event()
        self.release = anyio.Event()
        if not blocked:
            self.release.set()
        self.closed = False

    async def write(self, records: Sequence[CallRecord]) -> None:
        self.entered.set()
        await self.release.wait()
        self.batches.append(len(records))
        self.wrote.set()

    async def close(self) -> None:
        self.closed = True


async def test_overload_drops_and_counts_and_record_never_waits() -> None:
    sink = Captured(blocked=True)
    metrics = _metrics.Metrics()
    recorder = Recorder(
        [sink], max_queue=10, batch_size=5, interval=0.01, on_drop=metrics.record_dropped
    )
    recorder.start()
    for _ in range(5):
        recorder.record(call())
    with anyio.fail_after(10):
        await sink.entered.wait()  # the writer holds a batch of 5 in a sink that won't return
    # record() is synchronous: 100 calls in a row return without the event loop ever running.
    for _ in range(100):
        recorder.record(call())
    assert recorder.queued == 10
    assert recorder.dropped == 90
    assert metrics.registry.get_sample_value("mcpyard_records_dropped_total") == 90
    sink.release.set()
    with anyio.fail_after(10):
        await recorder.close()
    assert sum(sink.batches) == 15 and sink.closed
    recorder.record(call())  # after close: counted, never queued
    assert recorder.dropped == 91


async def test_a_failing_sink_does_not_stop_the_others(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken:
        async def write(self, records: Sequence[CallRecord]) -> None:
            raise OSError("disk full")

        async def close(self) -> None:
            pass

    db = tmp_path / "calls.db"
    with anyio.fail_after(10):
        async with Recorder([Broken(), SQLiteSink(db)], batch_size=2) as recorder:
            for _ in range(4):
                recorder.record(call())
    assert len(rows(db)) == 4
    assert "Broken lost 2 records at shutdown: Broken: OSError: disk full" in caplog.text


async def test_a_sink_that_fails_for_a_while_loses_nothing(tmp_path: Path) -> None:
    """A full disk: the batch is retried until the sink takes it; the state is told."""
    full = True
    states: list[bool] = []

    class Flaky:
        def __init__(self) -> None:
            self.inner = SQLiteSink(tmp_path / "calls.db")
            self.attempts = 0

        async def write(self, records: Sequence[CallRecord]) -> None:
            self.attempts += 1
            if full:
                raise OSError(28, "No space left on device")
            await self.inner.write(records)

        async def close(self) -> None:
            await self.inner.close()

    sink = Flaky()
    with anyio.fail_after(30):
        async with Recorder([sink], batch_size=2, interval=0.01, retry_initial=0.01,
                            on_state=states.append) as recorder:
            for _ in range(5):
                recorder.record(call())
            while sink.attempts < 3:
                await anyio.sleep(0.01)
            assert recorder.status()["status"] == "degraded"
            assert "No space left" in str(recorder.status()["reason"])
            full = False
            while recorder.queued or recorder.failures:
                await anyio.sleep(0.01)
            assert recorder.status() == {"status": "ok"}
    assert len(rows(tmp_path / "calls.db")) == 5
    assert recorder.dropped == 0
    assert states == [False, True]


async def test_audit_lines_are_json_with_the_record_fields(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    log.write_text('{"earlier": "line"}\n')  # appended to, never truncated
    records = [call(o, t=1_750_000_000.25) for o in _records.OUTCOMES]
    with anyio.fail_after(10):
        async with Recorder([_audit.AuditSink(log)]) as recorder:
            for r in records:
                recorder.record(r)
    first, *lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert first == {"earlier": "line"}
    assert len(lines) == len(records)
    for data, r in zip(lines, records, strict=True):
        assert list(data) == list(_records.FIELDS)
        assert data["time"] == "2025-06-15T15:06:40.250Z"
        assert datetime.fromisoformat(data["time"]).timestamp() == r.time
        assert {k: v for k, v in data.items() if k != "time"} == {
            k: getattr(r, k) for k in _records.FIELDS if k != "time"
        }


async def test_audit_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    sink = _audit.AuditSink("-")
    print("before")
    await sink.write([call(), call("denied")])
    await sink.close()
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "before"
    assert [json.loads(x)["outcome"] for x in out[1:]] == ["ok", "denied"]


async def test_no_record_ever_holds_a_token(tmp_path: Path) -> None:
    token = tokens.new()
    authorization = f"Bearer {token}"
    limiter = _limits.MemoryLimiter()
    assert await limiter.hit(WS, ALICE.model_copy(update={"requests_per_minute": 1})) is None
    refusal = await limiter.hit(WS, ALICE.model_copy(update={"requests_per_minute": 1}))
    assert refusal is not None
    # The way the router will build them; the last ones are careless on purpose: a message
    # quoting the header, an upstream URL with a key in its query, a token sent as a name.
    records = [
        call(),
        call("rate_limited", server=None, error=refusal.message),
        call(
            "auth_failure",
            member=None,
            user=None,
            server=None,
            target=None,
            method="tools/list",
            error="invalid or unknown token",
        ),
        call(
            "auth_failure",
            member=None,
            user=None,
            server=None,
            target=None,
            method="tools/list",
            error=f"rejected Authorization: {authorization}",
        ),
        call("upstream_error", error="POST https://api.example.com/mcp?api_key=sk-123 failed"),
        call("invalid_request", server=None, target=token, error=f"Unknown tool: {token}"),
        call("denied", target=f"github__x?token={token}", error=f"{token} may not"),
    ]
    db, log = tmp_path / "calls.db", tmp_path / "audit.jsonl"
    with anyio.fail_after(10):
        async with Recorder([SQLiteSink(db), _audit.AuditSink(log)]) as recorder:
            for r in records:
                recorder.record(r)
    secret = token.encode()
    written = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert len(rows(db)) == len(records)
    assert secret not in written
    assert token[4:].encode() not in written  # not even the token's body
    assert b"sk-123" not in written
    assert secret not in log.read_bytes()
    assert b"[redacted]" in log.read_bytes()
    assert records[1].error == refusal.message  # a message that holds no secret stays whole


# --- git commit -------------------------------------------------------------------------


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        [
            "git",
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "-c",
            "init.defaultBranch=main",
            *args,
        ],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def test_git_commit_of_a_checkout(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "workspaces").mkdir(parents=True)
    assert _records.git_commit(repo / "workspaces") is None  # not a checkout yet
    git(repo, "init", "-q")
    assert _records.git_commit(repo) is None  # no commit yet
    (repo / "workspaces" / "eng.yaml").write_text("kind: Workspace\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "one")
    head = git(repo, "rev-parse", "HEAD")
    assert _records.git_commit(repo / "workspaces") == head
    git(repo, "pack-refs", "--all")  # the branch now lives in packed-refs only
    assert _records.git_commit(repo / "workspaces") == head
    git(repo, "commit", "-qm", "two", "--allow-empty")
    second = git(repo, "rev-parse", "HEAD")
    git(repo, "worktree", "add", "-q", str(tmp_path / "wt"), head)  # detached, linked
    git(tmp_path / "wt", "checkout", "-qb", "other")
    assert _records.git_commit(repo) == second
    assert _records.git_commit(tmp_path / "wt" / "workspaces") == head
    assert _records.git_commit(tmp_path / "missing") is None
